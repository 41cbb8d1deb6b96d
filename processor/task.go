package processor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/handoff"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

const numInputs = 4

// item is one fetched input record, decoded by its reader goroutine.
type item struct {
	msg kafka.Message
	ev  engine.Event
	err error // decode error: the record goes to the DLQ
}

// key orders items in the event-time merge: bad records first (they change
// nothing), then event time; ties are broken by input index (profiles,
// outages, claims, usage) by the caller.
func (it *item) key() int64 {
	if it.err != nil {
		return math.MinInt64
	}
	return it.ev.EventTime
}

// taskOptions are what differ between a live task (Run) and a bounded one
// (Replay).
type taskOptions struct {
	partition int32
	// bounded: stop once every input reached end (offsets taken at start).
	bounded bool
	// fromMs/toMs filter by event time in replays (0 = unbounded); records
	// outside are counted as skipped.
	fromMs, toMs int64
	// segmentTopic overrides the segment-changes topic (replay --output-topic);
	// churnTopic "" disables churn alerts.
	segmentTopic string
	churnTopic   string
	// dlqTopic overrides the dead-letter topic (replays use their own).
	dlqTopic string
	// changelog: write state changes to the changelog and restore from it.
	changelog bool
	// groupCommit, when set, receives durable offsets (rate limited).
	groupCommit func(offsets map[string]map[int]int64) error
	// groupOffsets are the consumer group's committed offsets, used only when
	// the store has no checkpoint for the partition (-2/-1 = none).
	groupOffsets map[string]int64
}

// task processes one partition number over all co-partitioned inputs. It is
// owned by one goroutine: no locks on the hot path.
type task struct {
	cfg    *Config
	opt    taskOptions
	log    *zap.Logger
	inputs [numInputs]string
	eng    *engine.Task
	cache  *state.Cache[*engine.State]
	writer MessageWriter

	next [numInputs]int64 // next offset to process per input
	end  [numInputs]int64 // bounded: stop offsets
	hwm  [numInputs]int64 // latest known high watermark
	// rings hand each input's decoded records from its reader to the merge
	// (nil until run starts the readers); wake lets readers wake the task.
	rings   [numInputs]*handoff.Ring[item]
	ringHWM [numInputs]atomic.Int64 // latest high watermark each reader saw
	wake    *handoff.Wakeup

	sweeping    bool
	sweepCursor string
	// nextInt holds the intensities of the next day change's pass 1 while
	// the partition does not fit in the cache (nil: pass 1 reads the
	// store); building is the set pass 2 of a sweep started by this task
	// fills (nil when not tracking, or for a sweep resumed from a cursor).
	nextInt  *nextIntensities
	building *nextIntensities

	// plan records the input of every record taken since the last
	// checkpoint; it is saved before a batch's outputs are written so a
	// restart replays the same interleaving (replayPlan) and re-emits
	// byte-identical outputs, whatever live arrival timing decided.
	plan       []byte
	replayPlan []byte
	batchStart [numInputs]int64

	inflight *batch // the commit being written in the background

	changelog *changelog // nil: disabled (replays)
	clNext    int64      // changelog offset after this task's last checkpoint record

	outputs      []kafka.Message
	uncommitted  int // records processed since the last commit
	dirtyOffsets bool
	lastCommit   time.Time
	lastGroup    time.Time
	groupPending bool             // durable offsets not yet sent to the group
	durable      map[string]int64 // offsets of the last Badger checkpoint
	dec          engine.Decision
	vals         []float64
	meta         []byte

	// counters, read by Progress via atomic snapshot under mu
	mu       sync.Mutex
	progress TaskProgress
}

// TaskProgress is a snapshot of one task's accounting: records in =
// processed + dead-lettered (+ skipped by replay bounds).
type TaskProgress struct {
	Partition    int32
	Consumed     int64
	Total        int64 // backlog at load: Σ inputs (end offset − first offset to process); 0 before load
	Processed    int64
	DeadLettered int64
	Skipped      int64
	Changes      int64
	StreamTime   int64
	Lag          int64 // sum over inputs of hwm - next
	CaughtUp     bool
	Loaded       bool // state loaded (checkpoint, changelog restore): Processor.Ready
	Done         bool
	// Restore is the changelog restore done when the task started (zero
	// when the local state was up to date).
	Restore RestoreStats
}

func newTask(cfg *Config, opt taskOptions, writer MessageWriter) *task {
	t := &task{
		cfg:    cfg,
		opt:    opt,
		log:    cfg.Logger.With(zap.Int32("partition", opt.partition)),
		inputs: cfg.Topics.Inputs(),
		eng:    engine.NewTask(cfg.Rules, cfg.Engine),
		writer: writer,
	}
	if opt.changelog {
		t.changelog = &changelog{
			client: &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 30 * time.Second, Transport: cfg.Kafka.transport()},
			topic:  cfg.Topics.Changelog,
		}
	}
	t.cache = state.NewCache[*engine.State](cfg.Store, opt.partition, stateCodec{}, cfg.CacheSIRENs)
	t.cache.SetEncodeFull(t.changelog != nil) // the changelog carries whole states
	if t.opt.segmentTopic == "" {
		t.opt.segmentTopic = cfg.Topics.SegmentChanges
	}
	if t.opt.dlqTopic == "" {
		t.opt.dlqTopic = cfg.Topics.DLQ
	}
	t.progress.Partition = opt.partition
	return t
}

