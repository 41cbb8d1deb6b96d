package state

import "github.com/dgraph-io/badger/v4"

// A miss in a partition with header keys costs two look-ups: the state and its header key —
// usually absent (a day change writes headers only for the SIRENs whose decision changed, and a
// whole write deletes them), a look-up answered by two memtables and the tables' bloom filters
// (~2.4 µs, 5 % of the CPU of a 1M-SIREN day). The cache of the partition's owner knows exactly
// which SIRENs have one: it is the only writer of the partition's header keys, it learns the
// ones already stored from one key-only scan at its first miss, and it follows every commit of
// its own. Its snapshot follows those commits too (replaced after each one), so what the index
// says holds for every read the cache makes. Other readers (Store.Get, scans) never use it: a
// read on an older snapshot may still see a header the index no longer has.
//
// Keys are exact: a 9-digit SIREN as a uint32 (about 6 bytes per SIREN with a header key in the
// map). Any other key is not indexed and is looked up as before.

// hdrIndex is which SIRENs of a partition have a header key, when known.
type hdrIndex struct {
	known bool
	set   map[uint32]struct{}
}

// sirenNum is a 9-digit SIREN as a number (false for any other key).
func sirenNum(s string) (uint32, bool) {
	if len(s) != 9 {
		return 0, false
	}
	var n uint32
	for i := 0; i < 9; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, true
}

// useHeaderIndex reports whether the cache keeps the index: it writes header keys (HeaderCodec)
// to a store that merges them.
func (c *Cache[V]) useHeaderIndex() bool { return c.hcodec != nil }

// loadHeaderIndex fills the index from the partition's header keys as of the cache's snapshot.
func (c *Cache[V]) loadHeaderIndex() {
	c.hdrs = hdrIndex{known: true, set: map[uint32]struct{}{}}
	if !c.store.mayHaveHeaders(c.p) {
		return
	}
	io := badger.IteratorOptions{Prefix: headerPrefix(c.p)}
	it := c.snap.txn.NewIterator(io)
	defer c.store.closeIter(it)
	for it.Rewind(); it.Valid(); it.Next() {
		if n, ok := sirenNum(string(it.Item().Key()[len(io.Prefix):])); ok {
			c.hdrs.set[n] = struct{}{}
		}
	}
}

// headerHint is what the index says of siren's header key (hdrUnknown when it does not know).
func (c *Cache[V]) headerHint(siren string) hdrState {
	if !c.hdrs.known {
		return hdrUnknown
	}
	n, ok := sirenNum(siren)
	if !ok {
		return hdrUnknown
	}
	if _, in := c.hdrs.set[n]; in {
		return hdrStored
	}
	return hdrNone
}

// noteHeader records what a commit left of siren's header key (hdrUnknown: it may exist).
func (c *Cache[V]) noteHeader(siren string, h hdrState) {
	if !c.hdrs.known {
		return
	}
	n, ok := sirenNum(siren)
	if !ok {
		return
	}
	if h == hdrNone {
		delete(c.hdrs.set, n)
	} else {
		c.hdrs.set[n] = struct{}{}
	}
}
