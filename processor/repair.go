package processor

// Repair: results that do not depend on arrival order. A live task applies
// records in the order the event-time merge decides with what has arrived.
// A record that arrives after the merge has gone past it — from a stream day
// a day change already closed, or beyond the allowed lateness — would, if
// applied now, give another result than a replay, which applies it before.
// Inside retention such a record is not dropped: the task re-processes its
// partition from the input topics (the source of truth) in event-time order,
// exactly as a replay does, up to everything the topics hold now; then it
// replaces its states with the rebuilt ones and emits a correction (trigger
// REPAIR) for every SIREN whose rebuilt segments differ from the last ones it
// emitted. After a repair the partition's state is the state a replay of the
// same records gives.
//
// Crash safety: the rebuilt states are written through the usual commit
// protocol in chunks, each checkpoint marked "repair in progress up to these
// offsets"; a restart finds the mark and runs the same repair again (it is
// deterministic) before reading anything. Corrections of an interrupted
// chunk are re-emitted with the same bytes.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// needsRepair is the handler's answer for a record a live task must not
// apply in arrival order (engine.ErrNeedsRepair).
type needsRepair struct {
	topic  string
	offset int64
	cause  error
}

func (e *needsRepair) Error() string {
	return fmt.Sprintf("%s@%d needs a repair: %v", e.topic, e.offset, e.cause)
}

func (e *needsRepair) Unwrap() error { return e.cause }

// repairTo re-processes the partition up to the inputs' current end offsets
// (or those of an interrupted repair) and swaps the rebuilt states in.
func (t *task) repairTo(ctx context.Context, reason string) error {
	start := time.Now()
	// Everything applied so far is durable: the store is what was emitted.
	if err := t.commit(ctx, true); err != nil {
		return err
	}
	to := t.repair.to
	if !t.repair.active {
		_, last, err := listOffsets(ctx, t.client, t.in.names[:], t.partition)
		if err != nil {
			return err
		}
		copy(to[:], last)
	}
	from := t.in.next // records at or after these were never applied live
	t.log.Info("repair: re-processing the partition in event-time order from its input topics",
		zap.String("reason", reason), zap.Int64s("from", from[:]), zap.Int64s("to", to[:]))

	scratch, meta, fresh, latest, err := t.rebuild(ctx, from, to)
	if scratch != nil {
		defer scratch.close()
	}
	if err != nil {
		return err
	}
	rebuildTook := time.Since(start)

	// Mark the repair before the first rebuilt state is written.
	t.repair = repairMark{active: true, to: to}
	if err := t.eng.UnmarshalMeta(meta); err != nil {
		return fmt.Errorf("partition %d: repair: rebuilt meta: %w", t.partition, err)
	}
	t.sweep = sweepProgress{}
	// The records never applied live are consumed now: dead letters from
	// the rebuild (their first and only copy), the rest processed.
	for i, topic := range t.in.names {
		n := to[i] - from[i]
		for range max(n, 0) {
			t.out.consumed(topic)
		}
	}
	for _, dl := range fresh {
		// The rebuild's dead letter as it is: the bytes a live dead letter
		// of that record has.
		t.cfg.Metrics.DeadLettered(dl.topic, t.partition, dl.reason)
		t.progress.update(func(p *TaskProgress) { p.DeadLettered++ })
		t.com.add(dl.msg)
	}
	processedNew := make(map[string]int64, numInputs)
	for i, topic := range t.in.names {
		processedNew[topic] = max(to[i]-from[i], 0)
	}
	for _, dl := range fresh {
		processedNew[dl.topic]--
	}
	for topic, n := range processedNew {
		for range max(n, 0) {
			t.out.processed(topic)
		}
	}
	corrections, err := t.swapIn(ctx, scratch.store)
	if err != nil {
		return err
	}
	t.in.next = to
	t.in.replayPlan = nil
	for i := range t.in.latest {
		t.in.latest[i] = max(t.in.latest[i], latest[i])
		t.in.idleSince[i], t.in.idle[i] = time.Time{}, false
	}
	t.repair = repairMark{}
	t.com.dirty = true
	if err := t.commit(ctx, true); err != nil {
		return err
	}
	t.cfg.Metrics.Repair(t.partition, corrections)
	t.log.Info("repair done",
		zap.Duration("rebuild", rebuildTook), zap.Duration("total", time.Since(start)),
		zap.Int("corrections", corrections), zap.Int("new_dead_letters", len(fresh)),
		zap.Time("stream_time", time.UnixMilli(t.eng.StreamTime()).UTC()))
	return nil
}

// scratchStore is the temporary store a repair rebuilds into.
type scratchStore struct {
	store *state.Store
	dir   string
}

func (s *scratchStore) close() {
	_ = s.store.Close()
	_ = os.RemoveAll(s.dir)
}