// stateCodec adapts engine.State to the state cache.
type stateCodec struct{}

func (stateCodec) Marshal(dst []byte, v *engine.State) []byte { return v.AppendBinary(dst) }

// MarshalHeader makes stateCodec a state.HeaderCodec: a sweep's new decision
// is written as its header alone (see engine.MergeHeader).
func (stateCodec) MarshalHeader(dst []byte, v *engine.State) []byte { return v.AppendHeader(dst) }
func (stateCodec) Unmarshal(siren string, b []byte) (*engine.State, error) {
	return engine.UnmarshalState(siren, b)
}

// Checkpoint meta layout (version 1): [1][flags][uvarint len][sweep cursor][engine meta].
const metaVersion = 1

func (t *task) appendMeta(dst []byte) []byte {
	dst = append(dst, metaVersion)
	var flags byte
	if t.sweeping {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(t.sweepCursor)))
	dst = append(dst, t.sweepCursor...)
	return t.eng.AppendMeta(dst)
}

func (t *task) loadMeta(b []byte) error {
	if len(b) < 2 || b[0] != metaVersion {
		return fmt.Errorf("checkpoint meta: unknown version or short (%d bytes)", len(b))
	}
	t.sweeping = b[1]&1 != 0
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || uint64(len(b)-2-k) < n {
		return errors.New("checkpoint meta: bad sweep cursor")
	}
	t.sweepCursor = string(b[2+k : 2+k+int(n)])
	return t.eng.UnmarshalMeta(b[2+k+int(n):])
}

// load restores offsets and engine meta from the store. Without a checkpoint
// the task starts from the earliest offsets: state is a function of the whole
// input history, so starting from the group's offsets without state would be
// wrong (the changelog restore covers moved partitions).
func (t *task) load(ctx context.Context, client *kafka.Client) error {
	if t.changelog != nil {
		if err := t.restore(ctx, client); err != nil {
			return err
		}
		if err := t.markStart(ctx, client); err != nil {
			return err
		}
	}
	cp, ok, err := t.cfg.Store.Checkpoint(t.opt.partition)
	if err != nil {
		return fmt.Errorf("partition %d: load checkpoint: %w", t.opt.partition, err)
	}
	first, last, err := listOffsets(ctx, client, t.inputs[:], t.opt.partition)
	if err != nil {
		return err
	}
	for i, topic := range t.inputs {
		t.next[i] = first[i]
		if ok {
			if off, has := cp.Offsets[topic]; has {
				t.next[i] = off
			}
		}
		if t.next[i] < first[i] {
			// Retention deleted records we never processed: say so loudly.
			t.log.Warn("stored offset is before the log start: records were deleted before processing",
				zap.String("topic", topic), zap.Int64("stored", t.next[i]), zap.Int64("log_start", first[i]))
			t.next[i] = first[i]
		}
		t.hwm[i] = last[i]
		t.end[i] = last[i]
	}
	var total int64
	for i := range t.next {
		total += max(t.end[i]-t.next[i], 0)
	}
	t.count(func(p *TaskProgress) { p.Total = total })
	if ok {
		if err := t.loadMeta(cp.Meta); err != nil {
			return fmt.Errorf("partition %d: %w", t.opt.partition, err)
		}
		// Report the checkpoint to the group once even if nothing is left
		// to process: after a kill -9 the group may lag behind Badger.
		t.durable, t.groupPending = cp.Offsets, true
	}
	if err := t.loadPlan(); err != nil {
		return fmt.Errorf("partition %d: %w", t.opt.partition, err)
	}
	t.log.Info("task loaded",
		zap.Bool("checkpoint", ok),
		zap.Int64s("next_offsets", t.next[:]),
		zap.Int64s("end_offsets", t.end[:]),
		zap.Time("stream_time", time.UnixMilli(t.eng.StreamTime()).UTC()),
		zap.Bool("resume_sweep", t.sweeping))
	return nil
}

