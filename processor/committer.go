package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/state"
)

// stateBatch is what the committer needs from a task's state cache
// (state.Cache): the dirty states of the open batch, encoded at commit and
// made durable by the flush.
type stateBatch interface {
	DirtyCount() int
	DirtyBytesEstimate() int64
	Unencoded() (entries int, bytes int64)
	Encode() []state.KV
	CommitPending(puts []state.KV, cp state.Checkpoint) error
	MarkCommitted(puts []state.KV) error
}

// cadence decides when a batch is committed.
type cadence struct {
	interval        time.Duration // caught up: at most this long between commits (latency)
	catchUpInterval time.Duration // behind by records or more
	records         int           // records per commit (and "behind" threshold)
	catchUpRecords  int           // records per commit while behind
	maxEntries      int           // Badger transaction limits
	maxBytes        int64
	groupInterval   time.Duration // between offset commits to the group
	spillOutputs    int           // outputs of the open batch written ahead of its commit (spill)
}

// defaultSpillOutputs: an open batch that holds this many outputs writes
// them ahead of its state commit (committer.spill). A replay's batch spans
// up to CatchUpCommitRecords records and, with siren-daily, a record per
// SIREN per day: its outputs array grew by doubling to hundreds of
// thousands of messages (~150 B each, plus their values), allocated anew by
// every batch (BENCHMARKS.md round 13).
const defaultSpillOutputs = 8192

// committer runs a task's commit protocol (design.md): the open batch
// collects outputs, the merge plan and the processed offsets; commit hands
// it to a background flush — (1) merge plan saved, outputs written and
// acked, (2) changelog states and checkpoint, (3) one Badger transaction of
// states, offsets and meta — and (4) sends durable offsets to the consumer
// group. One batch is in flight at a time; a failed flush is folded back
// into the open batch and written again by the next commit.
type committer struct {
	partition int32
	inputs    [numInputs]string
	log       *zap.Logger
	cad       cadence
	now       func() time.Time

	states stateBatch
	plans  interface {
		SavePlan(p int32, plan []byte) error
	}
	writer      MessageWriter
	changelog   *changelog                                   // nil: none
	groupCommit func(offsets map[string]map[int]int64) error // nil: none
	// beforeState runs between the changelog and the Badger transaction
	// (tests: a crash at the worst moment).
	beforeState func(partition int32) error
	// backlog is how many input records are known to wait (cadence).
	backlog func() int64
	// onCommit reports a durable commit (metrics); onDurable runs on the
	// task goroutine after a batch became durable (progress).
	onCommit  func(d time.Duration, states int)
	onDurable func()
	// onFlushed runs on the flush goroutine when a background flush ended
	// (the task wakes to write outputs that waited for it: eager).
	onFlushed func()
	// live: outputs are written as soon as the task is caught up (eager);
	// a bounded replay batches by interval and records only.
	live bool

	// The open batch.
	outputs     []kafka.Message
	plan        []byte // input index of every record taken since the last commit
	batchStart  [numInputs]int64
	uncommitted int  // records taken since the last commit
	dirty       bool // offsets or meta moved since the last commit
	lastCommit  time.Time

	// spare is an empty array of outputs the next batch can fill: the one
	// of the last batch written (nil: none).
	spare    []kafka.Message
	inflight *batch
	// flushCtx, when set, is the context of background flushes instead of
	// the commit's: a stop (SIGTERM, revocation) lets the batch in flight
	// finish instead of cutting it, since a cut write may have reached the
	// broker and would be written again: duplicates on a clean stop.
	flushCtx context.Context

	durable      map[string]int64 // offsets of the last durable checkpoint
	groupPending bool             // durable offsets not yet sent to the group
	lastGroup    time.Time
}

// add appends an output to the open batch.
func (c *committer) add(m kafka.Message) { c.outputs = append(c.outputs, m) }

// spillDue reports whether the open batch holds enough outputs to write
// them ahead of its commit.
func (c *committer) spillDue() bool {
	return c.cad.spillOutputs > 0 && len(c.outputs) >= c.cad.spillOutputs
}

