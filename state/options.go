package state

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

// Tuned defaults (measured; BENCHMARKS.md has the memory figures). Badger's own defaults
// (64 MiB memtables ×5, 256 MiB block cache, unbounded index cache, 1 GiB value log files)
// held RSS at 1.7–1.95 GB on a 1M-key workload; this profile held ~574 MB at a similar speed.
const (
	// DefaultMemTableSize bounds each memtable (and its WAL file). It also bounds the size of one
	// transaction: Badger rejects a txn above 15 % of it, so 16 MiB allows ~2.4 MiB per Commit.
	DefaultMemTableSize int64 = 16 << 20
	// DefaultNumMemtables: one active plus one being flushed is enough for a single writer per
	// partition; each extra memtable costs MemTableSize of RAM.
	DefaultNumMemtables = 2
	// DefaultNumLevelZeroTables: compact each flushed memtable at once. With the states in the
	// value log the LSM tree is small (~50 B per SIREN), so this is cheap, and it is what turns
	// superseded states into discard statistics, without which the value-log GC finds nothing
	// to collect (2 let the value log grow to twice as much garbage between compactions).
	DefaultNumLevelZeroTables = 1
	// DefaultNumLevelZeroTablesStall: stall writes only well after compaction starts, so commit
	// latency does not spike on a burst.
	DefaultNumLevelZeroTablesStall = 8
	// DefaultBaseTableSize: small SSTables (2 MiB) keep compaction steps short on 2 cores.
	DefaultBaseTableSize int64 = 2 << 20
	// DefaultIndexCacheSize caps the memory used by table indices and bloom filters (0 in Badger
	// means "keep all in RAM", which grows with the key count).
	DefaultIndexCacheSize int64 = 16 << 20
	// DefaultNumCompactors: one per core on the target 2-core machines (Badger refuses 1).
	DefaultNumCompactors = 2
	// DefaultValueThreshold: a SIREN with weeks of history encodes to 500 B–1 KB and goes to the
	// value log; the LSM tree keeps its key and a pointer. Leveled compaction then moves ~50 B
	// per SIREN instead of the whole state 10–20 times over (at 1M SIRENs touched a few times a
	// day, that rewriting was most of the CPU and of the resident table pages), and a state
	// write is a sequential append. Checkpoints, plans, header keys and young states stay
	// inline. The value log's garbage is collected by the store (vlog.go), and states are read
	// from it with pread (vread.go). BENCHMARKS.md round 9 has the measurements (it was 1 KiB,
	// all states inline, before).
	DefaultValueThreshold int64 = 256
	// DefaultValueLogFileSize: the value-log GC rewrites one file at a time and holds the lock
	// that releases of value-log pages need while it does (vlog.go); 16 MiB files keep that
	// short (tens of ms), and let it reclaim space in small steps.
	DefaultValueLogFileSize int64 = 16 << 20
)

