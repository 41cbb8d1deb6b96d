// Package state persists SIREN states and the input offsets they correspond to.
//
// Role in the data path (design.md): after a task has flushed its outputs, it commits ONE Badger
// transaction holding the dirty SIREN states of its partition and the next input offsets of that
// partition (Store.Commit). On restart the task trusts only this checkpoint: states and offsets
// are always from the same commit, so replaying from the offsets rebuilds exactly the state that
// the lost records would have produced. The write-behind Cache keeps hot states decoded in memory
// and turns many updates of a SIREN into one write per commit.
//
// The Store deals in bytes; encoding is the caller's (Codec). It never imports the engine.
//
// Key layout (one Badger key per SIREN, so a commit writes only what changed):
//
//	's' | partition (4 bytes, big-endian uint32) | SIREN bytes  →  encoded state
//	'c' | partition (4 bytes, big-endian uint32)                 →  encoded Checkpoint
//	'h' | partition (4 bytes, big-endian uint32) | SIREN bytes  →  header of the state (optional)
//	'b' | partition (4 bytes, big-endian uint32)                 →  merge plan of the batch being written (plan.go)
//
// A header key holds the new header of a state whose body did not change (Options.MergeHeader,
// KV.Header): a day-change sweep that changes the decision of 200k SIRENs writes 200k headers of
// a few bytes instead of 200k states of ~1 KB (and Badger compacts 50× less). Reads merge the
// header into the state; a header older than its state is ignored, so a stale one is harmless. A
// whole write deletes its SIREN's header key when the transaction has room (Commit), a deletion
// of the SIREN always does, and DropPartition drops them all.
//
// Big-endian partition numbers make every partition one contiguous, SIREN-ordered key range, so
// Scan is a prefix iteration and DropPartition deletes a range without touching other partitions.
//
//	'g'                                                          →  consumer group owning the directory (owner.go)
//
// Checkpoint value encoding (deterministic): version 1 without a group (what Badger stores, and
// every changelog record written before groups were recorded), version 2 with one:
//
//	0x01 |                         uvarint n | n × (uvarint len(topic) | topic | varint offset), topics sorted | uvarint len(meta) | meta
//	0x02 | uvarint len(group) | group | the same
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
	"go.uber.org/zap"
)

var (
	// ErrLocked is returned by Open when another Store (in this or another process) holds the
	// directory's lock.
	ErrLocked = errors.New("state: directory locked by another store")
	// ErrCorrupt is returned when files in the directory, or a checkpoint record, cannot be
	// decoded. The partition should be restored from its changelog (or the directory wiped).
	ErrCorrupt = errors.New("state: corrupt data")
	// ErrTxnTooBig is returned by Commit when the puts do not fit in one Badger transaction.
	// Nothing was written. It wraps badger.ErrTxnTooBig. Keep batches under MaxCommitBytes and
	// MaxCommitEntries.
	ErrTxnTooBig = fmt.Errorf("state: commit exceeds one transaction: %w", badger.ErrTxnTooBig)
	// ErrReadOnly is returned by writing methods of a Store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("state: store opened read-only")
	// ErrNoSpace is returned by Commit, before writing anything, when the filesystem of the
	// directory has less free space than Badger may need for the write (see Store.minFree).
	ErrNoSpace = errors.New("state: not enough free disk space")
)

const (
	prefixState      byte = 's'
	prefixCheckpoint byte = 'c'
	prefixHeader     byte = 'h'
	partitionLen          = 4
	// maxSIRENLen keeps keys far below Badger's 65000-byte key limit.
	maxSIRENLen = 1024
	// putOverhead is what Badger counts per entry beyond key and value bytes (metas, version),
	// plus our 5-byte key prefix.
	putOverhead = 2 + 10 + 1 + partitionLen
	// vptrLen is what Badger counts for a value stored in the value log (its pointer).
	vptrLen = 12
	// checkpointVersion is the first byte of an encoded Checkpoint without a group;
	// checkpointGroupVersion of one with a group.
	checkpointVersion      byte = 1
	checkpointGroupVersion byte = 2
)

