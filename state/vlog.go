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
// run, replay and what-if alike — and, once per quiet spell, an idle pass that collects down
// to a fifth of garbage (idlePass).
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
//     closes every iterator under delMu.RLock (closeIter), including the one the idle pass's
//     memtable flush (DropPrefix) opens and closes, which it runs under delMu.RLock; a release
//     of value-log pages holds delMu exclusively. So no value-log file is unmapped while a
//     release advises its pages.

// DefaultGCInterval is how often the store looks for value-log files to collect.
const DefaultGCInterval = 10 * time.Second

// gcDiscardRatio: a value-log file is rewritten when at least this share of it is garbage. At
// steady state the value log is then at most about twice the live states.
const gcDiscardRatio = 0.5

// idleDiscardRatio: once the store has had no write for a whole GCInterval (after a write), the
// GC runs once more at this lower ratio, rewriting files down to a fifth of garbage while there
// is nothing else to do; it stops at the first write. It is not the ratio while busy because a
// file at 20 % garbage costs four live entries rewritten (and a Badger look-up each) per entry
// reclaimed. Measured at 1M SIRENs (version 3 states) after a day of traffic (BENCHMARKS.md
// round 12): the value log went from 1.25 GB to 0.95 GB; 0.3 left 1.00 GB, 0.1 no less than
// 0.2 in all (its rewrites grew the LSM tree more than they freed).
const idleDiscardRatio = 0.2

// gcLoop runs the value-log GC every interval until stop is closed: at gcDiscardRatio, and once
// per quiet spell at idleDiscardRatio (an interval without a write, after some).
func (s *Store) gcLoop(every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	var quiet quietSpell
	quiet.quiet(s.writes.Load(), false)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := s.collect(stop, gcDiscardRatio, nil); err != nil {
			s.log.Warn("state: value log GC failed", zap.String("dir", s.opts.Dir), zap.Error(err))
		}
		w := s.writes.Load()
		if s.opts.NoIdleGC || !quiet.quiet(w, s.CompactionPending() == 0) {
			continue
		}
		s.idlePass(stop, func() bool { return s.writes.Load() != w }, every)
	}
}

// IdleGC runs the GC loop's idle pass now (see idlePass) and returns how many value-log files
// it rewrote. For benchmarks (Options.NoIdleGC) and tools.
func (s *Store) IdleGC() (int, error) {
	if s.opts.ReadOnly {
		return 0, nil
	}
	return s.idlePass(nil, nil, s.opts.GCInterval)
}

// idlePass is the GC loop's pass of a quiet spell: the memtables are flushed, so that
// compactions learn which value-log entries the last writes superseded (else a store whose
// last writes fit in a memtable finds nothing to collect), then every file at least
// idleDiscardRatio garbage is rewritten. It stops when stop closes or interrupted (if not nil:
// the loop's "a write came") reports true, and returns the files it rewrote.
func (s *Store) idlePass(stop <-chan struct{}, interrupted func() bool, every time.Duration) (int, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	defer s.idlePasses.Add(1)
	lsm0, vlog0 := s.Size()
	flushed, err := s.flushMemtables()
	if err != nil {
		err = fmt.Errorf("state: idle value log GC: flush memtables of %q: %w", s.opts.Dir, err)
		s.log.Warn("state: idle value log GC", zap.Error(err))
		return 0, err
	}
	// Let the compactions of the flushed tables report their discards: they tell the GC which
	// files hold garbage. At most idleSettleMax (or one interval, if longer): a loaded machine
	// took more than a test's 50 ms interval, and the pass then found a file or two of garbage
	// instead of most of it.
	for deadline := time.Now().Add(max(every, idleSettleMax)); flushed && s.CompactionPending() > 0 && time.Now().Before(deadline); {
		select {
		case <-stop:
			return 0, nil
		case <-time.After(10 * time.Millisecond):
		}
		if interrupted != nil && interrupted() {
			return 0, nil
		}
	}
	n, err := s.collectLocked(stop, idleDiscardRatio, interrupted)
	if err != nil {
		s.log.Warn("state: idle value log GC failed", zap.String("dir", s.opts.Dir), zap.Error(err))
	} else if n > 0 {
		lsm, vlog := s.Size()
		s.log.Info("state: idle value log GC", zap.String("dir", s.opts.Dir), zap.Int("files", n),
			zap.Int64("bytes_before", lsm0+vlog0), zap.Int64("bytes_after", lsm+vlog))
	} else {
		s.log.Debug("state: idle value log GC: no file to collect", zap.String("dir", s.opts.Dir), zap.Bool("memtables_flushed", flushed))
	}
	return n, err
}

