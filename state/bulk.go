package state

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Bulk writes many states of one partition fast and NON-atomically (Badger WriteBatch), for
// restoring a partition from its changelog. The checkpoint of the partition is deleted before the
// first state is written and written again only by Finish, in its own transaction after every
// state is durable: an interrupted restore leaves no checkpoint, which the task reads as "restore
// again". Call DropPartition first if the partition may hold stale states. Not safe for
// concurrent use. From its first Put to its Finish or Cancel it holds the store's write lock
// shared: the idle GC does not flush memtables meanwhile (a WriteBatch's commits would fail).
type Bulk struct {
	s       *Store
	p       int32
	wb      *badger.WriteBatch
	started bool
	locked  bool // holds s.wmu shared
	done    bool
	err     error
}

// BulkWriter starts a bulk restore of partition p.
func (s *Store) BulkWriter(p int32) *Bulk {
	return &Bulk{s: s, p: p}
}

func (b *Bulk) start() error {
	if b.err != nil {
		return b.err
	}
	if b.done {
		return fmt.Errorf("state: bulk restore of partition %d already finished or cancelled", b.p)
	}
	if b.started {
		return nil
	}
	if err := checkPartition(b.p); err != nil {
		b.err = err
		return err
	}
	if b.s.opts.ReadOnly {
		b.err = b.s.wrap("bulk restore", b.p, ErrReadOnly)
		return b.err
	}
	b.s.wmu.RLock()
	b.locked = true
	if err := b.s.db.Update(func(txn *badger.Txn) error { return txn.Delete(checkpointKey(b.p)) }); err != nil {
		b.err = b.s.wrap("bulk restore: delete checkpoint of", b.p, err)
		b.unlock()
		return b.err
	}
	b.wb = b.s.db.NewWriteBatch()
	b.started = true
	return nil
}

// unlock releases the store's write lock once.
func (b *Bulk) unlock() {
	if b.locked {
		b.locked = false
		b.s.wmu.RUnlock()
	}
}

// Put queues one state (nil val deletes the SIREN). val is copied. Errors are sticky.
func (b *Bulk) Put(siren string, val []byte) error {
	if err := b.start(); err != nil {
		return err
	}
	if err := checkSIREN(b.p, siren); err != nil {
		return err
	}
	b.s.writes.Add(1)
	key := stateKey(make([]byte, 0, 1+partitionLen+len(siren)), b.p, siren)
	var err error
	if val == nil {
		err = b.wb.Delete(key)
		if err == nil && b.s.mayHaveHeaders(b.p) {
			// A SIREN created again later starts a new seq: its old header must go.
			err = b.wb.Delete(headerKey(nil, b.p, siren))
		}
	} else {
		// A header key of siren, if any, stays: it is older than val (whose seq
		// includes every decision of the SIREN's history), so reads ignore it.
		err = b.wb.Set(key, append([]byte(nil), val...))
	}
	if err != nil {
		b.err = b.s.wrap("bulk restore", b.p, err)
		return b.err
	}
	return nil
}

// Finish flushes the queued states, then commits cp as the partition's checkpoint.
func (b *Bulk) Finish(cp Checkpoint) error {
	if err := b.start(); err != nil {
		b.Cancel() // a Put failed: nothing more is written, and the store's write lock goes
		return err
	}
	b.done = true
	defer b.unlock()
	if err := b.wb.Flush(); err != nil {
		b.err = b.s.wrap("bulk restore: flush states of", b.p, err)
		return b.err
	}
	if err := b.s.Commit(b.p, nil, cp); err != nil {
		b.err = err
		return err
	}
	return nil
}

// Cancel discards queued states not yet written (some may already be). The partition is left
// without a checkpoint. Safe to call after Finish (no-op).
func (b *Bulk) Cancel() {
	if b.done {
		return
	}
	if b.wb != nil {
		b.wb.Cancel()
	}
	b.unlock()
	b.done = true
	if b.err == nil {
		b.err = errors.New("state: bulk restore cancelled")
	}
}
