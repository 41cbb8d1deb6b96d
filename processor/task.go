package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/handoff"
	"github.com/sirenstream/sirenstream/state"
)

// taskOptions are what differ between a live task (Run) and a bounded one
// (Replay).
type taskOptions struct {
	partition int32
	// bounded: stop once every input reached end (offsets taken at start).
	bounded bool
	// fromMs/toMs filter by event time in replays (0 = unbounded); records
	// outside are counted as skipped.
	fromMs, toMs int64
	// emitFromMs, when set (replays), withholds the outputs of what happens
	// before it (emitfrom.go).
	emitFromMs int64
	// routes are the output topics.
	routes routes
	// limits are the byte budgets of its writes (zero: Kafka's defaults).
	limits recordLimits
	// changelog: write state changes to the changelog and restore from it.
	changelog bool
	// groupCommit, when set, receives durable offsets (rate limited).
	groupCommit func(offsets map[string]map[int]int64) error
	// ends, when set, replaces the end offsets taken at load (a repair's
	// rebuild stops where the repair decided).
	ends *[numInputs]int64
	// repairs: a record the merge has gone past is repaired (live tasks);
	// off, it is applied or late as in a replay.
	repairs bool
	// onLoaded, when set, runs once the state is loaded, before the first
	// record (the ops layer's segment baseline).
	onLoaded func()
}

// task processes one partition number over all co-partitioned inputs (Kafka
// Streams' StreamTask): it only sequences its parts — the inputs and their
// merge, the handler, the day change, the committer. It is owned by one
// goroutine: no locks on the hot path.
type task struct {
	cfg       *Config
	opt       taskOptions
	partition int32
	log       *zap.Logger
	eng       *engine.Task
	cache     *state.Cache[*engine.State]
	changelog *changelog // nil: disabled (replays)

	in      inputs
	reader  reader
	handler handler
	out     sink // the collector, observed
	com     committer

	sweep    sweepProgress // pass 2 of a day change in progress
	repair   repairMark    // a repair writing rebuilt states (repair.go)
	client   *kafka.Client // the task's metadata client (set by run)
	dec      engine.Decision
	outcomes outcomeOutputs // outcomes.go
	meta     []byte
	progress progress
	// lagLogged is when each input's lag was last logged.
	lagLogged [numInputs]time.Time
}

func newTask(cfg *Config, opt taskOptions, writer MessageWriter) *task {
	p := opt.partition
	t := &task{
		cfg:       cfg,
		opt:       opt,
		partition: p,
		log:       cfg.Logger.With(zap.Int32("partition", p)),
		eng:       engine.NewTask(cfg.Rules, cfg.engineConfig(opt.repairs)),
	}
	t.in = inputs{names: cfg.Topics.Inputs(), bounded: opt.bounded, maxIdle: cfg.MaxTaskIdle}
	t.in.wake = handoff.NewWakeup()
	for i := range t.in.latest {
		t.in.latest[i] = noTime
	}
	t.reader = reader{kafka: cfg.Kafka, codec: cfg.Codec, log: t.log, part: p}
	if opt.changelog {
		t.changelog = &changelog{
			client: newClient(cfg.Kafka, 30*time.Second), kafka: cfg.Kafka, topic: cfg.Topics.Changelog,
			partition: p, store: cfg.Store, log: t.log, metrics: cfg.Metrics,
			maxBytes: opt.limits.changelog,
			group:    cfg.Group, legacyWarn: cfg.legacyWarn,
		}
	}
	t.cache = state.NewCache[*engine.State](cfg.Store, p, stateCodec{version: byte(cfg.StateVersion)}, cfg.CacheSIRENs)
	t.cache.SetEncodeFull(t.changelog != nil) // the changelog carries whole states
	t.cache.SetMaxBytes(cfg.CacheBytes)
	t.com = committer{
		partition: p,
		inputs:    t.in.names,
		log:       t.log,
		now:       time.Now,
		cad: cadence{
			interval: cfg.CommitInterval, catchUpInterval: cfg.CatchUpCommitInterval,
			records: cfg.CommitRecords, catchUpRecords: cfg.CatchUpCommitRecords,
			maxEntries: cfg.Store.MaxCommitEntries(), maxBytes: cfg.Store.MaxCommitBytes(),
			groupInterval: cfg.GroupCommitInterval,
			spillOutputs:  cmp.Or(cfg.spillOutputs, defaultSpillOutputs),
		},
		states:      t.cache,
		plans:       cfg.Store,
		writer:      writer,
		changelog:   t.changelog,
		groupCommit: opt.groupCommit,
		beforeState: cfg.beforeStateCommit,
		backlog:     t.in.backlog,
		onCommit:    func(d time.Duration, n int) { cfg.Metrics.Commit(p, d, n) },
		onDurable:   t.updateProgress,
		onFlushed:   t.in.wake.Signal,
		live:        !opt.bounded,
	}
	t.out = &observed{
		next:      &collector{routes: opt.routes, partition: p, batch: &t.com, maxBytes: opt.limits.output},
		metrics:   cfg.Metrics,
		progress:  &t.progress,
		partition: p,
		log:       t.log,
	}
	if opt.emitFromMs != 0 {
		t.withholdBefore(opt.emitFromMs)
	}
	t.handler = handler{eng: t.eng, states: t.cache, out: t.out, fromMs: opt.fromMs, toMs: opt.toMs, beginDay: t.beginDay}
	t.progress.p.Partition = p
	return t
}

