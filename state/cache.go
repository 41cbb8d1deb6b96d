package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Codec encodes the states held by a Cache. It is the caller's (engine-specific) type.
type Codec[V any] interface {
	// Marshal appends the encoding of v to dst and returns the extended slice.
	Marshal(dst []byte, v V) []byte
	// Unmarshal decodes the state of siren. b is only valid during the call: do not retain it.
	Unmarshal(siren string, b []byte) (V, error)
}

// HeaderCodec is implemented by a Codec whose encodings start with a header that can change
// alone (the decision of a SIREN state): MarshalHeader appends the header of v — the bytes
// Options.MergeHeader puts in front of a stored body. Cache.PutHeader needs it.
type HeaderCodec[V any] interface {
	MarshalHeader(dst []byte, v V) []byte
}

// Cache is the write-behind cache of one partition's states: reads hit memory first, writes
// only mark the entry dirty, and Flush (or Encode + CommitEncoded) writes each dirty SIREN once
// per commit, together with the checkpoint, in one Store transaction.
//
// At most maxClean clean entries are kept (least recently used evicted first); dirty entries are
// never evicted, so the caller bounds them by flushing when DirtyCount / DirtyBytesEstimate
// approach Store.MaxCommitEntries / MaxCommitBytes.
//
// Contract for mutable V (pointers): the cache holds v itself, not a copy. After mutating a
// value obtained from Get, call Put (or the change may be lost when the clean entry is evicted).
//
// Not safe for concurrent use: one task goroutine owns it.
type Cache[V any] struct {
	store    *Store
	p        int32
	codec    Codec[V]
	hcodec   HeaderCodec[V] // nil: PutHeader writes whole states
	maxClean int
	// maxCleanBytes bounds the encoded bytes of clean entries (0: no
	// bound); cleanBytes is their sum (SetMaxBytes).
	maxCleanBytes, cleanBytes int64
	// encodeFull: Encode also sets KV.Full of header puts (SetEncodeFull).
	encodeFull bool

	m          map[string]*cacheEntry[V]
	dirty      []*cacheEntry[V] // entries with dirty set, unordered
	dirtyBytes int64
	lru        cacheEntry[V] // sentinel of the ring of clean entries, most recent first
	clean      int
	avgSize    int64 // moving average of encoded sizes, for estimates

	pending []pendingEntry[V] // what the last Encode returned, for CommitEncoded
	// pendingBytes is the exact PutCost sum of the last Encode.
	pendingBytes int64

	// complete: every live SIREN of the partition is in m (set by a full Each
	// that could cache everything; cleared by any eviction and by Reset).
	// Then Each never reads the store and a Get miss needs no store read.
	complete bool

	// Sorted keys of complete mode (cache_each.go): every insertion into m
	// calls keyAdded, every removal keyRemoved, and clearing complete drops
	// them (dropKeys).
	keys     []string
	keysNew  []string
	keysGone int
	keysOK   bool

	// readBuf is reused by every Get miss: the encoded state it reads lives only until it is
	// decoded. At most maxReadBuf, so one huge state does not stay allocated.
	readBuf []byte

	// hdrs: which SIRENs have a header key, for the cache's own misses (cache_headers.go).
	hdrs hdrIndex

	// snap serves Get misses (Store.Snapshot: no wait for a commit in
	// flight); nil until the first miss. It must see every commit of this
	// cache that an evicted or dropped entry relied on, so it is replaced
	// whenever entries become clean: by next, which CommitPending opens
	// right after its commit, or lazily after a synchronous commit.
	snap, next *Snapshot
}

type cacheEntry[V any] struct {
	siren      string
	v          V
	gen        uint64 // bumped by every Put/Delete: detects a change between Encode and commit
	size       int64  // last known encoded size, -1 if unknown
	dirtyCost  int64  // what this entry added to dirtyBytes
	cleanCost  int64  // what this entry added to cleanBytes while clean
	dirty      bool
	deleted    bool     // dirty tombstone
	transient  bool     // PutTransient: dropped, not kept clean, once committed
	headerOnly bool     // PutHeader: only the header differs from the store
	hdr        hdrState // whether the store holds a header key for the SIREN (KV.hdr)
	prev, next *cacheEntry[V]
}