// Store is a Badger database holding the states and checkpoints of any number of partitions.
// All methods are safe for concurrent use; each partition is expected to be written by one task.
type Store struct {
	db       *badger.DB
	opts     Options
	lock     *os.File
	log      *zap.Logger
	maxBytes int64
	maxCount int

	closeOnce sync.Once
	closeErr  error

	mapped *mappedReleaser // drops resident SSTable pages (mapped.go)
	// stopBg ends the background release of table pages (closed by Close,
	// which then waits for bgDone).
	stopBg chan struct{}
	bgDone chan struct{}

	// hdrMu guards hdrParts: the partitions that may hold header keys (found by Open, added by
	// a Commit of a header, removed by DropPartition). Reads of other partitions skip the
	// header lookup.
	hdrMu    sync.RWMutex
	hdrParts map[int32]bool

	// delMu: iterators close under its read lock (closeIter), releases of value-log pages
	// hold it exclusively (vlog.go).
	delMu  sync.RWMutex
	stopGC chan struct{}
	// gcMu serializes value-log GC passes (the loop's and GCValueLog's).
	gcMu sync.Mutex
	// wmu: every write to Badger holds it shared (update, Commit, Bulk, DropPartition); the idle
	// GC's memtable flush, which makes concurrent writes fail, takes it exclusively, and only
	// with TryLock (so no writer ever waits on a blocked Lock).
	wmu sync.RWMutex
	// writes counts Commits and bulk puts (the GC loop's idle test); idlePasses the idle GC
	// passes run (vlog.go).
	writes, idlePasses atomic.Uint64
	// vread reads values out of the value log with pread (vread.go).
	vread  *vlogReader
	gcDone chan struct{}
}

// KV is one state write. A nil Value deletes the SIREN.
type KV struct {
	SIREN string
	Value []byte
	// Header: Value is only the new header of the stored state (Options.MergeHeader), written
	// under the SIREN's header key; the stored state stays. The state must exist.
	Header bool
	// Full is the whole new encoding of a Header put, for copies that need the state itself
	// (a changelog). Set by Cache.Encode when Cache.SetEncodeFull is on; the Store ignores it.
	Full []byte
	// hdr: what the Cache knows of the SIREN's header key in the store before the commit (it
	// read the state, or wrote the header itself); Commit updates it to what holds after.
	// Other callers leave it unknown.
	hdr hdrState
}

// Open opens (creating if needed) the store in o.Dir. It takes an exclusive flock on Dir/LOCK
// (shared when ReadOnly); if another store holds it, the error wraps ErrLocked. Errors that look
// like damaged files wrap ErrCorrupt. Besides Badger's own compactors and flushers, Open starts
// one goroutine (stopped by Close) that releases the pages of new table files every second
// (mapped.go): compactions write tables through mmap, and an idle task has no commit or scan
// that would release them.
func Open(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	if !o.ReadOnly {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("state: create dir %q: %w", o.Dir, err)
		}
	}
	lock, err := lockDir(o.Dir, o.ReadOnly)
	if err != nil {
		return nil, err
	}
	db, err := openBadger(o)
	if err != nil {
		return nil, errors.Join(err, unlockDir(lock))
	}
	maxBatch := badgerMaxBatchSize(o.MemTableSize)
	s := &Store{
		db:   db,
		opts: o,
		lock: lock,
		log:  o.Logger,
		// 10 % of MemTableSize against Badger's 15 % limit: headroom for the checkpoint entry
		// and Badger's per-entry accounting.
		maxBytes: o.MemTableSize / 10,
		maxCount: int(maxBatch/int64(skl.MaxNodeSize)) * 2 / 3,
	}
	if s.hdrParts, err = findHeaderPartitions(db); err != nil {
		return nil, errors.Join(fmt.Errorf("state: open %q: list header keys: %w", o.Dir, err), db.Close(), unlockDir(lock))
	}
	s.mapped = newMappedReleaser(o.Dir, o.KeepTablePages, s.pinMapped)
	s.vread = newVlogReader(o.Dir)
	if s.mapped != nil {
		s.stopBg, s.bgDone = make(chan struct{}), make(chan struct{})
		go releaseLoop(s.db, o.Dir, s.mapped, s.stopBg, s.bgDone)
	}
	if !o.ReadOnly {
		s.stopGC, s.gcDone = make(chan struct{}), make(chan struct{})
		go s.gcLoop(o.GCInterval, s.stopGC, s.gcDone)
	}
	return s, nil
}

// update is db.Update for the store's small writes (plan, owner, holdout, replay identity),
// holding wmu shared.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	s.writes.Add(1)
	return s.db.Update(fn)
}

func badgerMaxBatchSize(memTableSize int64) int64 { return 15 * memTableSize / 100 }