// load restores offsets and engine meta from the store. Without a checkpoint
// the task starts from the earliest offsets: state is a function of the whole
// input history, so starting from the group's offsets without state would be
// wrong (the changelog restore covers moved partitions).
func (t *task) load(ctx context.Context, client *kafka.Client) error {
	if t.changelog != nil {
		rs, err := t.changelog.restore(ctx, client)
		if err != nil {
			return err
		}
		if rs != (RestoreStats{}) {
			t.progress.update(func(p *TaskProgress) { p.Restore = rs })
		}
		if err := t.changelog.markStart(ctx, client); err != nil {
			return err
		}
	}
	cp, ok, err := t.cfg.Store.Checkpoint(t.partition)
	if err != nil {
		return fmt.Errorf("partition %d: load checkpoint: %w", t.partition, err)
	}
	first, last, err := listOffsets(ctx, client, t.in.names[:], t.partition)
	if err != nil {
		return err
	}
	for i, topic := range t.in.names {
		t.in.next[i] = first[i]
		if ok {
			if off, has := cp.Offsets[topic]; has {
				t.in.next[i] = off
			}
		}
		if t.in.next[i] < first[i] {
			// Retention deleted records we never processed: say so loudly.
			t.log.Warn("stored offset is before the log start: records were deleted before processing",
				zap.String("topic", topic), zap.Int64("stored", t.in.next[i]), zap.Int64("log_start", first[i]))
			t.in.next[i] = first[i]
		}
		t.in.hwm[i] = last[i]
		t.in.end[i] = last[i]
		if t.opt.ends != nil {
			t.in.hwm[i], t.in.end[i] = t.opt.ends[i], t.opt.ends[i]
		}
	}
	var total int64
	for i := range t.in.next {
		total += max(t.in.end[i]-t.in.next[i], 0)
	}
	t.progress.update(func(p *TaskProgress) { p.Total = total })
	if ok {
		m, err := parseMeta(cp.Meta, t.eng)
		if err != nil {
			return fmt.Errorf("partition %d: %w", t.partition, err)
		}
		t.sweep, t.repair = m.sweep, m.repair
		if err := t.checkRules(cp.Meta); err != nil {
			return err
		}
		// Report the checkpoint to the group once even if nothing is left
		// to process: after a kill -9 the group may lag behind Badger.
		t.com.durable, t.com.groupPending = cp.Offsets, true
	}
	if err := t.loadPlan(); err != nil {
		return fmt.Errorf("partition %d: %w", t.partition, err)
	}
	t.log.Info("task loaded",
		zap.Bool("checkpoint", ok),
		zap.Int64s("next_offsets", t.in.next[:]),
		zap.Int64s("end_offsets", t.in.end[:]),
		zap.Time("stream_time", time.UnixMilli(t.eng.StreamTime()).UTC()),
		zap.Bool("resume_sweep", t.sweep.active))
	return nil
}

// loadPlan installs a stored merge plan that starts exactly at the
// checkpoint's offsets and drops any other (stale) plan.
func (t *task) loadPlan() error {
	t.com.batchStart = t.in.next
	b, err := t.cfg.Store.Plan(t.partition)
	if err != nil || b == nil {
		return err
	}
	records, ok := decodePlan(b, t.in.next)
	if !ok {
		return t.cfg.Store.DropPlan(t.partition)
	}
	t.in.replayPlan = append([]byte(nil), records...)
	t.log.Info("replaying the merge order of the batch interrupted before its commit", zap.Int("records", len(records)))
	return nil
}