func listOffsets(ctx context.Context, client *kafka.Client, topics []string, p int32) (first, last []int64, err error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range topics {
		req.Topics[t] = []kafka.OffsetRequest{kafka.FirstOffsetOf(int(p)), kafka.LastOffsetOf(int(p))}
	}
	var resp *kafka.ListOffsetsResponse
	for attempt := 0; ; attempt++ {
		resp, err = client.ListOffsets(ctx, req)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= 20 {
			return nil, nil, fmt.Errorf("partition %d: list offsets: %w", p, err)
		}
		sleepCtx(ctx, backoff(attempt))
	}
	first = make([]int64, len(topics))
	last = make([]int64, len(topics))
	for i, t := range topics {
		found := false
		for _, po := range resp.Topics[t] {
			if int32(po.Partition) != p {
				continue
			}
			if po.Error != nil {
				return nil, nil, fmt.Errorf("list offsets %s/%d: %w", t, p, po.Error)
			}
			first[i], last[i] = po.FirstOffset, po.LastOffset
			found = true
		}
		if !found {
			return nil, nil, fmt.Errorf("list offsets %s/%d: partition missing from answer", t, p)
		}
	}
	return first, last, nil
}

// run processes the partition until ctx ends (live) or the end offsets are
// reached (bounded). It flushes and commits before returning. Errors are
// fatal (storage, output); a nil return after ctx ended is a clean stop.
func (t *task) run(ctx context.Context, client *kafka.Client) (err error) {
	if err := t.load(ctx, client); err != nil {
		// A rebalance or shutdown during the restore is not fatal: nothing
		// was committed, the next owner restores again.
		return t.stopErr(ctx, err)
	}
	t.loaded()
	t.lastCommit = time.Now()
	defer func() {
		// Revocation or shutdown: flush what was processed, with a fresh
		// deadline since ctx may be done.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
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
		t.setDone()
	}()
	if t.sweeping {
		if err := t.sweepEvaluate(ctx); err != nil {
			return t.stopErr(ctx, err)
		}
	}

	t.wake = handoff.NewWakeup()
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range t.inputs {
		t.rings[i] = handoff.NewRing[item](ringSize)
		if t.opt.bounded && t.next[i] >= t.end[i] {
			continue
		}
		stop := int64(-1)
		if t.opt.bounded {
			stop = t.end[i]
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t.read(rctx, i, t.next[i], stop)
		}(i)
	}

	ticker := time.NewTicker(t.cfg.CommitInterval / 2)
	defer ticker.Stop()
	for {
		if err := t.drain(ctx, ticker.C); err != nil {
			return t.stopErr(ctx, err)
		}
		if t.opt.bounded && t.allDone() {
			return nil
		}
		// Say we are about to sleep, then look again: a reader that
		// publishes after this sees the flag and wakes us.
		t.wake.Sleeping(true)
		if t.pick() >= 0 {
			t.wake.Sleeping(false)
			continue
		}
		select {
		case <-ctx.Done():
			t.wake.Sleeping(false)
			return nil
		case <-t.wake.C():
		case <-ticker.C:
			if t.commitDue() {
				if err := t.commit(ctx, false); err != nil {
					t.wake.Sleeping(false)
					return t.stopErr(ctx, err)
				}
			}
			t.updateProgress()
		}
		t.wake.Sleeping(false)
	}
}

// ringSize is the capacity of each input's ring (records decoded ahead of
// the merge, per input).
const ringSize = 2048

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

// headOf returns input in's next record for the merge, or nil when none is
// buffered. It drops records already processed (a reader restarted before
// our offset) and records past a bounded run's end.
func (t *task) headOf(in int) *item {
	r := t.rings[in]
	if r == nil {
		return nil
	}
	for r.Len() > 0 {
		it := r.Front()
		if it.msg.Offset >= t.next[in] && (!t.opt.bounded || it.msg.Offset < t.end[in]) {
			return it
		}
		r.Pop()
	}
	return nil
}

// syncHWM takes the latest high watermarks the readers saw.
func (t *task) syncHWM() {
	for i := range t.ringHWM {
		if hw := t.ringHWM[i].Load(); hw > t.hwm[i] {
			t.hwm[i] = hw
		}
	}
}

// buffered is how many records of input in wait in its ring.
func (t *task) buffered(in int) int {
	if t.rings[in] == nil {
		return 0
	}
	return t.rings[in].Len()
}

func (t *task) allDone() bool {
	for i := range t.next {
		if t.next[i] < t.end[i] {
			return false
		}
	}
	return true
}

// pick returns the input whose head record is next in event-time order, or -1
// when the merge must wait: an input with nothing buffered that is not caught
// up to its high watermark may still hold an earlier record (spec §4).
func (t *task) pick() int {
	if len(t.replayPlan) > 0 {
		in := int(t.replayPlan[0])
		if t.headOf(in) == nil {
			return -1 // wait for the record the plan says came next
		}
		return in
	}
	best := -1
	var bestKey int64
	for i := range t.rings {
		it := t.headOf(i)
		if it == nil {
			if t.opt.bounded {
				if t.next[i] >= t.end[i] {
					continue
				}
				return -1
			}
			t.syncHWM()
			if t.next[i] >= t.hwm[i] {
				continue // caught up: do not wait for it
			}
			return -1
		}
		k := it.key()
		if best < 0 || k < bestKey {
			best, bestKey = i, k
		}
	}
	return best
}

