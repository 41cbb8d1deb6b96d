package state

import (
	"path/filepath"
	"sync/atomic"
	"time"
)

// Badger maps every SSTable into memory (MAP_SHARED, read-only) and reads it through the
// mapping; it has no option to use pread instead. A day-change sweep over a partition that does
// not fit in the cache reads every table, so without help the process's resident set grows by
// the whole store (~1 GB at 1M SIRENs) — clean, file-backed pages the kernel would reclaim
// under pressure, but resident all the same. The store therefore unmaps the pages of its tables
// from the process (madvise MADV_DONTNEED on the read-only MAP_SHARED table mappings: the pages
// stay in the kernel's page cache, so the next read is a minor fault, not a disk read) while a
// scan runs and after commits, at most every releaseEvery. Only tables pinned by an open Badger
// iterator are touched, so no table can be unmapped — and its address range reused — while the
// advice runs (pinTables). See mapped_linux.go; elsewhere this is a no-op.

// releaseScanBytes: scans release the table pages they faulted in every this many bytes read
// (by all scans together: one release covers every table), which bounds the resident table
// pages to about this much.
const releaseScanBytes = 64 << 20

// A random read through a mapping makes more than its own page resident: the kernel maps the
// pages around a faulting one that are in its page cache, 64 KiB by default
// (/sys/kernel/debug/fault_around_bytes; MADV_RANDOM does not turn it off) — measured, 32 KiB
// per random read of a state in the value log, where a scan in key order reads values in
// write order, that is at random. So reads are not only counted: every residentCheckEvery of
// them, the file-backed resident set of the process is read (/proc/self/statm, a few µs), and
// above releaseResidentBytes the pages are released.
const (
	residentCheckEvery   = 64
	releaseResidentBytes = 96 << 20
)

// releaseEvery throttles releases outside scans.
const releaseEvery = time.Second

type mappedReleaser struct {
	dir string // absolute, symlinks resolved: as /proc/self/maps shows it
	// pin keeps every table the advice may touch mapped until done is called; keep
	// reports whether a table file name (base name) is among them.
	pin   func() (keep func(name string) bool, done func())
	last  atomic.Int64 // unix nanos of the last release
	fails atomic.Int32 // consecutive releases where every madvise failed
	off   atomic.Bool  // the kernel refuses MADV_DONTNEED: stop trying
	n     atomic.Int64 // releases done (tests)
	read  atomic.Int64 // bytes scanned since the last release
	reads atomic.Int64 // reads counted (residentCheckEvery)
}

func newMappedReleaser(dir string, keep bool, pin func() (func(string) bool, func())) *mappedReleaser {
	if keep {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		}
	}
	return &mappedReleaser{dir: abs, pin: pin}
}

// scanned counts n bytes read through the mappings (a scan's, or a point read's) and releases
// once all reads together reach releaseScanBytes, or the file-backed resident set exceeds
// releaseResidentBytes.
func (m *mappedReleaser) scanned(n int64) {
	if m == nil {
		return
	}
	if m.read.Add(n) >= releaseScanBytes ||
		m.reads.Add(1)%residentCheckEvery == 0 && residentFileBytes() > releaseResidentBytes {
		m.read.Store(0)
		m.maybe(0)
	}
}

// maybe releases unless one ran less than every ago (or the release is
// off), and reports whether it ran.
func (m *mappedReleaser) maybe(every time.Duration) bool {
	if m == nil || m.off.Load() {
		return false
	}
	now := time.Now().UnixNano()
	last := m.last.Load()
	if now-last < int64(every) || !m.last.CompareAndSwap(last, now) {
		return false
	}
	keep, done := m.pin()
	err := releaseMapped(m.dir, keep)
	done()
	if err != nil {
		if m.fails.Add(1) >= 3 {
			m.off.Store(true)
		}
		return true
	}
	m.fails.Store(0)
	m.n.Add(1)
	return true
}