// openBadger opens Badger, turning its panics (it asserts on some malformed files) into errors.
func openBadger(o Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("state: open %q: badger panicked: %v: %w", o.Dir, r, ErrCorrupt)
		}
	}()
	if err := checkTables(o.Dir, o.badgerOptions()); err != nil {
		return nil, err
	}
	db, err = badger.Open(o.badgerOptions())
	if err != nil {
		if looksCorrupt(err) {
			return nil, fmt.Errorf("state: open %q: %w: %w", o.Dir, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("state: open %q: %w", o.Dir, err)
	}
	return db, nil
}

// looksCorrupt classifies Badger open errors caused by damaged files (Badger has few sentinels
// for them, so part of this is by message).
func looksCorrupt(err error) bool {
	if errors.Is(err, badger.ErrTruncateNeeded) || errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"bad magic", "checksum", "corrupt", "manifest", "unsupported version",
		"truncate", "invalid", "unexpected eof", "while opening tables", "while opening memtables",
		"failed to read", "decode", "magic",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// CompactionPending reports how many LSM levels Badger's compactors would
// pick now (adjusted score >= 1): 0 once background compaction has caught up
// with the writes. For benchmarks and operators; it does not block.
func (s *Store) CompactionPending() int {
	n := 0
	for _, l := range s.db.Levels() {
		if l.Adjusted >= 1 {
			n++
		}
	}
	return n
}

// Close closes Badger (flushing memtables) and releases the directory lock. Later calls return
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopReleaseLoop()
		if s.stopGC != nil {
			close(s.stopGC)
			<-s.gcDone
		}
		defer s.vread.closeAll()
		var errs []error
		if err := s.checkFreeSpace(); err != nil && !s.opts.ReadOnly {
			// Closing flushes the memtables into new table files through mmap: on a full disk
			// that is a SIGBUS. Leave them in the WAL, as a kill -9 would (see SyncWrites):
			// the next Open replays it. Badger's goroutines end with the process.
			errs = append(errs, fmt.Errorf("state: close %q without flushing (%w): committed data stays in the write-ahead log and is replayed on the next open", s.opts.Dir, err))
		} else if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("state: close %q: %w", s.opts.Dir, err))
		}
		if err := unlockDir(s.lock); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.opts.Dir }

// sirenKey appends prefix | partition | siren to dst.
func sirenKey(dst []byte, prefix byte, p int32, siren string) []byte {
	dst = binary.BigEndian.AppendUint32(append(dst, prefix), uint32(p))
	return append(dst, siren...)
}

func stateKey(dst []byte, p int32, siren string) []byte {
	return sirenKey(dst, prefixState, p, siren)
}

func statePrefix(p int32) []byte { return sirenKey(nil, prefixState, p, "") }

func checkPartition(p int32) error {
	if p < 0 {
		return fmt.Errorf("state: invalid partition %d", p)
	}
	return nil
}

func checkSIREN(p int32, siren string) error {
	if siren == "" || len(siren) > maxSIRENLen {
		return fmt.Errorf("state: partition %d: invalid SIREN key of %d bytes", p, len(siren))
	}
	return nil
}

func (s *Store) wrap(op string, p int32, err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("state: %s %q partition %d: %w", op, s.opts.Dir, p, ErrTxnTooBig)
	}
	return fmt.Errorf("state: %s %q partition %d: %w", op, s.opts.Dir, p, err)
}

// Get returns a copy of the stored state of siren in partition p (its header key merged in, see
// Options.MergeHeader), or nil, nil when missing. Cost: one Badger point read (two in a partition
// with header keys) and one allocation for the copy.
func (s *Store) Get(p int32, siren string) ([]byte, error) {
	if err := checkPartition(p); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, _, err = s.getIn(txn, p, siren, nil, false)
		return err
	})
	return s.getResult(out, err, p, siren)
}

