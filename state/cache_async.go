package state

// CommitPending commits puts — the result of the last Encode — with cp in one
// Store transaction, without touching the cache: it is safe to call from
// another goroutine while the owner keeps using the cache (Get, Put), as long
// as the owner calls neither Encode nor MarkCommitted until it returns. This
// is what lets a task process the next batch while the previous one is being
// written. The owner then calls MarkCommitted(puts).
func (c *Cache[V]) CommitPending(puts []KV, cp Checkpoint) error {
	return c.store.Commit(c.p, puts, cp)
}

// MarkCommitted marks the entries of puts (the result of the last Encode,
// committed with CommitPending) clean unless Put/Delete touched them since
// Encode, and evicts clean entries beyond maxClean. Owner goroutine only.
func (c *Cache[V]) MarkCommitted(puts []KV) error {
	if err := c.checkPending("MarkCommitted", puts); err != nil {
		return err
	}
	c.settleCommitted()
	return nil
}