// spill writes the open batch's outputs ahead of its state commit, at a
// record boundary: first the batch in flight must be durable (its outputs
// come first, and its merge plan must not be overwritten while it could
// still be needed), then the merge plan of the records taken so far is
// saved, then the outputs are written and acknowledged, and the array is
// reused. A crash before the batch's commit re-processes those records from
// the last checkpoint in the saved order and writes the same outputs again,
// byte for byte: what a crash between a flush's outputs and its state
// transaction already does (the delivery contract's identical re-emission).
// A failed write is returned like a failed commit: the task restarts from
// its last checkpoint.
func (c *committer) spill(ctx context.Context) error {
	if err := c.awaitInflight(); err != nil {
		return err
	}
	if len(c.outputs) == 0 {
		return nil
	}
	if len(c.plan) > 0 {
		if err := c.plans.SavePlan(c.partition, encodePlan(c.batchStart, c.plan)); err != nil {
			return fmt.Errorf("partition %d: save merge plan: %w", c.partition, err)
		}
	}
	wctx := ctx
	if c.flushCtx != nil {
		wctx = c.flushCtx // a stop does not cut a write that may have reached the broker
	}
	if err := c.write(wctx, c.outputs); err != nil {
		return err
	}
	if ce := c.log.Check(zap.DebugLevel, "outputs written ahead of their batch's commit"); ce != nil {
		ce.Write(zap.Int32("partition", c.partition), zap.Int("outputs", len(c.outputs)), zap.Int("records", len(c.plan)))
	}
	clear(c.outputs)
	c.outputs = c.outputs[:0]
	return nil
}

// reserve makes room for n more outputs in the open batch (a day change's
// siren-daily records), growing its array at once rather than record by
// record; a growth at least doubles it, as append would.
func (c *committer) reserve(n int) {
	if cap(c.outputs)-len(c.outputs) >= n {
		return
	}
	grown := make([]kafka.Message, len(c.outputs), max(2*cap(c.outputs), len(c.outputs)+n))
	copy(grown, c.outputs)
	c.outputs = grown
}

// took records that the record of input in at offset is in the open batch.
func (c *committer) took(in int) {
	c.plan = append(c.plan, byte(in))
	c.uncommitted++
	c.dirty = true
}

// idle reports whether nothing is pending: no output, state or flush.
func (c *committer) idle(dirtyStates int) bool {
	return len(c.outputs) == 0 && dirtyStates == 0 && c.inflight == nil
}

// due reports whether the open batch has waited long enough: every interval
// when the task is caught up (output latency), every catch-up interval while
// it is behind by records or more.
func (c *committer) due() bool {
	since := c.now().Sub(c.lastCommit)
	if since < c.cad.interval {
		return false
	}
	return since >= c.cad.catchUpInterval || c.backlog() < int64(c.cad.records)
}

// eager reports whether the open batch should be committed now that the
// task has nothing to process: it holds outputs, the task is caught up (not
// behind by records or more) and no batch is being written. Outputs then
// leave as soon as they exist instead of at the next interval (latency);
// a task that is behind, or a replay, keeps batching by interval and
// records (a replay's readers often trail its task for a moment: eager
// commits would cut its batches small for no one waiting).
func (c *committer) eager() bool {
	if !c.live || len(c.outputs) == 0 || c.backlog() >= int64(c.cad.records) {
		return false
	}
	if b := c.inflight; b != nil {
		select {
		case <-b.done:
		default:
			return false
		}
	}
	return true
}

// recordsFull reports whether the open batch holds as many records as one
// commit may: records, or catchUpRecords while the task is behind by
// records or more.
func (c *committer) recordsFull() bool {
	if c.uncommitted < c.cad.records {
		return false
	}
	return c.uncommitted >= c.cad.catchUpRecords || c.backlog() < int64(c.cad.records)
}

// full keeps one commit well inside Badger's transaction limits (bytes and
// entries): half of each, since estimates are approximate.
func (c *committer) full() bool {
	// Entries of the batch in flight stay dirty until it is durable; they
	// are not part of the next transaction unless touched again, so the
	// next batch is sized by what the last Encode did not cover (half of
	// each limit). All dirty entries together — an upper bound of the next
	// transaction, including in-flight entries touched again or a failed
	// batch folded back — never exceed the full limit.
	maxN, maxB := c.cad.maxEntries, c.cad.maxBytes
	n, b := c.states.Unencoded()
	return n >= maxN/2 || b >= maxB/2 ||
		c.states.DirtyCount() >= maxN || c.states.DirtyBytesEstimate() >= maxB
}

