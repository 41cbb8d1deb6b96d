package state

import "github.com/dgraph-io/badger/v4"

// DropPartition deletes every key of p: its checkpoint first (in its own transaction, so an
// interrupted drop never leaves a checkpoint that disagrees with the states), then its states in
// non-atomic batches. Other partitions are not affected and may keep committing concurrently
// (unlike badger.DB.DropPrefix, which blocks all writes).
func (s *Store) DropPartition(p int32) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if s.opts.ReadOnly {
		return s.wrap("drop", p, ErrReadOnly)
	}
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	s.writes.Add(1)
	if err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(planKey(p)); err != nil {
			return err
		}
		return txn.Delete(checkpointKey(p))
	}); err != nil {
		return s.wrap("drop checkpoint of", p, err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		for _, prefix := range [][]byte{headerPrefix(p), statePrefix(p)} {
			io := badger.DefaultIteratorOptions
			io.Prefix = prefix
			io.PrefetchValues = false
			it := txn.NewIterator(io)
			for it.Rewind(); it.Valid(); it.Next() {
				if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
					s.closeIter(it)
					return err
				}
			}
			s.closeIter(it)
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return s.wrap("drop states of", p, err)
	}
	s.setHeaders(p, false)
	return nil
}
