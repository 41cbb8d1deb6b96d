package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// States live in Badger's value log (Options.ValueThreshold is below a SIREN's encoded size):
// the LSM tree holds ~50 bytes per SIREN (key and value pointer), so compaction no longer
// rewrites every state 10–20 times, and a state write is a sequential append. The price is
// garbage: every write leaves the previous version in its value-log file until a GC rewrites
// that file's live entries and deletes it. The store therefore runs the value-log GC itself
// (gcLoop, every Options.GCInterval, repeated while files are rewritten) for every writer —
// run, replay and what-if alike.
//
// Badger writes and reads value-log files through MAP_SHARED mmaps, so they are resident in
// the process like tables are (mapped.go) — at 1M SIRENs, gigabytes: a random read of one state
// maps up to 64 KiB around it (the kernel's fault-around). The releaser drops them too, under
// rules that keep a madvise from ever touching a range Badger unmapped and the Go runtime
// reused (MADV_DONTNEED zeroes anonymous memory):
//   - the newest file (the one being written) is never advised: only it is ever remapped
//     (Badger grows or truncates it while writing, and rotation truncates it);
//   - an older file is unmapped only when it is deleted, after a GC rewrote it: inside
//     RunValueLogGC when no iterator is open, else inside the Close of the last open
//     iterator. The store runs RunValueLogGC only while it holds an iterator open (guard), and
//     closes every iterator under delMu.RLock (closeIter); a release of value-log pages holds
//     delMu exclusively. So no value-log file is unmapped while a release advises its pages.

// DefaultGCInterval is how often the store looks for value-log files to collect.
const DefaultGCInterval = 10 * time.Second

// gcDiscardRatio: a value-log file is rewritten when at least this share of it is garbage. At
// steady state the value log is then at most about twice the live states.
const gcDiscardRatio = 0.5

// gcLoop runs the value-log GC every interval until stop is closed.
func (s *Store) gcLoop(every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := s.collect(stop); err != nil {
			s.log.Warn("state: value log GC failed", zap.String("dir", s.opts.Dir), zap.Error(err))
		}
	}
}

// GCValueLog rewrites every value-log file that is at least half garbage, now, and returns how
// many it rewrote (benchmarks and tools; the store also does it on its own every
// Options.GCInterval).
func (s *Store) GCValueLog() (int, error) {
	if s.opts.ReadOnly {
		return 0, nil
	}
	return s.collect(nil)
}

// collect runs Badger's value-log GC while it rewrites files (or until stop closes).
func (s *Store) collect(stop <-chan struct{}) (int, error) {
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		if s.checkFreeSpace() != nil {
			return n, nil // a rewrite appends to the value log: not on a full disk (Commit says why)
		}
		more, err := s.collectOne()
		if more {
			n++
			s.vread.closeAll() // let the file it collected go from the disk
		}
		if !more || err != nil {
			return n, err
		}
	}
}

// collectOne rewrites one value-log file if one is at least gcDiscardRatio garbage. Its guard
// iterator defers the deletion of that file to the close of the last open iterator (see above).
func (s *Store) collectOne() (bool, error) {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	guard := txn.NewIterator(badger.IteratorOptions{})
	err := s.db.RunValueLogGC(gcDiscardRatio)
	s.closeIter(guard)
	if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
		return false, nil
	}
	return err == nil, err
}

// closeIter closes a Badger iterator. The close of the last open iterator deletes (unmaps) the
// value-log files a GC rewrote meanwhile: never during a release of value-log pages.
func (s *Store) closeIter(it *badger.Iterator) {
	s.delMu.RLock()
	defer s.delMu.RUnlock()
	it.Close()
}

// vlogFiles lists the value-log file ids in dir.
func vlogFiles(dir string) (map[uint32]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state: list %q: %w", dir, err)
	}
	out := map[uint32]bool{}
	for _, e := range ents {
		if fid, ok := vlogFid(e.Name()); ok {
			out[fid] = true
		}
	}
	return out, nil
}

// vlogFid parses a value-log file name (000042.vlog).
func vlogFid(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(filepath.Base(name), ".vlog")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(base, 10, 32)
	return uint32(v), err == nil
}