// Options configures a Store. The zero value of every field but Dir selects the default.
type Options struct {
	// Dir is the Badger directory (created if missing). Required. The Store takes an exclusive
	// flock on Dir/LOCK for its lifetime.
	Dir string

	// Logger receives Badger's warnings and errors (Badger's info/debug output is dropped).
	// Default zap.NewNop().
	Logger *zap.Logger

	// KeepTablePages disables the release of resident SSTable pages (mapped.go). Badger reads
	// its tables through MAP_SHARED mmaps, so a scan of a partition bigger than the cache (a
	// day-change sweep at 1M SIRENs) would otherwise leave the whole store resident in the
	// process (clean file-backed pages, but RSS all the same). By default the store asks the
	// kernel (madvise MADV_DONTNEED on the read-only mappings) to drop them every 64 MiB of a scan and at
	// most once a second after commits; the price is re-reading them from the page cache or
	// disk on the next scan. Default false (pages released).
	KeepTablePages bool

	// SyncWrites makes every Commit fsync (msync) the WAL before returning. Default false.
	//
	// Without it, a Commit is still durable across a kill -9 of the PROCESS: Badger copies every
	// entry of the txn, followed by a txn-finish marker, into its memtable WAL (the .mem file)
	// and, for large values, the value log (.vlog) before db.Update returns; both files are
	// MAP_SHARED mmaps (ristretto z.OpenMmapFile), so the bytes are in the kernel page cache the
	// moment the copy ends and survive the death of the process. On reopen, Badger replays the
	// WAL and keeps only txns whose finish marker and checksums are intact, so a txn is either
	// wholly present or absent (verified in badger v4.9.6 memtable.go/value.go/db.go, and by
	// TestCrashDurability, which SIGKILLs a committing child process).
	// What is NOT covered without SyncWrites is a kernel crash or power loss: the last txns
	// (up to the dirty-page writeback interval) may vanish. They vanish whole, offsets included,
	// so the task simply re-reads those records from Kafka and recomputes the same state
	// (deterministic engine, idempotent outputs). Paying an fsync per commit is therefore not
	// needed for correctness, only to shrink replay after a machine crash.
	SyncWrites bool

	// MemTableSize, default DefaultMemTableSize. Bounds a Commit: see Store.MaxCommitBytes.
	MemTableSize int64
	// NumMemtables, default DefaultNumMemtables.
	NumMemtables int
	// NumLevelZeroTables, default DefaultNumLevelZeroTables.
	NumLevelZeroTables int
	// NumLevelZeroTablesStall, default DefaultNumLevelZeroTablesStall.
	NumLevelZeroTablesStall int
	// BaseTableSize, default DefaultBaseTableSize.
	BaseTableSize int64
	// IndexCacheSize, default DefaultIndexCacheSize.
	IndexCacheSize int64
	// NumCompactors, default DefaultNumCompactors. Must not be 1.
	NumCompactors int
	// ValueThreshold, default DefaultValueThreshold. Values at or above it go to the value log.
	ValueThreshold int64
	// ValueLogFileSize, default DefaultValueLogFileSize.
	ValueLogFileSize int64
	// GCInterval is how often the store runs the value-log GC (vlog.go), default
	// DefaultGCInterval.
	GCInterval time.Duration
	// NoIdleGC turns off the GC loop's idle pass (after writes, a whole GCInterval without one:
	// memtables flushed, files down to a fifth of garbage rewritten). For benchmarks that
	// measure the store before and after it (they run it with Store.IdleGC).
	NoIdleGC bool

	// ReadOnly opens the directory for reading (inspection tools, tests). It takes a shared
	// flock, so several read-only Stores may coexist but none with a writer. Commit, Bulk and
	// DropPartition return ErrReadOnly. Badger refuses to open read-only a directory whose last
	// writer did not close cleanly (it would need to replay the WAL).
	ReadOnly bool

	// MergeHeader enables header-only writes (KV.Header, Cache.PutHeader): a write that
	// changes only the first bytes of a state — its header, in the caller's format — stores
	// that header under a second, small key instead of rewriting the whole state. Every read
	// (Get, Scan, ScanFrom and the cache built on them) then returns
	// MergeHeader(dst, base, header): base with its header replaced when header is newer,
	// base unchanged when it is stale (a full write after the header write, which leaves
	// the header key in place). It must append to dst and return the extended slice, must
	// not retain base or header, and must be deterministic. The processor passes
	// engine.MergeHeader. A store whose directory holds header keys refuses reads of their
	// partitions, with an error, when MergeHeader is nil.
	MergeHeader func(dst, base, header []byte) ([]byte, error)
}