// idleSettleMax bounds the idle pass's wait for the compactions of the memtables it flushed.
const idleSettleMax = 10 * time.Second

// flushMarker is a key written only to be dropped at once: badger.DB.DropPrefix flushes the
// memtables (Badger v4 has no other way to) when its prefix has a key.
var flushMarker = []byte{'f'}

// flushMemtables writes the memtables out as level-0 tables and reports whether it did.
// DropPrefix makes every concurrent write fail (badger.ErrBlockedWrites), so it runs only when
// it gets wmu, which every write of the store holds shared, at once; else it does nothing. It
// holds delMu shared too: DropPrefix opens and closes an iterator, and the close of the last
// open iterator may delete value-log files a GC rewrote (see the top of this file).
func (s *Store) flushMemtables() (bool, error) {
	if s.checkFreeSpace() != nil {
		return false, nil // flushing writes tables through mmap: not on a full disk
	}
	if !s.wmu.TryLock() {
		return false, nil
	}
	defer s.wmu.Unlock()
	s.delMu.RLock()
	defer s.delMu.RUnlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(flushMarker, nil) }); err != nil {
		return false, err
	}
	return true, s.db.DropPrefix(flushMarker)
}

// quietSpell tells the GC loop when to run its idle pass: at the first tick of a quiet spell.
type quietSpell struct {
	last    uint64
	started bool // quiet was called once
	done    bool // the pass of this spell ran
}

// quiet takes the write count at a tick and whether Badger's compactions have caught up, and
// reports whether the idle pass runs now: no write since the previous tick, no pass yet since
// the last write, and compactions caught up (they tell the GC where the garbage of the last
// writes is). The first call only records the count (a store just opened runs its pass after
// one quiet interval: what an earlier run left).
func (q *quietSpell) quiet(writes uint64, settled bool) bool {
	if !q.started || writes != q.last {
		q.started, q.last, q.done = true, writes, false
		return false
	}
	if q.done || !settled {
		return false
	}
	q.done = true
	return true
}

// GCValueLog rewrites every value-log file that is at least half garbage, now, and returns how
// many it rewrote (benchmarks and tools; the store also does it on its own every
// Options.GCInterval).
func (s *Store) GCValueLog() (int, error) {
	if s.opts.ReadOnly {
		return 0, nil
	}
	return s.collect(nil, gcDiscardRatio, nil)
}

// IdleGCPasses is how many times the store's GC loop has run its pass at idleDiscardRatio (one
// per quiet spell: after writes, a whole Options.GCInterval without one). For benchmarks and
// tests.
func (s *Store) IdleGCPasses() uint64 { return s.idlePasses.Load() }

// collect runs Badger's value-log GC at ratio while it rewrites files, until stop closes or
// interrupted (when not nil) reports true.
func (s *Store) collect(stop <-chan struct{}, ratio float64, interrupted func() bool) (int, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	return s.collectLocked(stop, ratio, interrupted)
}

// collectLocked is collect with gcMu held.
func (s *Store) collectLocked(stop <-chan struct{}, ratio float64, interrupted func() bool) (int, error) {
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		if interrupted != nil && interrupted() {
			return n, nil
		}
		if s.checkFreeSpace() != nil {
			return n, nil // a rewrite appends to the value log: not on a full disk (Commit says why)
		}
		more, err := s.collectOne(ratio)
		if more {
			n++
			s.vread.closeAll() // let the file it collected go from the disk
		}
		if !more || err != nil {
			return n, err
		}
	}
}

// collectOne rewrites one value-log file if one is at least ratio garbage. Its guard
// iterator defers the deletion of that file to the close of the last open iterator (see above).
func (s *Store) collectOne(ratio float64) (bool, error) {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	guard := txn.NewIterator(badger.IteratorOptions{})
	err := s.db.RunValueLogGC(ratio)
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
