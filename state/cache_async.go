package state

// CommitPending commits puts — the result of the last Encode — with cp in one
// Store transaction, without touching the cache: it is safe to call from
// another goroutine while the owner keeps using the cache (Get, Put), as long
// as the owner calls neither Encode nor MarkCommitted until it returns. This
// is what lets a task process the next batch while the previous one is being
// written. The owner then calls MarkCommitted(puts).
//
// After the commit it opens the snapshot that the cache's reads use from
// MarkCommitted on (Store.Snapshot): opening it here, off the owner's
// goroutine, keeps the owner from waiting for other partitions' commits in
// flight.
func (c *Cache[V]) CommitPending(puts []KV, cp Checkpoint) error {
	if err := c.store.Commit(c.p, puts, cp); err != nil {
		return err
	}
	c.next.Close() // a snapshot no MarkCommitted took (not expected)
	c.next = c.store.Snapshot()
	return nil
}

// MarkCommitted marks the entries of puts (the result of the last Encode,
// committed with CommitPending) clean unless Put/Delete touched them since
// Encode, and evicts clean entries beyond maxClean. Owner goroutine only.
func (c *Cache[V]) MarkCommitted(puts []KV) error {
	if err := c.checkPending("MarkCommitted", puts); err != nil {
		return err
	}
	c.snap.Close()
	c.snap, c.next = c.next, nil
	c.settleCommitted(puts)
	return nil
}

// Unencoded returns the dirty entries and their estimated bytes that the last
// Encode did not cover, i.e. what the next transaction adds once the batch in
// flight is committed. A task writing one batch in the background sizes the
// next one with this, not with DirtyCount, so its batches stay full-size.
func (c *Cache[V]) Unencoded() (entries int, bytes int64) {
	if len(c.pending) == 0 {
		return len(c.dirty), c.dirtyBytes
	}
	return max(len(c.dirty)-len(c.pending), 0), max(c.dirtyBytes-c.pendingBytes, 0)
}