// commit hands the open batch, with the offsets next and the task meta, to
// a background flush and opens the next batch; force waits until it is
// durable and sends its offsets to the group.
func (c *committer) commit(ctx context.Context, force bool, next [numInputs]int64, meta []byte) error {
	// One batch in flight at a time: the previous one must be durable (or
	// have failed and been folded back) before the next is encoded.
	if err := c.awaitInflight(); err != nil {
		return err
	}
	now := c.now()
	if len(c.outputs) == 0 && c.states.DirtyCount() == 0 && !c.dirty {
		c.lastCommit = now
		// An idle task still owes the group its last durable offsets when
		// the rate limit skipped them.
		c.commitGroup(force)
		return nil
	}
	b := &batch{start: now, done: make(chan struct{}), outputs: c.outputs, batchStart: c.batchStart}
	if len(c.outputs) > 0 && len(c.plan) > 0 {
		b.plan = encodePlan(c.batchStart, c.plan)
	}
	b.offsets = make(map[string]int64, numInputs+1)
	for i, topic := range c.inputs {
		b.offsets[topic] = next[i]
	}
	b.states = c.states.DirtyCount()
	b.cp = state.Checkpoint{Offsets: b.offsets, Meta: meta}
	b.puts = c.states.Encode()
	b.planRecords = append([]byte(nil), c.plan...)

	// The next batch starts now; this one is written in the background
	// while the task goes on processing (forced commits wait for it).
	// The next batch's outputs reuse the array of the last durable batch's
	// (spare): a replay's batches hold tens of thousands of outputs, which
	// would otherwise be grown from empty again for every batch.
	c.outputs, c.spare = c.spare, nil
	c.uncommitted = 0
	c.dirty = false
	c.plan = c.plan[:0]
	c.batchStart = next
	c.lastCommit = now
	c.inflight = b
	fctx := ctx
	if c.flushCtx != nil {
		fctx = c.flushCtx
	}
	go func() {
		b.err = c.flush(fctx, b)
		close(b.done)
		if c.onFlushed != nil {
			c.onFlushed()
		}
	}()
	if force {
		if err := c.awaitInflight(); err != nil {
			return err
		}
		c.commitGroup(true)
	}
	return nil
}

// batch is one commit of the protocol, written by flush in the background.
type batch struct {
	start       time.Time
	outputs     []kafka.Message
	plan        []byte // encoded merge plan, saved before outputs (nil: none needed)
	planRecords []byte // the batch's records' inputs, to fold back on failure
	batchStart  [numInputs]int64
	offsets     map[string]int64
	states      int
	cp          state.Checkpoint
	puts        []state.KV
	clNext      int64
	done        chan struct{}
	err         error
}

// flush runs in its own goroutine: it touches nothing of the committer but
// the batch and the (concurrency-safe) store, writer and changelog client.
func (c *committer) flush(ctx context.Context, b *batch) error {
	if b.plan != nil {
		if err := c.plans.SavePlan(c.partition, b.plan); err != nil {
			return fmt.Errorf("partition %d: save merge plan: %w", c.partition, err)
		}
	}
	if len(b.outputs) > 0 {
		if err := c.write(ctx, b.outputs); err != nil {
			return err
		}
	}
	b.clNext = -1
	if c.changelog != nil {
		next, err := c.changelog.write(ctx, b.puts, b.cp)
		if err != nil {
			return err
		}
		b.clNext = next
		b.offsets[c.changelog.topic] = next
	}
	if c.beforeState != nil {
		if err := c.beforeState(c.partition); err != nil {
			return err
		}
	}
	if err := c.states.CommitPending(b.puts, b.cp); err != nil {
		return fmt.Errorf("partition %d: commit state: %w", c.partition, err)
	}
	if c.onCommit != nil {
		c.onCommit(time.Since(b.start), b.states)
	}
	return nil
}