// getIn reads the state of siren in txn, merged with its header key, and says whether it had
// one. The state is read into buf's storage (nil: a new slice) unless a header is merged in.
// noHeader: the caller knows there is no header key (cache_headers.go): do not look.
func (s *Store) getIn(txn *badger.Txn, p int32, siren string, buf []byte, noHeader bool) (out []byte, hdr hdrState, err error) {
	var kbuf [64]byte
	base, err := s.lookupValue(txn, stateKey(kbuf[:0], p, siren), nil, buf)
	if err != nil {
		return nil, hdrUnknown, err
	}
	if noHeader || !s.mayHaveHeaders(p) {
		return base, hdrNone, nil
	}
	// Its own buffer: Badger's item keeps a reference to the key it was read with.
	var hbuf [64]byte
	h, err := s.lookupValue(txn, headerKey(hbuf[:0], p, siren), nil, nil)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return base, hdrNone, nil
	}
	if err != nil {
		return nil, hdrUnknown, err
	}
	out, err = s.merge(nil, p, siren, base, h)
	return out, hdrStored, err
}

func (s *Store) getResult(out []byte, err error, p int32, siren string) ([]byte, error) {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: get %q partition %d SIREN %s: %w", s.opts.Dir, p, siren, err)
	}
	return out, nil
}

// Snapshot is a read view of the store as of its creation. Gets on it cost
// what Store.Get costs minus one wait: every new Badger read transaction
// first waits until each commit that started before it is applied (its
// read timestamp), so a Store.Get issued while another goroutine's commit
// is being written blocks for the rest of that commit — a task reading
// cache misses while its previous batch is written in the background would
// wait on every read. A Snapshot waits once, when it is created.
//
// It does not see commits made after it was created: a reader that needs
// them (the cache, after each of its commits) opens a new one. Not safe for
// concurrent use; Close releases it.
type Snapshot struct {
	s   *Store
	txn *badger.Txn
}

// Snapshot opens a read view of the store as of now.
func (s *Store) Snapshot() *Snapshot {
	return &Snapshot{s: s, txn: s.db.NewTransaction(false)}
}

// Get is Store.Get as of the snapshot.
func (sn *Snapshot) Get(p int32, siren string) ([]byte, error) {
	out, _, err := sn.getHinted(p, siren, nil, false)
	return out, err
}

// getHinted is Get, read into buf's storage (see getIn, also for noHeader), that also says
// whether the SIREN had a header key as of the snapshot.
func (sn *Snapshot) getHinted(p int32, siren string, buf []byte, noHeader bool) ([]byte, hdrState, error) {
	if err := checkPartition(p); err != nil {
		return nil, hdrUnknown, err
	}
	out, hdr, err := sn.s.getIn(sn.txn, p, siren, buf, noHeader)
	out, err = sn.s.getResult(out, err, p, siren)
	return out, hdr, err
}

// Close releases the snapshot (idempotent, nil-safe).
func (sn *Snapshot) Close() {
	if sn != nil && sn.txn != nil {
		sn.txn.Discard()
		sn.txn = nil
	}
}

