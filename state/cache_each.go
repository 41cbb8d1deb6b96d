package state

import (
	"slices"
)

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
func (c *Cache[V]) Each(after string, fn func(siren string, v V) error) error {
	if c.complete {
		keys := make([]string, 0, len(c.m))
		for k, e := range c.m {
			if !e.deleted && k > after {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			e := c.m[k]
			if e == nil || e.deleted {
				continue // deleted by fn
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
		n, err := c.store.Count(c.p)
		if err != nil {
			return err
		}
		fill = n-len(c.m)+c.clean <= c.maxClean
	}
	all := fill // every SIREN seen is (now) cached
	err := c.merge(after, keys, fn, func(siren string, val []byte, v V) error {
		// Keep the size average honest: a Put of a value not cached is
		// estimated with it (DirtyBytesEstimate bounds commits).
		c.observeSize(int64(len(val)))
		if fill && c.m[siren] == nil && c.clean < c.maxClean {
			e := &cacheEntry[V]{siren: siren, v: v, size: int64(len(val))}
			c.m[siren] = e
			c.pushFront(e)
			c.clean++
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