// drain processes every record the merge can decide now. Every 256 records
// it also does what the ticker asks (progress, a due commit), since with
// readers feeding the rings concurrently it may not return for a long time.
func (t *task) drain(ctx context.Context, tick <-chan time.Time) error {
	for n := 0; ; n++ {
		in := t.pick()
		if in < 0 {
			return nil
		}
		it := t.headOf(in)
		if err := t.process(ctx, in, it); err != nil {
			return err
		}
		if len(t.replayPlan) > 0 {
			t.replayPlan = t.replayPlan[1:]
		}
		t.rings[in].Pop()
		due := t.recordsFull() || t.batchFull()
		if n&255 == 255 {
			select {
			case <-tick:
				t.updateProgress()
			default:
			}
			due = due || t.commitDue()
			if ctx.Err() != nil {
				return nil
			}
		}
		if due {
			if err := t.commit(ctx, false); err != nil {
				return err
			}
		}
	}
}

// process applies one record: DLQ, skip, sweep, step. It sets the input's
// next offset only once the record's effects are in the pending batch.
func (t *task) process(ctx context.Context, in int, it *item) error {
	topic := t.inputs[in]
	t.cfg.Metrics.Consumed(topic, t.opt.partition)
	t.count(func(p *TaskProgress) { p.Consumed++ })
	done := func() {
		t.plan = append(t.plan, byte(in))
		t.next[in] = it.msg.Offset + 1
		t.uncommitted++
		t.dirtyOffsets = true
	}
	if it.err != nil {
		t.deadLetter(in, it, schemas.DLQReason(it.err), it.err)
		done()
		return nil
	}
	ev := &it.ev
	if (t.opt.fromMs != 0 && ev.EventTime < t.opt.fromMs) || (t.opt.toMs != 0 && ev.EventTime >= t.opt.toMs) {
		t.count(func(p *TaskProgress) { p.Skipped++ })
		done()
		return nil
	}
	if err := t.eng.Check(ev); err != nil {
		t.deadLetter(in, it, engine.DLQReason(err), err)
		done()
		return nil
	}
	if string(it.msg.Key) != ev.SIREN {
		t.deadLetter(in, it, "key_mismatch",
			fmt.Errorf("record key %q is not the event's SIREN %q: co-partitioning needs key = SIREN", it.msg.Key, ev.SIREN))
		done()
		return nil
	}
	if ts := it.msg.Time; !ts.IsZero() && ev.EventTime > ts.UnixMilli()+t.cfg.MaxFutureSkew.Milliseconds() {
		t.deadLetter(in, it, "future", fmt.Errorf("%w: event_time %s is more than %s after the record timestamp %s",
			engine.ErrFuture, time.UnixMilli(ev.EventTime).UTC().Format(time.RFC3339), t.cfg.MaxFutureSkew, ts.UTC().Format(time.RFC3339)))
		done()
		return nil
	}
	if t.eng.NeedsSweep(ev) {
		if err := t.sweep(ctx, ev.EventTime); err != nil {
			return err
		}
	}
	st, found, err := t.cache.Get(ev.SIREN)
	if err != nil {
		return fmt.Errorf("%s/%d@%d: load state of %s: %w", topic, t.opt.partition, it.msg.Offset, ev.SIREN, err)
	}
	if !found {
		// Clone: decoded strings share the record's buffer, which a cached
		// state must not pin.
		st = engine.NewState(strings.Clone(ev.SIREN))
	}
	var before float64
	var hadBefore bool
	if t.nextInt != nil && found {
		before, hadBefore = t.eng.IntensityNextDay(st)
	}
	changed, err := t.eng.Step(st, ev, &t.dec)
	if err != nil {
		t.deadLetter(in, it, engine.DLQReason(err), err)
		done()
		return nil
	}
	if n := t.nextInt; n != nil {
		if n.day != t.eng.StreamDay()+1 {
			t.nextInt = nil // cannot happen: a new day sweeps first
		} else {
			if hadBefore {
				n.remove(before)
			}
			if v, ok := t.eng.IntensityNextDay(st); ok {
				n.add(v)
			}
		}
	}
	t.cache.Put(st.SIREN, st)
	if changed {
		t.emit(&t.dec)
	}
	t.cfg.Metrics.Processed(topic, t.opt.partition)
	t.count(func(p *TaskProgress) { p.Processed++ })
	done()
	return nil
}

// maxDetail caps the error.detail header: a detail quotes the bad value,
// and a dead letter must stay within the broker's record size limit
// (max.message.bytes) like the input record it carries.
const maxDetail = 512

func detailHeader(cause error) []byte {
	d := cause.Error()
	if len(d) > maxDetail {
		d = d[:maxDetail] + "…(truncated)"
	}
	return []byte(d)
}