type pendingEntry[V any] struct {
	e   *cacheEntry[V]
	gen uint64
}

const (
	initialAvgSize = 256
	maxReadBuf     = 16 << 10
)

// NewCache returns an empty cache for partition p of store. maxClean < 0 is treated as 0.
func NewCache[V any](store *Store, p int32, codec Codec[V], maxClean int) *Cache[V] {
	c := &Cache[V]{store: store, p: p, codec: codec, maxClean: max(maxClean, 0)}
	if hc, ok := codec.(HeaderCodec[V]); ok && store.opts.MergeHeader != nil {
		c.hcodec = hc
	}
	c.Reset()
	return c
}

// SetEncodeFull makes Encode give every header put its whole encoding too (KV.Full), for a
// caller that copies states elsewhere (a changelog) before committing them.
func (c *Cache[V]) SetEncodeFull(on bool) { c.encodeFull = on }

// Get returns the state of siren: from memory if cached, else decoded from the store (and cached
// clean), else found=false. Cost of a hit: one map lookup; of a miss: a Badger read and a decode.
func (c *Cache[V]) Get(siren string) (v V, found bool, err error) {
	if e := c.m[siren]; e != nil {
		if e.deleted {
			return v, false, nil
		}
		if !e.dirty {
			c.unlink(e)
			c.pushFront(e)
		}
		return e.v, true, nil
	}
	if c.complete {
		return v, false, nil
	}
	if c.snap == nil {
		c.snap = c.store.Snapshot()
	}
	skipHeader := false
	if c.useHeaderIndex() {
		if !c.hdrs.known {
			c.loadHeaderIndex()
		}
		skipHeader = c.headerHint(siren) == hdrNone
	}
	b, hdr, err := c.snap.getHinted(c.p, siren, c.readBuf, skipHeader)
	if err != nil || b == nil {
		return v, false, err
	}
	v, err = c.codec.Unmarshal(siren, b)
	if cap(b) <= maxReadBuf { // Unmarshal does not retain b (Codec)
		c.readBuf = b[:0]
	}
	if err != nil {
		return v, false, fmt.Errorf("state: decode partition %d SIREN %s: %w", c.p, siren, err)
	}
	c.observeSize(int64(len(b)))
	e := &cacheEntry[V]{siren: siren, v: v, size: int64(len(b)), hdr: hdr}
	c.m[siren] = e
	c.keyAdded(siren)
	c.pushFront(e)
	c.addClean(e)
	c.evict()
	return v, true, nil
}

// Put stores v as the state of siren and marks it dirty. v is retained, not copied.
func (c *Cache[V]) Put(siren string, v V) {
	e := c.touch(siren)
	e.v = v
	e.deleted, e.transient, e.headerOnly = false, false, false
}

// PutTransient is Put for a SIREN the caller does not expect to need again soon (a day-change
// sweep over a partition bigger than the cache changes states it read from the store): once
// committed, the entry is dropped instead of kept clean, so such a pass does not fill the cache
// (and memory) with cold states. A SIREN that was already cached stays as Put would keep it; a
// later Put makes the entry an ordinary one.
func (c *Cache[V]) PutTransient(siren string, v V) {
	cached := c.m[siren] != nil
	e := c.touch(siren)
	e.v = v
	e.deleted, e.headerOnly = false, false
	if !cached {
		e.transient = true
	}
}

// PutHeader is PutTransient for a state whose change since the store is in its header alone
// (HeaderCodec): a day-change sweep's new decision. When the entry is clean, or not cached
// (v was just read from the store, by Each), the next Encode writes only the header (a Header
// KV of a few bytes, merged into the stored state by every read) instead of the whole state; a
// dirty entry stays a whole write. The caller must not have changed anything but the header of
// v since it was read or last Put (then Put is the right call). Without a HeaderCodec, or a
// Store without Options.MergeHeader, it is PutTransient.
func (c *Cache[V]) PutHeader(siren string, v V) {
	e := c.m[siren]
	headerOnly := c.hcodec != nil && (e == nil || !e.dirty || e.headerOnly) && (e == nil || !e.deleted)
	c.PutTransient(siren, v)
	if headerOnly {
		e = c.m[siren]
		e.headerOnly = true
		// A header costs its key and a few bytes, not the state's size.
		c.dirtyBytes -= e.dirtyCost
		e.dirtyCost = c.store.PutCost(siren, nil) + headerEstimate
		c.dirtyBytes += e.dirtyCost
	}
}

