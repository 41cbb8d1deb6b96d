package state

import (
	"encoding/binary"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// prefixPlan keys the merge plan of a partition's uncommitted batch.
const prefixPlan byte = 'b'

func planKey(p int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixPlan}, uint32(p))
}

// SavePlan stores the merge plan of partition p's current batch (the order in
// which input records were taken since the last checkpoint) in its own small
// transaction, before the batch's outputs are written. Commit deletes it in
// the checkpoint's transaction. A restart that finds a plan replays the same
// interleaving, so outputs already written are re-emitted byte for byte even
// when live arrival timing decided the original order.
func (s *Store) SavePlan(p int32, plan []byte) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if s.opts.ReadOnly {
		return s.wrap("save plan of", p, ErrReadOnly)
	}
	if err := s.checkFreeSpace(); err != nil {
		return s.wrap("save plan of", p, err)
	}
	val := append([]byte(nil), plan...)
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(planKey(p), val) }); err != nil {
		return s.wrap("save plan of", p, err)
	}
	return nil
}

// Plan returns partition p's stored plan, or nil when there is none.
func (s *Store) Plan(p int32) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = s.lookupValue(txn, planKey(p), nil, nil)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, s.wrap("load plan of", p, err)
	}
	return out, nil
}

// DropPlan deletes partition p's plan (a plan that no longer matches the
// checkpoint, e.g. after a changelog restore moved past it).
func (s *Store) DropPlan(p int32) error {
	if s.opts.ReadOnly {
		return nil
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Delete(planKey(p)) }); err != nil {
		return s.wrap("drop plan of", p, err)
	}
	return nil
}