// freshDeadLetter is a dead letter of the rebuild for a record the live task
// never saw: it is emitted once, by the repair.
type freshDeadLetter struct {
	topic, reason string
	msg           kafka.Message // the dead letter, headers included
}

// rebuild runs a bounded task over the partition's inputs from their log
// start up to to, into a scratch store, as a replay does (no repairs, no
// changelog, outputs discarded but for the dead letters of records at or
// after from). It returns the scratch store, the rebuilt task's checkpoint
// meta (engine part) and those dead letters.
func (t *task) rebuild(ctx context.Context, from, to [numInputs]int64) (scratch *scratchStore, meta []byte, fresh []freshDeadLetter, latest [numInputs]int64, err error) {
	dir, err := os.MkdirTemp(t.cfg.RepairDir, fmt.Sprintf("sirenstream-repair-p%d-", t.partition))
	if err != nil {
		return nil, nil, nil, latest, fmt.Errorf("partition %d: repair: scratch directory: %w", t.partition, err)
	}
	store, err := OpenStore(state.Options{Dir: dir, Logger: t.log})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, nil, latest, fmt.Errorf("partition %d: repair: scratch store: %w", t.partition, err)
	}
	scratch = &scratchStore{store: store, dir: dir}
	cfg := *t.cfg
	cfg.Store = store
	cfg.Metrics = nopMetrics{}
	cfg.OnDayChange = nil
	cfg.beforeStateCommit = nil
	cfg.Logger = t.log.Named("repair").WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	capture := &captureWriter{dlq: t.opt.routes.dlq, inputs: t.in.names, from: from}
	child := newTask(&cfg, taskOptions{
		partition: t.partition,
		bounded:   true,
		ends:      &to,
		routes:    t.opt.routes,
		limits:    t.opt.limits,
	}, capture)
	if err := child.run(ctx, t.client); err != nil {
		return scratch, nil, nil, latest, fmt.Errorf("partition %d: repair: rebuild: %w", t.partition, err)
	}
	if ctx.Err() != nil {
		return scratch, nil, nil, latest, fmt.Errorf("partition %d: repair interrupted: %w", t.partition, ctx.Err())
	}
	cp, ok, err := store.Checkpoint(t.partition)
	if err != nil {
		return scratch, nil, nil, latest, err
	}
	eng := engine.NewTask(cfg.Rules, cfg.engineConfig(false))
	if ok {
		if _, err := parseMeta(cp.Meta, eng); err != nil {
			return scratch, nil, nil, latest, fmt.Errorf("partition %d: repair: %w", t.partition, err)
		}
	}
	return scratch, eng.AppendMeta(nil), capture.fresh, child.in.latest, nil
}

// swapIn replaces the live states by the rebuilt ones, in SIREN order and
// in chunks committed with the repair mark, emitting corrections. It returns
// how many corrections it emitted.
func (t *task) swapIn(ctx context.Context, rebuilt *state.Store) (int, error) {
	corrections := 0
	var chunkErr error
	err := rebuilt.Scan(t.partition, func(siren string, val []byte) error {
		st, err := engine.UnmarshalState(siren, val)
		if err != nil {
			return fmt.Errorf("partition %d: repair: rebuilt state of %s: %w", t.partition, siren, err)
		}
		old, found, err := t.cache.Get(siren)
		if err != nil {
			return fmt.Errorf("partition %d: repair: state of %s: %w", t.partition, siren, err)
		}
		if !found {
			old = nil
		}
		if t.eng.Correct(old, st, &t.dec) {
			t.out.change(&t.dec)
			corrections++
		}
		t.cache.Put(siren, st)
		if t.cache.DirtyCount() >= sweepChunkStates || t.com.full() {
			if chunkErr = t.commit(ctx, false); chunkErr != nil {
				return chunkErr
			}
		}
		return nil
	})
	return corrections, err
}

// captureWriter is the rebuild's output: it keeps the dead letters of
// records the live task never saw (offset ≥ from of their input) and drops
// the rest (the live task emitted them, or the repair corrects them).
type captureWriter struct {
	dlq    string
	inputs [numInputs]string
	from   [numInputs]int64

	mu    sync.Mutex
	fresh []freshDeadLetter
}

func (w *captureWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		if m.Topic != w.dlq {
			continue
		}
		var topic, reason string
		var off int64 = -1
		for _, h := range m.Headers {
			switch h.Key {
			case "source.topic":
				topic = string(h.Value)
			case "source.offset":
				off, _ = strconv.ParseInt(string(h.Value), 10, 64)
			case "error":
				reason = string(h.Value)
			}
		}
		for i, name := range w.inputs {
			if name == topic && off >= w.from[i] {
				w.fresh = append(w.fresh, freshDeadLetter{topic: topic, reason: reason, msg: m})
			}
		}
	}
	return nil
}