// headerEstimate bounds the size of a header (version, uvarint seq, segments) for estimates.
const headerEstimate = 12

// Delete marks siren deleted; the next flush writes a deletion.
func (c *Cache[V]) Delete(siren string) {
	e := c.touch(siren)
	var zero V
	e.v = zero
	e.deleted, e.headerOnly = true, false
}

// touch returns the entry of siren, created if needed, marked dirty.
func (c *Cache[V]) touch(siren string) *cacheEntry[V] {
	e := c.m[siren]
	if e == nil {
		e = &cacheEntry[V]{siren: siren, size: -1}
		c.m[siren] = e
		c.keyAdded(siren)
	} else if !e.dirty {
		c.unlink(e)
		c.dropClean(e)
	}
	e.gen++
	if !e.dirty {
		e.dirty = true
		est := e.size
		if est < 0 {
			est = c.avgSize
		}
		e.dirtyCost = int64(len(siren)) + est
		c.dirtyBytes += e.dirtyCost
		c.dirty = append(c.dirty, e)
	}
	return e
}

// DirtyCount returns the number of dirty SIRENs (the puts of the next flush).
func (c *Cache[V]) DirtyCount() int { return len(c.dirty) }

// DirtyBytesEstimate estimates the PutCost sum of the next flush, from each entry's last known
// encoded size or, for entries never encoded, a moving average. Encode gives the exact figure.
func (c *Cache[V]) DirtyBytesEstimate() int64 { return c.dirtyBytes }

// Len returns the number of cached entries, dirty and clean.
func (c *Cache[V]) Len() int { return len(c.m) }

// Flush encodes the dirty entries and commits them with cp in one Store transaction (Encode then
// CommitEncoded), returning the puts written. On error nothing is marked clean.
func (c *Cache[V]) Flush(cp Checkpoint) ([]KV, error) {
	puts := c.Encode()
	if err := c.CommitEncoded(puts, cp); err != nil {
		return nil, err
	}
	return puts, nil
}

// Encode returns the dirty entries encoded, in ascending SIREN order, without committing (so the
// caller can produce them to a changelog first). The values share one freshly allocated buffer
// and stay valid after the call. A deletion has a nil Value. Each call replaces the previous one
// as the batch that CommitEncoded accepts.
func (c *Cache[V]) Encode() []KV {
	slices.SortFunc(c.dirty, func(a, b *cacheEntry[V]) int { return strings.Compare(a.siren, b.siren) })
	puts := make([]KV, len(c.dirty))
	c.pending = c.pending[:0]
	// dirtyBytes counts each entry at its last encoded size; states grow
	// between commits (a day's usage bucket, event ids), so leave room for
	// that rather than copy the whole arena when it overflows.
	arena := make([]byte, 0, c.dirtyBytes+64*int64(len(c.dirty))+64)
	var exact int64
	for i, e := range c.dirty {
		puts[i].SIREN, puts[i].hdr = e.siren, e.hdr
		if h := c.headerHint(e.siren); h != hdrUnknown {
			puts[i].hdr = h
		}
		c.pending = append(c.pending, pendingEntry[V]{e: e, gen: e.gen})
		if e.deleted {
			exact += int64(len(e.siren))
			continue
		}
		if e.headerOnly {
			start := len(arena)
			arena = c.hcodec.MarshalHeader(arena, e.v)
			val := arena[start:len(arena):len(arena)]
			puts[i].Value, puts[i].Header = val, true
			e.dirtyCost = c.store.PutCost(e.siren, val)
			exact += e.dirtyCost
			if c.encodeFull {
				puts[i].Full = c.codec.Marshal(nil, e.v)
			}
			continue
		}
		start := len(arena)
		arena = c.codec.Marshal(arena, e.v)
		val := arena[start:len(arena):len(arena)]
		if val == nil {
			val = []byte{} // an empty encoding is not a deletion
		}
		puts[i].Value = val
		e.size = int64(len(val))
		c.observeSize(e.size)
		e.dirtyCost = c.store.PutCost(e.siren, val)
		exact += e.dirtyCost
	}
	c.dirtyBytes = exact
	c.pendingBytes = exact
	for _, e := range c.dirty {
		if e.deleted {
			e.dirtyCost = int64(len(e.siren))
		}
	}
	return puts
}

