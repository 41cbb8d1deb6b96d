package processor

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/handoff"
	"github.com/sirenstream/sirenstream/internal/merge"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

const numInputs = topology.NumInputs

// item is one fetched input record, decoded by its reader goroutine.
type item struct {
	msg kafka.Message
	ev  engine.Event
	err error // decode error: the record goes to the DLQ
}

// itemKey orders items in the event-time merge: bad records first (they
// change nothing), then event time; ties go to the lower input index
// (profiles, outages, claims, usage).
func itemKey(it *item) int64 {
	if it.err != nil {
		return math.MinInt64
	}
	return it.ev.EventTime
}

// ringSize is the capacity of each input's ring (records decoded ahead of
// the merge, per input).
const ringSize = 2048

// inputs are a task's co-partitioned input partitions: where each stands
// (next offset, high watermark, a bounded run's end) and the rings their
// readers decode into. The task goroutine owns everything but ringHWM.
type inputs struct {
	names   [numInputs]string
	bounded bool // stop at end (a replay)

	next [numInputs]int64 // next offset to process per input
	end  [numInputs]int64 // bounded: stop offsets
	hwm  [numInputs]int64 // latest known high watermark

	// rings hand each input's decoded records from its reader to the merge
	// (nil until the readers start); wake lets readers wake the task.
	rings   [numInputs]*handoff.Ring[item]
	ringHWM [numInputs]atomic.Int64 // latest high watermark each reader saw
	wake    *handoff.Wakeup

	// replayPlan, when not empty, is the input order of the records of a
	// batch interrupted before its commit: the merge follows it instead of
	// arrival timing, so the batch re-emits byte-identical outputs.
	replayPlan []byte

	// Day-change holds (live): latest is the largest event time taken from
	// each input (noTime: none yet); an input with nothing buffered whose
	// latest is before a new stream day holds that day change for up to
	// maxIdle from idleSince, then it is idle (it no longer holds day
	// changes) until it delivers a record.
	maxIdle   time.Duration
	latest    [numInputs]int64
	idleSince [numInputs]time.Time
	idle      [numInputs]bool
}

// noTime marks an input that delivered no record yet.
const noTime = math.MinInt64

// holdDay reports whether the record of input in with event time ms, which
// starts a new stream day, must wait: another input has nothing buffered,
// is caught up, is not idle yet and is behind that day — it may still
// deliver records of the day being closed (a lagging feed). now is the
// wall clock (I/O scheduling only: which records are applied together is
// the repair's business, not the results).
func (in *inputs) holdDay(cur int, ms int64, now time.Time) (hold bool, idled []int) {
	if in.bounded || in.maxIdle <= 0 {
		return false, nil
	}
	dayStart := ms - ms%engine.DayMs
	for i := range in.names {
		if i == cur || in.idle[i] || in.latest[i] >= dayStart || in.buffered(i) > 0 || engine.Kind(i) == engine.KindTick {
			// (Ticks are written for partitions that are behind: a day
			// change never waits for one.)
			continue
		}
		if in.idleSince[i].IsZero() {
			in.idleSince[i] = now
		}
		if now.Sub(in.idleSince[i]) < in.maxIdle {
			hold = true
			continue
		}
		in.idle[i] = true
		idled = append(idled, i)
	}
	return hold, idled
}

// Len, Head and Wait make inputs a merge.Inputs.
func (in *inputs) Len() int { return numInputs }

// Head is input i's next record, or nil when none is buffered. It drops
// records already processed (a reader restarted before our offset) and
// records past a bounded run's end.
func (in *inputs) Head(i int) *item {
	r := in.rings[i]
	if r == nil {
		return nil
	}
	for r.Len() > 0 {
		it := r.Front()
		if it.msg.Offset >= in.next[i] && (!in.bounded || it.msg.Offset < in.end[i]) {
			return it
		}
		r.Pop()
	}
	return nil
}

