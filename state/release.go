package state

import (
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
)

// stopReleaseLoop ends releaseLoop and waits for it (idempotent; not
// concurrent-safe: Close and tests call it).
func (s *Store) stopReleaseLoop() {
	if s.stopBg != nil {
		close(s.stopBg)
		<-s.bgDone
		s.stopBg = nil
	}
}

// releaseLoop releases the table and value-log pages once a second while
// the set of tables or of value-log files changes (compactions and flushes
// write new tables through mmap, commits append to the value log through
// mmap, so their pages are resident in this process until released). A tick
// whose release was throttled (a commit or scan released just before) is
// retried on the next one.
func releaseLoop(db *badger.DB, dir string, m *mappedReleaser, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(releaseEvery)
	defer t.Stop()
	var released uint64 // fingerprint of the table set at the last release
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var fp uint64
		for _, ti := range db.Tables() {
			fp = fp*31 + ti.ID + 1
		}
		if fids, err := vlogFiles(dir); err == nil {
			for fid := range fids {
				fp += uint64(fid) * 0x9e3779b97f4a7c15 // order-free: a map
			}
		}
		if fp != released && m.maybe(releaseEvery/2) {
			released = fp
		}
	}
}

// pinTables keeps the store's tables mapped until done is called, and tells which they are. A
// Badger iterator holds a reference on every table of the LSM tree when it is created, and a
// referenced table is never closed (unmapped). A table present both before and after the
// iterator was created was present when it was created (a table ID is never reused), so it is
// pinned; tables added meanwhile are left alone.
func (s *Store) pinTables() (keep func(name string) bool, done func()) {
	before := s.db.Tables()
	txn := s.db.NewTransaction(false)
	it := txn.NewIterator(badger.IteratorOptions{})
	after := s.db.Tables()
	was := make(map[uint64]bool, len(before))
	for _, t := range before {
		was[t.ID] = true
	}
	pinned := make(map[string]bool, len(after))
	for _, t := range after {
		if was[t.ID] {
			pinned[table.IDToFilename(t.ID)] = true
		}
	}
	return func(name string) bool { return pinned[name] }, func() {
		s.closeIter(it)
		txn.Discard()
	}
}

// pinMapped is pinTables plus the value-log files, pinned by delMu (vlog.go): taken if free,
// else they are left alone this time. done releases delMu before it closes the pin's iterator
// (closeIter takes it for reading).
func (s *Store) pinMapped() (keep func(name string) bool, done func()) {
	keepTable, unpin := s.pinTables()
	vlog := s.delMu.TryLock()
	return func(name string) bool {
			if _, ok := vlogFid(name); ok {
				return vlog
			}
			return keepTable(name)
		}, func() {
			if vlog {
				s.delMu.Unlock()
			}
			unpin()
		}
}
