package state

import (
	"context"
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
// the process like tables are (mapped.go) — at 1M SIRENs, gigabytes. The releaser drops them
// too, under two rules that keep a madvise from ever touching a range Badger unmapped and the
// Go runtime reused (MADV_DONTNEED zeroes anonymous memory):
//   - the newest file (the one being written) is never advised: only it is ever remapped
//     (Badger grows or truncates it while writing, and rotation truncates it);
//   - an older file is unmapped only when it is deleted, and only a GC deletes one: at once,
//     or, while an iterator is open, when the last iterator closes. gcMu is held by the GC
//     until the file it rewrote is gone from the directory, and by the release while it
//     reads /proc/self/maps and advises; so no value-log file disappears during a release.

// DefaultGCInterval is how often the store looks for value-log files to collect.
const DefaultGCInterval = 10 * time.Second

// gcDiscardRatio: a value-log file is rewritten when at least this share of it is garbage. At
// steady state the value log is then at most about twice the live states.
const gcDiscardRatio = 0.5

// gcDeleteWait bounds how long the GC waits for the file it rewrote to be deleted (Badger
// defers the deletion while an iterator is open: a day-change sweep). Past it, the release of
// value-log pages is switched off for good, since the deletion may then happen at any time.
const gcDeleteWait = 10 * time.Minute

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

// collect runs Badger's value-log GC while it rewrites files (or until stop closes). It holds
// gcMu for one file at a time, until that file is deleted, so that releases of value-log pages
// run between files.
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
			// Releases on the commit path only try the lock, and a busy GC holds it most of
			// the time: release here, between files, where it is free.
			s.mapped.maybe(0)
		}
		if !more || err != nil {
			return n, err
		}
	}
}

// collectOne rewrites one value-log file if one is at least gcDiscardRatio garbage, and waits
// until it is deleted.
func (s *Store) collectOne() (bool, error) {
	if s.scans.Load() > 0 {
		// Badger would defer the deletion to the end of the scan (a day-change sweep: seconds
		// at 1M SIRENs), and no value-log page could be released meanwhile. Next time.
		return false, nil
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	before, err := vlogFiles(s.opts.Dir)
	if err != nil {
		return false, err
	}
	err = s.db.RunValueLogGC(gcDiscardRatio)
	if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !s.awaitVlogDeletion(before) {
		s.vlogRelease.Store(false)
		s.log.Warn("state: a collected value-log file was not deleted in time; value-log pages are no longer released",
			zap.String("dir", s.opts.Dir), zap.Duration("waited", gcDeleteWait))
		return true, errors.New("state: value-log GC: the collected file was not deleted")
	}
	return true, nil
}

// awaitVlogDeletion waits until one of the files of before is gone: the one the GC rewrote
// (no other deletion can be pending, see above). Each round opens and closes an iterator, so
// that a deletion deferred by iterators that have since closed runs now.
func (s *Store) awaitVlogDeletion(before map[uint32]bool) bool {
	deadline := time.Now().Add(gcDeleteWait)
	for {
		now, err := vlogFiles(s.opts.Dir)
		if err == nil {
			for fid := range before {
				if !now[fid] {
					return true
				}
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		txn := s.db.NewTransaction(false)
		txn.NewIterator(badger.IteratorOptions{}).Close()
		txn.Discard()
		time.Sleep(5 * time.Millisecond)
	}
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

// RunGC runs the value-log GC every interval until ctx ends, then returns nil. The store already
// does so on its own (Options.GCInterval); this is for a caller that wants another cadence.
func (s *Store) RunGC(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("state: RunGC interval must be positive, got %v", every)
	}
	if s.opts.ReadOnly {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.collect(ctx.Done()); err != nil {
			s.log.Warn("state: value log GC failed", zap.String("dir", s.opts.Dir), zap.Error(err))
		}
	}
}