// CommitEncoded commits puts, which must be the result of the last Encode, with cp in one Store
// transaction, then marks those entries clean (unless Put/Delete touched them since Encode) and
// evicts clean entries beyond maxClean. On error the entries stay dirty.
func (c *Cache[V]) CommitEncoded(puts []KV, cp Checkpoint) error {
	if err := c.checkPending("CommitEncoded", puts); err != nil {
		return err
	}
	if err := c.store.Commit(c.p, puts, cp); err != nil {
		return err
	}
	c.DropSnapshot()
	c.settleCommitted(puts)
	return nil
}

// checkPending checks that puts, given to op, are the result of the last
// Encode.
func (c *Cache[V]) checkPending(op string, puts []KV) error {
	if len(puts) != len(c.pending) {
		return fmt.Errorf("state: partition %d: %s got %d puts, last Encode returned %d",
			c.p, op, len(puts), len(c.pending))
	}
	for i := range puts {
		if puts[i].SIREN != c.pending[i].e.siren {
			return fmt.Errorf("state: partition %d: %s puts differ from the last Encode at %d (%s)",
				c.p, op, i, puts[i].SIREN)
		}
	}
	return nil
}

// settleCommitted marks the entries of puts, the last Encode, now durable,
// clean (those touched since stay as they are), drops committed deletions,
// forgets the pending list and the settled dirty entries, and evicts down to
// the clean budget.
func (c *Cache[V]) settleCommitted(puts []KV) {
	for i, pe := range c.pending {
		c.noteHeader(puts[i].SIREN, puts[i].hdr)
		e := pe.e
		if c.m[e.siren] == e {
			e.hdr = puts[i].hdr // what the store holds now, touched since or not
		}
		if c.m[e.siren] != e || e.gen != pe.gen || !e.dirty {
			continue // touched since Encode (or dropped by Reset): stays as is
		}
		e.dirty, e.headerOnly = false, false
		c.dirtyBytes -= e.dirtyCost
		e.dirtyCost = 0
		if e.deleted || e.transient {
			delete(c.m, e.siren)
			c.keyRemoved()
			if !e.deleted {
				// A live SIREN left memory: the cache no longer holds the partition.
				c.complete = false
				c.dropKeys()
			}
			continue
		}
		c.pushFront(e)
		c.addClean(e)
	}
	c.pending = c.pending[:0]
	kept := c.dirty[:0]
	for _, e := range c.dirty {
		if e.dirty && c.m[e.siren] == e {
			kept = append(kept, e)
		}
	}
	clear(c.dirty[len(kept):])
	c.dirty = kept
	c.evict()
}

// Scan calls fn for every live SIREN of the partition, in ascending SIREN order, merging the
// store with the cache (a cached value, dirty or clean, wins over the stored one; dirty
// deletions are skipped; new dirty SIRENs are included). Values not cached are decoded but not
// inserted into the cache: call Put to change one. fn may call Get, Put and Delete, but not
// Flush, CommitEncoded or Reset.
func (c *Cache[V]) Scan(fn func(siren string, v V) error) error {
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return c.merge("", keys, fn, func(siren string, _ []byte, v V) error { return fn(siren, v) })
}