// awaitInflight waits for the batch being written. On success its entries
// become clean and its offsets go to the group; on failure the batch is
// folded back into the open one (outputs first, plan first, offsets of its
// start), so the next commit writes everything again — outputs may repeat,
// with the same bytes, as the delivery contract allows.
func (c *committer) awaitInflight() error {
	b := c.inflight
	if b == nil {
		return nil
	}
	<-b.done
	c.inflight = nil
	if b.err != nil {
		c.outputs = append(b.outputs, c.outputs...)
		c.plan = append(b.planRecords, c.plan...)
		c.batchStart = b.batchStart
		c.dirty = true
		return b.err
	}
	if err := c.states.MarkCommitted(b.puts); err != nil {
		return err
	}
	// Written: the writer kept no reference to the array (it copies the
	// messages it batches), so the next batch can reuse it.
	clear(b.outputs)
	c.spare = b.outputs[:0]
	if b.clNext >= 0 && c.changelog != nil {
		c.changelog.next = b.clNext
	}
	if c.onDurable != nil {
		c.onDurable()
	}
	c.durable, c.groupPending = b.offsets, true
	c.commitGroup(false)
	return nil
}

// commitGroup sends the offsets of the last durable checkpoint to the
// consumer group, at most every group interval unless forced. A skipped
// commit stays pending, so a task that goes idle still reports its final
// offsets to lag tools one interval later.
func (c *committer) commitGroup(force bool) {
	if c.groupCommit == nil || !c.groupPending || (!force && c.now().Sub(c.lastGroup) < c.cad.groupInterval) {
		return
	}
	g := map[string]map[int]int64{}
	for _, topic := range c.inputs { // input topics only, not the changelog position
		if off, ok := c.durable[topic]; ok {
			g[topic] = map[int]int64{int(c.partition): off}
		}
	}
	if err := c.groupCommit(g); err != nil {
		// Not fatal: restart trusts Badger. Lag tools see stale offsets.
		c.log.Warn("group offset commit failed", zap.Error(err))
	} else {
		c.groupPending = false
	}
	c.lastGroup = c.now()
}

// write sends outputs and waits for acks=all, retrying until ctx ends: an
// output or DLQ topic that cannot be written stops progress instead of
// dropping data (nothing is committed past it). A record refused for its
// size is not retried (errRecordTooLarge).
func (c *committer) write(ctx context.Context, msgs []kafka.Message) error {
	for attempt := 0; ; attempt++ {
		err := c.writer.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		if m := tooLarge(err, msgs); m != nil {
			// Outputs are sized against the limits read at start (dead
			// letters are cut to fit): the topic's limit went down since.
			return fmt.Errorf("partition %d: %s refused a record of about %d bytes: %w (%v); was its max.message.bytes lowered? a restart reads it again and cuts dead letters to fit (state not committed)",
				c.partition, m.Topic, recordBytes(m), errRecordTooLarge, err)
		}
		var werr kafka.WriteErrors
		if errors.As(err, &werr) {
			// Keep only the failed messages for the retry, in order.
			var failed []kafka.Message
			for i, e := range werr {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			if len(failed) > 0 {
				msgs = failed
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("partition %d: write %d outputs: %w (state not committed; they will be re-produced)", c.partition, len(msgs), err)
		}
		c.log.Warn("output write failed; retrying (progress is paused)", zap.Error(err), zap.Int("attempt", attempt+1))
		sleepCtx(ctx, backoff(attempt))
	}
}

// errRecordTooLarge: the broker, or the writer against its BatchBytes,
// refused a record for its size. Retrying the same bytes cannot succeed, so
// the write fails at once and the task stops loudly instead of pausing its
// partition forever.
var errRecordTooLarge = errors.New("record larger than the topic's max.message.bytes")

// tooLarge returns the message of msgs that err refuses for its size (nil:
// none).
func tooLarge(err error, msgs []kafka.Message) *kafka.Message {
	var one kafka.MessageTooLargeError
	if errors.As(err, &one) {
		return &one.Message
	}
	var werr kafka.WriteErrors
	if errors.As(err, &werr) {
		for i, e := range werr {
			if i < len(msgs) && errors.Is(e, kafka.MessageSizeTooLarge) {
				return &msgs[i]
			}
		}
	}
	return nil
}