// Validate reports the first invalid field. Zero values are valid (they select defaults).
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("state: Options.Dir is required")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MemTableSize", o.MemTableSize},
		{"NumMemtables", int64(o.NumMemtables)},
		{"NumLevelZeroTables", int64(o.NumLevelZeroTables)},
		{"NumLevelZeroTablesStall", int64(o.NumLevelZeroTablesStall)},
		{"BaseTableSize", o.BaseTableSize},
		{"IndexCacheSize", o.IndexCacheSize},
		{"NumCompactors", int64(o.NumCompactors)},
		{"ValueThreshold", o.ValueThreshold},
		{"ValueLogFileSize", o.ValueLogFileSize},
		{"GCInterval", int64(o.GCInterval)},
	} {
		if f.v < 0 {
			return fmt.Errorf("state: Options.%s must not be negative, got %d", f.name, f.v)
		}
	}
	d := *o
	d.setDefaults()
	if d.MemTableSize < 1<<20 {
		return fmt.Errorf("state: Options.MemTableSize must be at least 1 MiB, got %d", d.MemTableSize)
	}
	if d.NumCompactors == 1 {
		return errors.New("state: Options.NumCompactors must be 0 (default) or at least 2, got 1")
	}
	if d.NumLevelZeroTablesStall <= d.NumLevelZeroTables {
		return fmt.Errorf("state: Options.NumLevelZeroTablesStall (%d) must exceed NumLevelZeroTables (%d)",
			d.NumLevelZeroTablesStall, d.NumLevelZeroTables)
	}
	if maxTxn := badgerMaxBatchSize(d.MemTableSize); d.ValueThreshold > maxTxn {
		return fmt.Errorf("state: Options.ValueThreshold (%d) must not exceed 15%% of MemTableSize (%d)",
			d.ValueThreshold, maxTxn)
	}
	if d.ValueLogFileSize < 1<<20 || d.ValueLogFileSize >= 2<<30 {
		return fmt.Errorf("state: Options.ValueLogFileSize must be in [1 MiB, 2 GiB), got %d", d.ValueLogFileSize)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.NumMemtables == 0 {
		o.NumMemtables = DefaultNumMemtables
	}
	if o.NumLevelZeroTables == 0 {
		o.NumLevelZeroTables = DefaultNumLevelZeroTables
	}
	if o.NumLevelZeroTablesStall == 0 {
		o.NumLevelZeroTablesStall = DefaultNumLevelZeroTablesStall
	}
	if o.BaseTableSize == 0 {
		o.BaseTableSize = DefaultBaseTableSize
	}
	if o.IndexCacheSize == 0 {
		o.IndexCacheSize = DefaultIndexCacheSize
	}
	if o.NumCompactors == 0 {
		o.NumCompactors = DefaultNumCompactors
	}
	if o.ValueThreshold == 0 {
		o.ValueThreshold = DefaultValueThreshold
	}
	if o.ValueLogFileSize == 0 {
		o.ValueLogFileSize = DefaultValueLogFileSize
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
}

// badgerOptions maps defaulted Options onto Badger's. Choices not exposed as fields:
//   - DetectConflicts false: each partition's keys are written by exactly one task goroutine and
//     a Commit is a blind write, so conflict tracking is pure overhead (memory per txn).
//   - No compression: states are small and already compact; snappy/zstd would cost CPU on the
//     2-core target for little disk saved.
//   - BlockCacheSize 0: Badger only needs a block cache when compression or encryption is on;
//     hot states live in our write-behind Cache anyway.
//   - BypassLockGuard: we take the same Dir/LOCK flock ourselves, to report ErrLocked clearly.
//   - Logging: WARNING and ERROR through a zap adapter (badgerLogger drops info and debug).
func (o *Options) badgerOptions() badger.Options {
	return badger.DefaultOptions(o.Dir).
		// Not WithLoggingLevel: it would replace our logger with Badger's stderr logger.
		WithLogger(badgerLogger{o.Logger.Sugar()}).
		WithSyncWrites(o.SyncWrites).
		WithReadOnly(o.ReadOnly).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithNumLevelZeroTables(o.NumLevelZeroTables).
		WithNumLevelZeroTablesStall(o.NumLevelZeroTablesStall).
		WithBaseTableSize(o.BaseTableSize).
		WithIndexCacheSize(o.IndexCacheSize).
		WithNumCompactors(o.NumCompactors).
		WithMaxLevels(2).
		WithValueThreshold(o.ValueThreshold).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithDetectConflicts(false).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithBypassLockGuard(true).
		WithMetricsEnabled(false)
}

// badgerLogger adapts zap to badger.Logger. Badger's Infof/Debugf are dropped (it is also set to
// WARNING, so they are rarely even formatted).
type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.s.Error("badger: " + strings.TrimRight(fmt.Sprintf(f, a...), "\n"))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.s.Warn("badger: " + strings.TrimRight(fmt.Sprintf(f, a...), "\n"))
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