// merge walks the partition's stored SIRENs strictly after after ("" =
// all) in ascending order, merged with keys, the sorted snapshot of cached
// SIRENs (all after after) taken by the caller: a cached SIREN is given to
// fn with its cached value (dirty deletions are skipped; one evicted since
// the snapshot falls back to the store), a stored one not cached is decoded
// and given to stored with its encoded bytes. An error from fn or stored
// stops the walk and is returned.
func (c *Cache[V]) merge(after string, keys []string, fn func(siren string, v V) error, stored func(siren string, val []byte, v V) error) error {
	ci := 0
	visitCached := func(k string) (handled bool, err error) {
		e := c.m[k]
		if e == nil {
			return false, nil // evicted since the snapshot: fall back to the store
		}
		if e.deleted {
			return true, nil
		}
		return true, fn(k, e.v)
	}
	errStop := errors.New("stop")
	var fnErr error
	scan := func(siren string, val []byte) error {
		for ci < len(keys) && keys[ci] < siren {
			if _, err := visitCached(keys[ci]); err != nil {
				fnErr = err
				return errStop
			}
			ci++
		}
		if ci < len(keys) && keys[ci] == siren {
			ci++
			handled, err := visitCached(siren)
			if err != nil {
				fnErr = err
				return errStop
			}
			if handled {
				return nil
			}
		}
		v, err := c.codec.Unmarshal(siren, val)
		if err != nil {
			fnErr = fmt.Errorf("state: decode partition %d SIREN %s: %w", c.p, siren, err)
			return errStop
		}
		if err := stored(siren, val, v); err != nil {
			fnErr = err
			return errStop
		}
		return nil
	}
	var err error
	if after == "" {
		err = c.store.Scan(c.p, scan)
	} else {
		err = c.store.ScanFrom(c.p, after, scan)
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return err
	}
	for ; ci < len(keys); ci++ {
		if _, err := visitCached(keys[ci]); err != nil {
			return err
		}
	}
	return nil
}

// Reset drops every entry, dirty ones included (on partition revoke, after the final flush).
func (c *Cache[V]) Reset() {
	c.m = make(map[string]*cacheEntry[V])
	clear(c.dirty)
	c.dirty = c.dirty[:0]
	c.dirtyBytes = 0
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	c.clean, c.cleanBytes = 0, 0
	if c.avgSize == 0 {
		c.avgSize = initialAvgSize
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	c.complete = false
	c.dropKeys()
	c.hdrs = hdrIndex{}
	c.snap.Close()
	c.next.Close()
	c.snap, c.next = nil, nil
}

func (c *Cache[V]) observeSize(n int64) { c.avgSize += (n - c.avgSize) / 8 }

func (c *Cache[V]) pushFront(e *cacheEntry[V]) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

func (c *Cache[V]) unlink(e *cacheEntry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// DropSnapshot closes the read snapshot that serves misses; the next miss
// opens a new one. An open snapshot keeps Badger from discarding versions
// written after it was opened (by any partition), so an owner that goes
// idle drops it instead of holding it for hours.
func (c *Cache[V]) DropSnapshot() {
	c.snap.Close()
	c.snap = nil
}

// SetMaxBytes bounds the clean entries by the sum of their encoded sizes too
// (besides the count given to NewCache): states vary from a few hundred bytes
// to hundreds of KiB, so a count alone does not bound memory. Decoded states
// take about twice their encoded size in memory. 0 (default): no byte bound.
func (c *Cache[V]) SetMaxBytes(n int64) {
	c.maxCleanBytes = max(n, 0)
	c.evict()
}

// overBudget reports whether the clean entries exceed a bound.
func (c *Cache[V]) overBudget() bool {
	return c.clean > c.maxClean || (c.maxCleanBytes > 0 && c.cleanBytes > c.maxCleanBytes)
}

// addClean counts a new clean entry: its encoded size (the size average
// when unknown) against the byte bound.
func (c *Cache[V]) addClean(e *cacheEntry[V]) {
	c.clean++
	e.cleanCost = e.size
	if e.size < 0 {
		e.cleanCost = c.avgSize
	}
	c.cleanBytes += e.cleanCost
}

func (c *Cache[V]) dropClean(e *cacheEntry[V]) {
	c.clean--
	c.cleanBytes -= e.cleanCost
	e.cleanCost = 0
}

// evict drops least recently used clean entries beyond maxClean (and
// maxCleanBytes). Dirty entries are not in the clean ring, so they can never
// be evicted.
func (c *Cache[V]) evict() {
	for c.clean > 0 && c.overBudget() {
		e := c.lru.prev
		c.unlink(e)
		delete(c.m, e.siren)
		c.dropClean(e)
		c.complete = false
		c.dropKeys()
	}
}