// Wait: an input with nothing buffered that is not caught up to its high
// watermark (or a bounded run's end) may still hold an earlier record
// (spec §4).
func (in *inputs) Wait(i int) bool {
	if in.bounded {
		return in.next[i] < in.end[i]
	}
	in.syncHWM()
	return in.next[i] < in.hwm[i]
}

// pick returns the input whose head record is next, or -1 when the merge
// must wait.
func (in *inputs) pick() int {
	if len(in.replayPlan) > 0 {
		i := int(in.replayPlan[0])
		if in.Head(i) == nil {
			return -1 // wait for the record the plan says came next
		}
		return i
	}
	return merge.Pick[item](in, itemKey)
}

// take removes input i's head (just processed) from its ring.
func (in *inputs) take(i int) {
	it := in.rings[i].Front()
	if it.err == nil && it.ev.EventTime > in.latest[i] {
		in.latest[i] = it.ev.EventTime
	}
	in.idleSince[i], in.idle[i] = time.Time{}, false
	in.next[i] = it.msg.Offset + 1
	if len(in.replayPlan) > 0 {
		in.replayPlan = in.replayPlan[1:]
	}
	in.rings[i].Pop()
}

// syncHWM takes the latest high watermarks the readers saw.
func (in *inputs) syncHWM() {
	for i := range in.ringHWM {
		if hw := in.ringHWM[i].Load(); hw > in.hwm[i] {
			in.hwm[i] = hw
		}
	}
}

// buffered is how many records of input i wait in its ring.
func (in *inputs) buffered(i int) int {
	if in.rings[i] == nil {
		return 0
	}
	return in.rings[i].Len()
}

// allDone reports whether a bounded run reached every end offset.
func (in *inputs) allDone() bool {
	for i := range in.next {
		if in.next[i] < in.end[i] {
			return false
		}
	}
	return true
}

// backlog is how many input records are known to wait: up to the end offsets
// of a bounded run, up to the last high watermarks seen otherwise.
func (in *inputs) backlog() int64 {
	in.syncHWM()
	var n int64
	for i := range in.next {
		last := in.hwm[i]
		if in.bounded {
			last = in.end[i]
		}
		n += max(last-in.next[i], 0)
	}
	return n
}

// reader feeds one input partition into its ring, decoding in its own
// goroutine.
type reader struct {
	kafka Kafka
	codec *schemas.Codec
	log   *zap.Logger
	part  int32
}

// run reads input i of in from offset from (stop < 0: forever; else up to
// stop) until ctx ends.
func (rd reader) run(ctx context.Context, in *inputs, i int, from, stop int64) {
	topic := in.names[i]
	r := inputReader(rd.kafka, topic, rd.part, rd.log)
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		rd.log.Error("set reader offset", zap.String("topic", topic), zap.Error(err))
		return
	}
	kind := engine.Kind(i)
	ring := in.rings[i]
	for attempt := 0; ; {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rd.log.Warn("fetch failed; retrying", zap.String("topic", topic), zap.Error(err))
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
			it.err = rd.decode(ctx, kind, msg.Value, &it.ev)
		} else {
			it.err, it.ev = nil, engine.Event{}
		}
		if hw := msg.HighWaterMark; hw > in.ringHWM[i].Load() {
			in.ringHWM[i].Store(hw)
		}
		ring.Publish(in.wake)
		if stop >= 0 && msg.Offset+1 >= stop {
			return
		}
	}
}

// decode decodes value into *ev (reset first). A schema-registry outage is
// not the record's fault: retry until it answers instead of dead-lettering.
func (rd reader) decode(ctx context.Context, kind engine.Kind, value []byte, ev *engine.Event) error {
	for attempt := 0; ; attempt++ {
		*ev = engine.Event{}
		err := rd.codec.Decode(ctx, kind, value, ev)
		if err == nil || !errors.Is(err, schemas.ErrRegistry) || ctx.Err() != nil {
			return err
		}
		rd.log.Warn("schema registry unavailable; retrying", zap.Error(err))
		sleepCtx(ctx, backoff(attempt))
	}
}