func (t *task) deadLetter(in int, it *item, reason string, cause error) {
	topic := t.inputs[in]
	t.cfg.Metrics.DeadLettered(topic, t.opt.partition, reason)
	t.count(func(p *TaskProgress) { p.DeadLettered++ })
	t.outputs = append(t.outputs, kafka.Message{
		Topic: t.opt.dlqTopic,
		Key:   it.msg.Key,
		Value: it.msg.Value,
		Headers: []kafka.Header{
			{Key: "error", Value: []byte(reason)},
			{Key: "error.detail", Value: detailHeader(cause)},
			{Key: "source.topic", Value: []byte(topic)},
			{Key: "source.partition", Value: []byte(strconv.Itoa(int(t.opt.partition)))},
			{Key: "source.offset", Value: []byte(strconv.FormatInt(it.msg.Offset, 10))},
		},
	})
}

func (t *task) emit(d *engine.Decision) {
	val := schemas.AppendSegmentChange(nil, d)
	key := []byte(d.SIREN)
	t.outputs = append(t.outputs, kafka.Message{Topic: t.opt.segmentTopic, Key: key, Value: val})
	if d.Added&engine.ChurnRisk != 0 && t.opt.churnTopic != "" {
		t.outputs = append(t.outputs, kafka.Message{Topic: t.opt.churnTopic, Key: key, Value: val})
	}
	for _, s := range d.Added.Names() {
		t.cfg.Metrics.Transition(s, true)
	}
	for _, s := range d.Removed.Names() {
		t.cfg.Metrics.Transition(s, false)
	}
	t.cfg.Metrics.SegmentChange(t.opt.partition, d)
	t.count(func(p *TaskProgress) { p.Changes++ })
}

