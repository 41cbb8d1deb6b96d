package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// handler applies one merged input record to the partition: the decode
// result, a replay's bounds, the engine's checks, the day change the record
// starts, and its step on the SIREN's state. What it produces goes to out.
type handler struct {
	eng    *engine.Task
	states *state.Cache[*engine.State]
	out    sink
	// fromMs/toMs bound event time in replays (0 = unbounded); records
	// outside are skipped.
	fromMs, toMs int64
	// beginDay runs the day change a record starts (before its step).
	beginDay func(ctx context.Context, ms int64) error
	dec      engine.Decision
	// bounds: the engine's bound counters as last reported (reportBounds).
	bounds engine.BoundCounts
}

// handle applies it, read from input topic. A nil return means the record's
// effects are in the open batch (processed, skipped or dead-lettered); an
// error is fatal for the task (storage) and the record stays unprocessed.
func (h *handler) handle(ctx context.Context, topic string, it *item) error {
	ev := &it.ev
	inBounds := (h.fromMs == 0 || ev.EventTime >= h.fromMs) && (h.toMs == 0 || ev.EventTime < h.toMs)
	var checkErr error
	if it.err == nil && inBounds && ev.Kind != engine.KindTick { // a tick touches no SIREN: no record checks
		rec := engine.Record{Key: it.msg.Key}
		if ts := it.msg.Time; !ts.IsZero() {
			rec.TimestampMs = ts.UnixMilli()
		}
		checkErr = h.eng.CheckRecord(ev, rec)
		if errors.Is(checkErr, engine.ErrNeedsRepair) {
			// Not consumed here: the repair re-processes it with the rest.
			return &needsRepair{topic: topic, offset: it.msg.Offset, cause: checkErr}
		}
	}
	h.out.consumed(topic)
	if it.err != nil {
		h.out.deadLetter(topic, &it.msg, engine.DLQReason(it.err), it.err)
		return nil
	}
	if !inBounds {
		h.out.skipped()
		return nil
	}
	if ev.Kind == engine.KindTick {
		if err := h.tick(ctx, ev.EventTime); err != nil {
			return err
		}
		h.out.processed(topic)
		return nil
	}
	if checkErr != nil {
		h.out.deadLetter(topic, &it.msg, engine.DLQReason(checkErr), checkErr)
		return nil
	}
	if err := h.fireTimers(ctx, ev.EventTime); err != nil {
		return err
	}
	if h.eng.StartsDay(ev) {
		if err := h.beginDay(ctx, ev.EventTime); err != nil {
			return err
		}
	}
	st, found, err := h.states.Get(ev.SIREN)
	if err != nil {
		return fmt.Errorf("%s/%d@%d: load state of %s: %w", topic, it.msg.Partition, it.msg.Offset, ev.SIREN, err)
	}
	if !found {
		// Clone: decoded strings share the record's buffer, which a cached
		// state must not pin.
		st = engine.NewState(strings.Clone(ev.SIREN))
	}
	changed, err := h.eng.Step(st, ev, &h.dec)
	if err != nil {
		h.out.deadLetter(topic, &it.msg, engine.DLQReason(err), err)
		return nil
	}
	h.states.Put(st.SIREN, st)
	if h.eng.BoundHits() != h.bounds.Total {
		h.reportBounds(topic, it.msg.Offset)
	}
	if changed {
		h.dec.TriggerTopic = topic
		h.out.change(&h.dec)
	}
	h.out.processed(topic)
	return nil
}

// fireTimers fires the engine's timers due at or before ms (the event time
// of the record about to be stepped), in order, each after the day change
// it starts: an open outage is re-evaluated when stream time passes its
// golden hour and its RECOVERY_EXPOSED threshold, not at the SIREN's next
// event. A change is a decision with trigger TIMER; like a day change's, it
// changes only the state's header.
func (h *handler) fireTimers(ctx context.Context, ms int64) error {
	for {
		tm, ok := h.eng.NextTimer(ms)
		if !ok {
			return nil
		}
		if h.eng.StartsDayAt(tm.At) {
			if err := h.beginDay(ctx, tm.At); err != nil {
				return err
			}
		}
		st, found, err := h.states.Get(tm.SIREN)
		if err != nil {
			return fmt.Errorf("timer of %s at %d: load state: %w", tm.SIREN, tm.At, err)
		}
		if !found {
			st = nil
		}
		changed, err := h.eng.FireTimer(st, tm, &h.dec)
		if err != nil {
			return err
		}
		if changed {
			h.states.PutHeader(st.SIREN, st)
			h.out.change(&h.dec)
		}
	}
}

// tick moves a quiet partition's stream time to ms as a record at ms would
// (the timers due, the day change it starts), touching no SIREN; a tick at
// or before stream time changes nothing.
func (h *handler) tick(ctx context.Context, ms int64) error {
	if !h.eng.Started() || ms <= h.eng.StreamTime() {
		return nil
	}
	if err := h.fireTimers(ctx, ms); err != nil {
		return err
	}
	if h.eng.StartsDayAt(ms) {
		if err := h.beginDay(ctx, ms); err != nil {
			return err
		}
	}
	return h.eng.AdvanceTo(ms)
}

// boundSink is what hears of the engine's bound hits: observed (metric and
// rate-limited WARN). A sink without it ignores them.
type boundSink interface {
	boundHit(b engine.Bound, siren string, n uint64, topic string, offset int64)
}

// reportBounds passes on the bound hits since the last report: a SIREN's
// state reached one of its bounds while handling the record at
// topic/offset.
func (h *handler) reportBounds(topic string, offset int64) {
	c := h.eng.Bounds()
	if c.Total < h.bounds.Total { // another engine task: counters restarted
		h.bounds = engine.BoundCounts{}
	}
	if bs, ok := h.out.(boundSink); ok {
		for b := range engine.NumBounds {
			if n := c.Hits[b] - h.bounds.Hits[b]; n > 0 {
				bs.boundHit(engine.Bound(b), c.Last[b], n, topic, offset)
			}
		}
	}
	h.bounds = c
}
