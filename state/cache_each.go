package state

import (
	"errors"
	"fmt"
	"slices"
)

// ErrIncomplete is returned by EachUnordered when the cache does not hold
// every live SIREN of the partition.
var ErrIncomplete = errors.New("cache not complete")

// Complete reports whether every live SIREN of the partition is held in
// memory, so that Each reads nothing from the store.
func (c *Cache[V]) Complete() bool { return c.complete }

// Each calls fn for every live SIREN of the partition strictly after after
// ("" = all), in ascending SIREN order, with the cached value when there is
// one (dirty or clean) and otherwise the stored one. Unlike Scan, stored
// values it decodes are kept in the cache as clean entries while there is
// room for the whole partition (never evicting: a partition too big for the
// cache is only read, so a sweep does not grow memory), and a full pass
// (after == "") that kept every SIREN marks the cache complete: later passes iterate memory only, without
// Badger reads or decoding — the day-change sweep of a partition whose states
// fit in the cache costs no I/O. fn may Put or Delete the SIREN it is given
// (a value it mutates must be Put) but must not call Get, Flush,
// CommitEncoded or Reset; an error from fn stops the iteration and is
// returned.
//
// In complete mode the SIRENs come from a sorted key list kept across passes
// (sorted once, then only the SIRENs added since are merged in), and a pass
// starting after after binary-searches its first key.
func (c *Cache[V]) Each(after string, fn func(siren string, v V) error) error {
	if c.complete {
		keys := c.sortedKeys()
		i, found := slices.BinarySearch(keys, after)
		if found {
			i++
		}
		for _, k := range keys[i:] {
			e := c.m[k]
			if e == nil || e.deleted {
				continue // deleted (by fn or before the pass)
			}
			if err := fn(k, e.v); err != nil {
				return err
			}
		}
		return nil
	}
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		if k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// Cache what the pass decodes only if the whole partition fits: a
	// key-only count is far cheaper than the decoding pass it may save.
	fill := false
	if after == "" {
		// It stops as soon as the answer is no: a partition much bigger
		// than the cache is not walked twice.
		limit := c.maxClean + len(c.m) - c.clean
		n, err := c.store.CountUpTo(c.p, limit)
		if err != nil {
			return err
		}
		fill = n <= limit
	}
	all := fill // every SIREN seen is (now) cached
	err := c.merge(after, keys, fn, func(siren string, val []byte, v V) error {
		// Keep the size average honest: a Put of a value not cached is
		// estimated with it (DirtyBytesEstimate bounds commits).
		c.observeSize(int64(len(val)))
		if fill && c.m[siren] == nil && c.clean < c.maxClean && (c.maxCleanBytes == 0 || c.cleanBytes+int64(len(val)) <= c.maxCleanBytes) {
			e := &cacheEntry[V]{siren: siren, v: v, size: int64(len(val))}
			c.m[siren] = e
			c.keyAdded(siren)
			c.pushFront(e)
			c.addClean(e)
		} else {
			all = false
		}
		return fn(siren, v)
	})
	if err != nil {
		return err
	}
	if after == "" && all {
		c.complete = true
	}
	return nil
}

// EachUnordered calls fn for every live SIREN of the partition, in no
// particular order, with its cached value: for an order-independent pass
// (such as collecting the day's intensities) that needs no sorted keys. The
// cache must be complete (Complete); otherwise it returns an error wrapping
// ErrIncomplete without calling fn. fn may Put or Delete the SIREN it is
// given but must not call Get, Flush, CommitEncoded or Reset, nor Put or
// Delete another SIREN; an error from fn stops the iteration and is returned.
func (c *Cache[V]) EachUnordered(fn func(siren string, v V) error) error {
	if !c.complete {
		return fmt.Errorf("state: partition %d: EachUnordered: %w", c.p, ErrIncomplete)
	}
	for k, e := range c.m {
		if e.deleted {
			continue
		}
		if err := fn(k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// The sorted key list of complete mode. When keysOK, every key of c.m is in
// keys (sorted, no duplicates) or in keysNew (added since, unsorted); keys
// may still hold SIRENs since removed from c.m (at most keysGone of them),
// which Each skips like deleted entries. It is built by the first Each of
// complete mode and dropped whenever the cache stops being complete.

// keyAdded records that siren was just inserted into c.m.
func (c *Cache[V]) keyAdded(siren string) {
	if !c.keysOK {
		return
	}
	c.keysNew = append(c.keysNew, siren)
	if len(c.keysNew) > len(c.keys)+1024 {
		c.dropKeys() // cheaper to rebuild than to merge
	}
}

// keyRemoved records that a key was just removed from c.m.
func (c *Cache[V]) keyRemoved() {
	if c.keysOK {
		c.keysGone++
	}
}

// dropKeys forgets the sorted key list (rebuilt when next needed).
func (c *Cache[V]) dropKeys() {
	c.keys, c.keysNew, c.keysGone, c.keysOK = nil, nil, 0, false
}

// sortedKeys returns every key of c.m in ascending order, possibly with keys
// since removed from c.m (each once). The result must not be modified; it
// stays valid (though not updated) while the cache changes.
func (c *Cache[V]) sortedKeys() []string {
	if !c.keysOK {
		keys := make([]string, 0, len(c.m))
		for k := range c.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		c.keys, c.keysNew, c.keysGone, c.keysOK = keys, nil, 0, true
		return c.keys
	}
	compact := c.keysGone > 0 && c.keysGone >= len(c.keys)/8
	if len(c.keysNew) == 0 && !compact {
		return c.keys
	}
	// Merge into a new slice: a caller may still be iterating the old one.
	added := c.keysNew
	slices.Sort(added)
	out := make([]string, 0, len(c.keys)+len(added))
	keep := func(k string) {
		if n := len(out); n > 0 && out[n-1] == k {
			return // re-added after a removal, or added twice
		}
		if compact && c.m[k] == nil {
			return
		}
		out = append(out, k)
	}
	i, j := 0, 0
	for i < len(c.keys) && j < len(added) {
		if c.keys[i] <= added[j] {
			keep(c.keys[i])
			i++
		} else {
			keep(added[j])
			j++
		}
	}
	for ; i < len(c.keys); i++ {
		keep(c.keys[i])
	}
	for ; j < len(added); j++ {
		keep(added[j])
	}
	c.keys, c.keysNew = out, added[:0]
	if compact {
		c.keysGone = 0
	}
	return c.keys
}