// sweep starts a new stream day: every SIREN of the partition is re-evaluated
// so windows slide without new events (spec §4). Pass 1 builds the percentile
// snapshot; pass 2 evaluates in SIREN order and commits in chunks with a
// cursor, so a crash resumes the sweep exactly where it stopped.
func (t *task) sweep(ctx context.Context, newTime int64) error {
	start := time.Now()
	changes0 := t.snapshot().Changes
	// Pass 1 reads the store when the cache does not hold the whole
	// partition: the store must be the truth then. A complete cache needs
	// no commit here: the day's last records and the sweep's changes go
	// into one batch, which is what lets a batch span several days.
	if !t.cache.Complete() {
		if err := t.commit(ctx, true); err != nil {
			return err
		}
	}
	t.eng.AdvanceTo(newTime)
	t.vals = t.vals[:0]
	// Pass 1 needs only intensities: from the set Steps kept up to date
	// since the last sweep, or from memory when the cache holds the whole
	// partition, else straight from the encoded states (the commit above
	// left nothing dirty, so the store is the truth) without decoding.
	// Pass 2's Cache.Each fills the cache when the partition fits.
	var err error
	from := "store"
	switch n := t.nextInt; {
	case n != nil && n.day == t.eng.StreamDay():
		t.vals = n.appendValues(t.vals)
		from = "kept set"
	case t.cache.Complete():
		from = "cache"
		// Any order: SetSnapshot sorts the values.
		err = t.cache.EachUnordered(func(siren string, st *engine.State) error {
			if v, ok := t.eng.Intensity(st); ok {
				t.vals = append(t.vals, v)
			}
			return nil
		})
	default:
		err = t.cfg.Store.Scan(t.opt.partition, func(siren string, val []byte) error {
			v, ok, err := t.eng.IntensityEncoded(val)
			if err != nil {
				return fmt.Errorf("partition %d: decode state of %s: %w", t.opt.partition, siren, err)
			}
			if ok {
				t.vals = append(t.vals, v)
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	if ce := t.log.Check(zap.DebugLevel, "day change"); ce != nil {
		ce.Write(zap.Time("day", time.UnixMilli(newTime).UTC()), zap.String("pass1_from", from), zap.Int("scored", len(t.vals)))
	}
	t.nextInt, t.building = nil, nil
	if !t.cache.Complete() {
		t.building = newNextIntensities(t.eng.StreamDay() + 1)
	}
	t.eng.SetSnapshot(t.vals)
	t.sweeping, t.sweepCursor = true, ""
	t.dirtyOffsets = true
	if err := t.sweepEvaluate(ctx); err != nil {
		return err
	}
	if f := t.cfg.OnDayChange; f != nil {
		f(DayChange{
			Partition: t.opt.partition,
			Day:       time.UnixMilli(int64(t.eng.StreamDay()) * engine.DayMs).UTC(),
			Start:     start,
			Duration:  time.Since(start),
			Pass1:     from,
			Scored:    len(t.vals),
			Changes:   t.snapshot().Changes - changes0,
		})
	}
	return nil
}

var errChunkFull = errors.New("sweep chunk full")

// commitDue reports whether the current batch has waited long enough: every
// CommitInterval when the task is caught up (output latency), every
// CatchUpCommitInterval while it is behind by CommitRecords or more.
func (t *task) commitDue() bool {
	since := time.Since(t.lastCommit)
	if since < t.cfg.CommitInterval {
		return false
	}
	return since >= t.cfg.CatchUpCommitInterval || t.backlog() < int64(t.cfg.CommitRecords)
}

// backlog is how many input records are known to wait: up to the end offsets
// of a bounded run, up to the last high watermarks seen otherwise.
func (t *task) backlog() int64 {
	t.syncHWM()
	var n int64
	for i := range t.next {
		last := t.hwm[i]
		if t.opt.bounded {
			last = t.end[i]
		}
		n += max(last-t.next[i], 0)
	}
	return n
}

// recordsFull reports whether the batch holds as many records as one commit
// may: CommitRecords, or CatchUpCommitRecords while the task is behind by
// CommitRecords or more.
func (t *task) recordsFull() bool {
	if t.uncommitted < t.cfg.CommitRecords {
		return false
	}
	return t.uncommitted >= t.cfg.CatchUpCommitRecords || t.backlog() < int64(t.cfg.CommitRecords)
}

// batchFull keeps one commit well inside Badger's transaction limits (bytes
// and entries): half of each, since estimates are approximate.
func (t *task) batchFull() bool {
	// Entries of the batch in flight stay dirty until it is durable; they
	// are not part of the next transaction unless touched again, so the
	// next batch is sized by what the last Encode did not cover (half of
	// each limit). All dirty entries together — an upper bound of the next
	// transaction, including in-flight entries touched again or a failed
	// batch folded back — never exceed the full limit.
	maxN, maxB := t.cfg.Store.MaxCommitEntries(), t.cfg.Store.MaxCommitBytes()
	n, b := t.cache.Unencoded()
	return n >= maxN/2 || b >= maxB/2 ||
		t.cache.DirtyCount() >= maxN || t.cache.DirtyBytesEstimate() >= maxB
}

// sweepChunkStates bounds a sweep chunk of a partition bigger than the
// cache: until its commit, each change keeps a decoded state (~2.5 KB), its
// whole encoding for the changelog and its output in memory, twice over with
// the chunk in flight. Header writes are small, so Badger's transaction
// limits alone would allow ~9k of them per chunk: +290 MiB of peak RSS on the
// first-snapshot day at 1M SIRENs (4 partitions); 2,000 keeps the sweep's
// memory near what it was with whole-state chunks of ~1k.
const sweepChunkStates = 2000

func (t *task) sweepEvaluate(ctx context.Context) error {
	for {
		chunk := t.cfg.CommitRecords
		if !t.cache.Complete() {
			chunk = min(chunk, sweepChunkStates)
		}
		n := 0
		err := t.cache.Each(t.sweepCursor, func(siren string, st *engine.State) error {
			if b := t.building; b != nil {
				if v, ok := t.eng.IntensityNextDay(st); ok {
					b.add(v)
				}
			}
			if t.eng.Evaluate(st, &t.dec) {
				// Evaluate changed the decision alone (seq, segments): the
				// header of the state, which is all a clean state needs to
				// write (a few bytes instead of ~1 KB: 200k of 1M SIRENs
				// change on the first day with a percentile snapshot).
				// PutHeader is transient for a state not cached: in a
				// partition bigger than the cache, the sweep's changes do
				// not evict the states traffic keeps hot.
				t.cache.PutHeader(siren, st)
				t.emit(&t.dec)
			}
			t.sweepCursor = siren
			n++
			if t.cache.DirtyCount() >= chunk || t.batchFull() {
				return errChunkFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunkFull) {
			return err
		}
		t.dirtyOffsets = true
		if err == nil {
			// Done: the sweep's changes stay in the current batch, which the
			// usual rules commit (a crash before that re-runs the records
			// and the deterministic sweep from the last checkpoint).
			t.sweeping, t.sweepCursor = false, ""
			if !t.cache.Complete() {
				t.nextInt = t.building
			}
			t.building = nil
			return nil
		}
		// A full chunk is committed, not forced: it is written in the
		// background while the next one is evaluated. Its checkpoint carries
		// the cursor, so a crash resumes after the last durable chunk and
		// the deterministic sweep re-emits the in-flight chunk's events with
		// the same bytes.
		if cerr := t.commit(ctx, false); cerr != nil {
			return cerr
		}
	}
}

// commit runs the commit protocol of design.md: (1) outputs flushed and
// acknowledged, (2) one Badger transaction with dirty states, input offsets
// and task meta, (3) offsets to the consumer group (lag tools only).
func (t *task) commit(ctx context.Context, force bool) error {
	// One batch in flight at a time: the previous one must be durable (or
	// have failed and been folded back) before the next is encoded.
	if err := t.awaitInflight(); err != nil {
		return err
	}
	if len(t.outputs) == 0 && t.cache.DirtyCount() == 0 && !t.dirtyOffsets {
		t.lastCommit = time.Now()
		// An idle task still owes the group its last durable offsets when
		// the rate limit skipped them.
		t.commitGroup(force)
		return nil
	}
	b := &batch{start: time.Now(), done: make(chan struct{}), outputs: t.outputs, batchStart: t.batchStart}
	if len(t.outputs) > 0 && len(t.plan) > 0 {
		b.plan = t.encodePlan()
	}
	b.offsets = make(map[string]int64, numInputs+1)
	for i, topic := range t.inputs {
		b.offsets[topic] = t.next[i]
	}
	t.meta = t.appendMeta(t.meta[:0])
	b.states = t.cache.DirtyCount()
	b.cp = state.Checkpoint{Offsets: b.offsets, Meta: append([]byte(nil), t.meta...)}
	b.puts = t.cache.Encode()
	b.planRecords = append([]byte(nil), t.plan...)

	// The next batch starts now; this one is written in the background
	// while the task goes on processing (forced commits wait for it).
	t.outputs = nil
	t.uncommitted = 0
	t.dirtyOffsets = false
	t.plan = t.plan[:0]
	t.batchStart = t.next
	t.lastCommit = time.Now()
	t.inflight = b
	go func() {
		defer close(b.done)
		b.err = t.flushBatch(ctx, b)
	}()
	if force {
		if err := t.awaitInflight(); err != nil {
			return err
		}
		t.commitGroup(true)
	}
	return nil
}

// batch is one commit of the protocol, written by flushBatch in the
// background: (1) merge plan, outputs (acks=all), (2) changelog states and
// checkpoint, (3) the Badger transaction with states, offsets and meta.
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

// flushBatch runs in its own goroutine: it touches no task state but the
// batch, the (concurrency-safe) store, writer and changelog client.
func (t *task) flushBatch(ctx context.Context, b *batch) error {
	if b.plan != nil {
		if err := t.cfg.Store.SavePlan(t.opt.partition, b.plan); err != nil {
			return fmt.Errorf("partition %d: save merge plan: %w", t.opt.partition, err)
		}
	}
	if len(b.outputs) > 0 {
		if err := t.write(ctx, b.outputs); err != nil {
			return err
		}
	}
	b.clNext = -1
	if t.changelog != nil {
		next, err := t.writeChangelog(ctx, b.puts, b.cp)
		if err != nil {
			return err
		}
		b.clNext = next
		b.offsets[t.changelog.topic] = next
	}
	if t.cfg.beforeStateCommit != nil {
		if err := t.cfg.beforeStateCommit(t.opt.partition); err != nil {
			return err
		}
	}
	if err := t.cache.CommitPending(b.puts, b.cp); err != nil {
		return fmt.Errorf("partition %d: commit state: %w", t.opt.partition, err)
	}
	t.cfg.Metrics.Commit(t.opt.partition, time.Since(b.start), b.states)
	return nil
}

// awaitInflight waits for the batch being written. On success its entries
// become clean and its offsets go to the group; on failure the batch is
// folded back into the current one (outputs first, plan first, offsets of
// its start), so the next commit writes everything again — outputs may
// repeat, with the same bytes, as the delivery contract allows.
func (t *task) awaitInflight() error {
	b := t.inflight
	if b == nil {
		return nil
	}
	<-b.done
	t.inflight = nil
	if b.err != nil {
		t.outputs = append(b.outputs, t.outputs...)
		t.plan = append(b.planRecords, t.plan...)
		t.batchStart = b.batchStart
		t.dirtyOffsets = true
		return b.err
	}
	if err := t.cache.MarkCommitted(b.puts); err != nil {
		return err
	}
	if b.clNext >= 0 {
		t.clNext = b.clNext
	}
	t.updateProgress()
	t.durable, t.groupPending = b.offsets, true
	t.commitGroup(false)
	return nil
}

// commitGroup sends the offsets of the last Badger checkpoint to the
// consumer group, at most every GroupCommitInterval unless
// forced. A skipped commit stays pending, so a task that goes idle still
// reports its final offsets to lag tools one interval later.
func (t *task) commitGroup(force bool) {
	if t.opt.groupCommit == nil || !t.groupPending || (!force && time.Since(t.lastGroup) < t.cfg.GroupCommitInterval) {
		return
	}
	g := map[string]map[int]int64{}
	for _, topic := range t.inputs { // input topics only, not the changelog position
		if off, ok := t.durable[topic]; ok {
			g[topic] = map[int]int64{int(t.opt.partition): off}
		}
	}
	if err := t.opt.groupCommit(g); err != nil {
		// Not fatal: restart trusts Badger. Lag tools see stale offsets.
		t.log.Warn("group offset commit failed", zap.Error(err))
	} else {
		t.groupPending = false
	}
	t.lastGroup = time.Now()
}

// write sends outputs and waits for acks=all, retrying until ctx ends: an
// output or DLQ topic that cannot be written stops progress instead of
// dropping data (nothing is committed past it).
func (t *task) write(ctx context.Context, msgs []kafka.Message) error {
	for attempt := 0; ; attempt++ {
		err := t.writer.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
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
			return fmt.Errorf("partition %d: write %d outputs: %w (state not committed; they will be re-produced)", t.opt.partition, len(msgs), err)
		}
		t.log.Warn("output write failed; retrying (progress is paused)", zap.Error(err), zap.Int("attempt", attempt+1))
		sleepCtx(ctx, backoff(attempt))
	}
}

// read feeds one input partition into the merge, decoding in this goroutine.
func (t *task) read(ctx context.Context, in int, from, stop int64) {
	topic := t.inputs[in]
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        t.cfg.Kafka.Brokers,
		Topic:          topic,
		Partition:      int(t.opt.partition),
		Dialer:         t.cfg.Kafka.dialer(),
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  1000,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: 2 * time.Second,
		ErrorLogger:    kafka.LoggerFunc(t.log.Sugar().With("topic", topic).Debugf),
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		t.log.Error("set reader offset", zap.String("topic", topic), zap.Error(err))
		return
	}
	kind := engine.Kind(in)
	ring := t.rings[in]
	for attempt := 0; ; {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.log.Warn("fetch failed; retrying", zap.String("topic", topic), zap.Error(err))
			sleepCtx(ctx, backoff(attempt))
			attempt++
			continue
		}
		attempt = 0
		it := ring.Slot(ctx)
		if it == nil {
			return
		}
		it.msg = msg
		if stop < 0 || msg.Offset < stop {
			// Decoded in place: the task reads the slot, no copy.
			it.err = t.decode(ctx, kind, msg.Value, &it.ev)
		} else {
			it.err, it.ev = nil, engine.Event{}
		}
		if hw := msg.HighWaterMark; hw > t.ringHWM[in].Load() {
			t.ringHWM[in].Store(hw)
		}
		ring.Publish(t.wake)
		if stop >= 0 && msg.Offset+1 >= stop {
			return
		}
	}
}

// decode decodes value into *ev (reset first). A schema-registry outage is
// not the record's fault: retry until it answers instead of dead-lettering.
func (t *task) decode(ctx context.Context, kind engine.Kind, value []byte, ev *engine.Event) error {
	for attempt := 0; ; attempt++ {
		*ev = engine.Event{}
		err := t.cfg.Codec.Decode(ctx, kind, value, ev)
		if err == nil || !errors.Is(err, schemas.ErrRegistry) || ctx.Err() != nil {
			return err
		}
		t.log.Warn("schema registry unavailable; retrying", zap.Error(err))
		sleepCtx(ctx, backoff(attempt))
	}
}

func (t *task) count(f func(p *TaskProgress)) {
	t.mu.Lock()
	f(&t.progress)
	t.mu.Unlock()
}

func (t *task) updateProgress() {
	t.syncHWM()
	var lag int64
	caught := true
	for i := range t.next {
		l := t.hwm[i] - t.next[i] - int64(t.buffered(i))
		if l < 0 {
			l = 0
		}
		if t.hwm[i] > t.next[i] {
			caught = false
		}
		t.cfg.Metrics.Lag(t.inputs[i], t.opt.partition, t.hwm[i]-t.next[i])
		lag += l
	}
	st := t.eng.StreamTime()
	t.cfg.Metrics.StreamTime(t.opt.partition, st)
	t.count(func(p *TaskProgress) {
		p.Lag, p.CaughtUp, p.StreamTime = lag, caught && len(t.outputs) == 0 && t.cache.DirtyCount() == 0 && t.inflight == nil, st
	})
}

func (t *task) setDone() {
	t.count(func(p *TaskProgress) { p.Done = true })
}

func (t *task) snapshot() TaskProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.progress
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 6)
	return min(d, 3*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// Plan layout: [version 1][varint batch start offset per input][input index
// per record].
func (t *task) encodePlan() []byte {
	b := []byte{1}
	for _, o := range t.batchStart {
		b = binary.AppendVarint(b, o)
	}
	return append(b, t.plan...)
}

// loadPlan installs a stored plan that starts exactly at the checkpoint's
// offsets; any other plan is stale (its batch was committed, or a changelog
// restore moved past it) and is dropped.
func (t *task) loadPlan() error {
	t.batchStart = t.next
	b, err := t.cfg.Store.Plan(t.opt.partition)
	if err != nil || b == nil {
		return err
	}
	ok := len(b) > 0 && b[0] == 1
	rest := b[1:]
	for i := 0; ok && i < numInputs; i++ {
		v, k := binary.Varint(rest)
		if k <= 0 || v != t.next[i] {
			ok = false
			break
		}
		rest = rest[k:]
	}
	for _, in := range rest {
		if int(in) >= numInputs {
			ok = false
		}
	}
	if !ok {
		return t.cfg.Store.DropPlan(t.opt.partition)
	}
	t.replayPlan = append([]byte(nil), rest...)
	t.log.Info("replaying the merge order of the batch interrupted before its commit", zap.Int("records", len(rest)))
	return nil
}