// run processes the partition until ctx ends (live) or the end offsets are
// reached (bounded). It flushes and commits before returning. Errors are
// fatal (storage, output); a nil return after ctx ended is a clean stop.
func (t *task) run(ctx context.Context, client *kafka.Client) (err error) {
	t.client = client
	if err := t.load(ctx, client); err != nil {
		// A rebalance or shutdown during the restore is not fatal: nothing
		// was committed, the next owner restores again.
		return t.stopErr(ctx, err)
	}
	t.progress.update(func(p *TaskProgress) { p.Loaded = true })
	if t.opt.onLoaded != nil {
		t.opt.onLoaded()
	}
	t.com.lastCommit = time.Now()
	flushCtx, stopFlushes := outliving(ctx, shutdownGrace)
	defer stopFlushes()
	t.com.flushCtx = flushCtx
	defer func() {
		// Revocation or shutdown: flush what was processed, with a fresh
		// deadline since ctx may be done.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		cerr := t.commit(fctx, true)
		if cerr != nil && ctx.Err() != nil {
			// The batch in flight was cut by ctx itself (revocation,
			// shutdown) and folded back: write it again with fctx.
			cerr = t.commit(fctx, true)
		}
		if cerr != nil {
			err = errors.Join(err, cerr)
		}
		t.cache.Reset()
		t.progress.update(func(p *TaskProgress) { p.Done = true })
	}()
	if t.repair.active {
		if err := t.repairTo(ctx, "resuming an interrupted repair"); err != nil {
			return t.stopErr(ctx, err)
		}
	}
	if t.sweep.active {
		if err := t.evaluateDay(ctx); err != nil {
			return t.stopErr(ctx, err)
		}
	}

	wg, cancel := t.startReaders(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	ticker := time.NewTicker(t.cfg.CommitInterval / 2)
	defer ticker.Stop()
	for {
		if err := t.drain(ctx, ticker.C); err != nil {
			return t.stopErr(ctx, err)
		}
		if t.in.bounded && t.in.allDone() {
			return nil
		}
		// Say we are about to sleep, then look again: a reader that
		// publishes after this sees the flag and wakes us.
		t.in.wake.Sleeping(true)
		if t.in.pick() >= 0 {
			t.in.wake.Sleeping(false)
			continue
		}
		// Caught up with outputs waiting: write them now instead of at
		// the next tick (output latency). The flush's end wakes us.
		if t.com.eager() {
			t.in.wake.Sleeping(false)
			if err := t.commit(ctx, false); err != nil {
				return t.stopErr(ctx, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			t.in.wake.Sleeping(false)
			return nil
		case <-t.in.wake.C():
		case <-ticker.C:
			// Idle: no read snapshot held while nothing reads (it would
			// keep Badger from discarding newer versions).
			t.cache.DropSnapshot()
			if t.com.due() {
				if err := t.commit(ctx, false); err != nil {
					t.in.wake.Sleeping(false)
					return t.stopErr(ctx, err)
				}
			}
			t.updateProgress()
		}
		t.in.wake.Sleeping(false)
	}
}

// shutdownGrace bounds how long a stopping task waits for the flush of its
// batch in flight and its final commit.
const shutdownGrace = 30 * time.Second

// outliving returns a context that ends grace after ctx ends (or when stop
// is called): background flushes run under it, so a stop lets the batch in
// flight finish instead of cutting a write the broker may already hold.
func outliving(ctx context.Context, grace time.Duration) (context.Context, func()) {
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return octx, func() {
		stopAfter()
		cancel()
	}
}

// startReaders starts a reader goroutine per input with records to read;
// cancel stops them, wg waits for them.
func (t *task) startReaders(ctx context.Context) (*sync.WaitGroup, context.CancelFunc) {
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range t.in.names {
		t.in.rings[i] = handoff.NewRing[item](ringSize)
		if t.in.bounded && t.in.next[i] >= t.in.end[i] {
			continue
		}
		stop := int64(-1)
		if t.in.bounded {
			stop = t.in.end[i]
		}
		wg.Add(1)
		go func(i int, from int64) {
			defer wg.Done()
			t.reader.run(rctx, &t.in, i, from, stop)
		}(i, t.in.next[i])
	}
	return &wg, cancel
}

// stopErr: an error caused by ctx ending (revocation, shutdown) is not fatal —
// the batch simply was not committed, and run's deferred flush commits it
// with a fresh deadline (or reports the real error again).
func (t *task) stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		t.log.Info("task interrupted mid-commit; flushing on the way out", zap.Error(err))
		return nil
	}
	return err
}

// drain processes every record the merge can decide now. Every 256 records
// it also does what the ticker asks (progress, a due commit), since with
// readers feeding the rings concurrently it may not return for a long time.
func (t *task) drain(ctx context.Context, tick <-chan time.Time) error {
	for n := 0; ; n++ {
		i := t.in.pick()
		if i < 0 {
			return nil
		}
		if it := t.in.Head(i); it.err == nil && t.eng.StartsDay(&it.ev) && t.holdDay(i, it.ev.EventTime) {
			return nil // the run loop looks again on a wake-up or tick
		}
		if err := t.handler.handle(ctx, t.in.names[i], t.in.Head(i)); err != nil {
			var nr *needsRepair
			if !errors.As(err, &nr) {
				return err
			}
			if err := t.repairTo(ctx, nr.Error()); err != nil {
				return err
			}
			continue // the repair consumed the record and moved every input
		}
		t.in.take(i)
		t.com.took(i)
		due := t.com.recordsFull() || t.com.full()
		if n&255 == 255 {
			select {
			case <-tick:
				t.updateProgress()
			default:
			}
			due = due || t.com.due()
			if ctx.Err() != nil {
				return nil
			}
		}
		if due {
			if err := t.commit(ctx, false); err != nil {
				return err
			}
		} else if t.com.spillDue() {
			if err := t.com.spill(ctx); err != nil {
				return err
			}
		}
	}
}

// holdDay reports whether the day change the record of input i starts
// waits for a lagging input (Config.MaxTaskIdle), and logs inputs that
// stopped holding day changes.
func (t *task) holdDay(i int, ms int64) bool {
	hold, idled := t.in.holdDay(i, ms, time.Now())
	for _, j := range idled {
		t.log.Info("input idle: letting stream time pass it",
			zap.String("topic", t.in.names[j]), zap.Duration("waited", t.cfg.MaxTaskIdle),
			zap.Time("day", time.UnixMilli(ms-ms%engine.DayMs).UTC()))
	}
	return hold
}

// commit commits the open batch with the task's offsets and meta.
func (t *task) commit(ctx context.Context, force bool) error {
	t.meta = appendMeta(t.meta[:0], taskMeta{sweep: t.sweep, repair: t.repair}, t.eng)
	return t.com.commit(ctx, force, t.in.next, append([]byte(nil), t.meta...))
}

// updateProgress publishes lag, stream time and caught-up state.
func (t *task) updateProgress() {
	t.in.syncHWM()
	var lag int64
	caught := true
	for i := range t.in.next {
		l := t.in.hwm[i] - t.in.next[i] - int64(t.in.buffered(i))
		if l < 0 {
			l = 0
		}
		if t.in.hwm[i] > t.in.next[i] {
			caught = false
		}
		t.cfg.Metrics.Lag(t.in.names[i], t.partition, t.in.hwm[i]-t.in.next[i])
		lag += l
	}
	st := t.eng.StreamTime()
	t.cfg.Metrics.StreamTime(t.partition, st)
	t.reportInputLag(st)
	idle := t.com.idle(t.cache.DirtyCount())
	t.progress.update(func(p *TaskProgress) {
		p.Lag, p.CaughtUp, p.StreamTime = lag, caught && idle, st
	})
}

// engineConfig is the engine's configuration: Config.Engine with the
// record checks the processor's options set.
func (c *Config) engineConfig(repairs bool) engine.Config {
	ec := c.Engine
	ec.MaxFutureSkewMs = c.MaxFutureSkew.Milliseconds()
	ec.Repair = repairs
	return ec
}

// inputLagLogAfter is the lag of an input behind stream time above which it
// is logged (at most once a minute per input).
const inputLagLogAfter = time.Hour

// reportInputLag publishes each input's lag behind stream time (metric) and
// logs inputs that lag by more than an hour.
func (t *task) reportInputLag(streamMs int64) {
	for i, topic := range t.in.names {
		l := t.in.latest[i]
		if l == noTime || streamMs == 0 {
			continue
		}
		lag := time.Duration(streamMs-l) * time.Millisecond
		t.cfg.Metrics.InputLag(topic, t.partition, lag.Seconds())
		if lag > inputLagLogAfter && time.Since(t.lagLogged[i]) > time.Minute {
			t.lagLogged[i] = time.Now()
			t.log.Info("input lags stream time", zap.String("topic", topic), zap.Duration("lag", lag),
				zap.Bool("idle", t.in.idle[i]), zap.Time("latest_event_time", time.UnixMilli(l).UTC()))
		}
	}
}