// Commit writes puts and the checkpoint of p in ONE Badger transaction: after a crash either all
// of them are visible or none. Durable across a process kill once it returns (see
// Options.SyncWrites). If the batch does not fit in one transaction the error wraps ErrTxnTooBig
// and nothing is written; keep batches under MaxCommitBytes / MaxCommitEntries. Puts must be
// for distinct SIRENs (a repeated SIREN: the last one wins). Commit does not retain puts.
func (s *Store) Commit(p int32, puts []KV, cp Checkpoint) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if s.opts.ReadOnly {
		return s.wrap("commit", p, ErrReadOnly)
	}
	headers := false
	for i := range puts {
		if err := checkSIREN(p, puts[i].SIREN); err != nil {
			return err
		}
		if puts[i].Header {
			if puts[i].Value == nil {
				return fmt.Errorf("state: partition %d SIREN %s: a header put needs a value", p, puts[i].SIREN)
			}
			if s.opts.MergeHeader == nil {
				return fmt.Errorf("state: partition %d SIREN %s: header put without Options.MergeHeader", p, puts[i].SIREN)
			}
			headers = true
		}
	}
	if headers {
		// Before the transaction: a reader that sees the header must know to merge it.
		s.setHeaders(p, true)
	}
	hadHeaders := s.mayHaveHeaders(p)
	if err := s.checkFreeSpace(); err != nil {
		return s.wrap("commit", p, err)
	}
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	s.writes.Add(1)
	cpVal := encodeCheckpoint(nil, cp)
	// One buffer for all keys: Badger keeps references to keys and values until the txn ends.
	n := 0
	for i := range puts {
		n += 1 + partitionLen + len(puts[i].SIREN)
	}
	keys := make([]byte, 0, n)
	// Stale header keys are harmless (reads ignore a header older than its state), so a whole
	// write deletes its SIREN's header key only while the transaction stays within the store's
	// own limits (MaxCommitEntries, MaxCommitBytes; Badger's are 1.5× those). This bounds the
	// header keys to SIRENs whose last write was a header (within a commit's limits).
	cleanN, cleanB := 0, int64(0)
	if hadHeaders {
		cleanN, cleanB = s.maxCount-len(puts)-2, s.maxBytes-int64(len(cpVal))-2*putOverhead
		for i := range puts {
			cleanB -= s.PutCost(puts[i].SIREN, puts[i].Value) + putOverhead
		}
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for i := range puts {
			start := len(keys)
			if puts[i].Header {
				keys = headerKey(keys, p, puts[i].SIREN)
			} else {
				keys = stateKey(keys, p, puts[i].SIREN)
			}
			k := keys[start:len(keys):len(keys)]
			var err error
			switch {
			case puts[i].Value == nil:
				err = txn.Delete(k)
				if err == nil && hadHeaders {
					// A SIREN created again later starts a new seq: its old header must go.
					err = txn.Delete(headerKey(nil, p, puts[i].SIREN))
				}
				puts[i].hdr = hdrNone
			case puts[i].Header:
				err = txn.Set(k, puts[i].Value)
				puts[i].hdr = hdrStored
			default:
				err = txn.Set(k, puts[i].Value)
				if err == nil && hadHeaders {
					err = cleanHeader(txn, p, &puts[i], &cleanN, &cleanB)
				} else if !hadHeaders {
					puts[i].hdr = hdrNone // the partition has no header key at all
				}
			}
			if err != nil {
				return err
			}
		}
		// The batch this commit makes durable no longer needs its plan.
		if err := txn.Delete(planKey(p)); err != nil {
			return err
		}
		return txn.Set(checkpointKey(p), cpVal)
	})
	if err != nil {
		return s.wrap(fmt.Sprintf("commit of %d puts to", len(puts)), p, err)
	}
	// Reads of states not in the cache faulted table pages in: drop them now and then.
	s.mapped.maybe(releaseEvery)
	return nil
}

// checkFreeSpace refuses a write when the directory's filesystem has less than minFree bytes
// available. Badger writes its WAL (.mem) and value log (.vlog) through memory-mapped, sparsely
// preallocated files: on a full disk the write is not an error but a SIGBUS that kills the
// process without a word. Refusing first turns a full disk into a clear error and a clean stop,
// with nothing committed. Cost: one statfs per commit (about a microsecond).
func (s *Store) checkFreeSpace() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.opts.Dir, &st); err != nil {
		return nil // cannot tell: let Badger try
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := s.minFree(); free < need {
		return fmt.Errorf("%w: %q has %d MiB available, Badger may need %d MiB (a memtable WAL pair and a value log file)",
			ErrNoSpace, s.opts.Dir, free>>20, need>>20)
	}
	return nil
}

// minFree is what one write may claim on disk in the worst case: the rest of the current and
// the next memtable WAL file and a new value log file (Badger creates one at twice
// ValueLogFileSize, sparse, and truncates it when it rotates).
func (s *Store) minFree() int64 { return 2*s.opts.MemTableSize + 2*s.opts.ValueLogFileSize }

// MaxCommitBytes is a safe upper bound on the sum of PutCost over the puts of one
// Commit (10 % of MemTableSize; Badger's limit is 15 % counted with per-entry overheads). With
// the defaults: 1.6 MiB.
func (s *Store) MaxCommitBytes() int64 { return s.maxBytes }

// MaxCommitEntries is a safe upper bound on the number of puts of one Commit (Badger also limits
// the entry count of a txn to 15 % of MemTableSize divided by a skiplist node size). With the
// defaults: about 17,000.
func (s *Store) MaxCommitEntries() int { return s.maxCount }

// PutCost is what one put counts against MaxCommitBytes: what Badger counts of it in a
// transaction — the SIREN and the value, or, for a value of ValueThreshold bytes or more (a
// state with history, stored in the value log), the SIREN and a value pointer. The bound
// reserves room for Badger's per-entry overheads of up to MaxCommitEntries puts.
func (s *Store) PutCost(siren string, val []byte) int64 {
	if int64(len(val)) >= s.opts.ValueThreshold {
		return int64(len(siren)) + vptrLen
	}
	return int64(len(siren) + len(val))
}

// --- checkpoint encoding ---
