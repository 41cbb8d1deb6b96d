package processor

import (
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
)

// sink receives what handling a record produces. The collector turns it
// into output messages; observed wraps a sink with the metrics and the
// task's progress counts, so the handler knows about neither.
type sink interface {
	// consumed: a record was taken from input topic (before anything else).
	consumed(topic string)
	// processed: the record was applied to the state.
	processed(topic string)
	// skipped: outside a replay's event-time bounds.
	skipped()
	// deadLetter: the record goes to the dead-letter topic.
	deadLetter(topic string, msg *kafka.Message, reason string, cause error)
	// change: a segment change to emit (d is reused after the call).
	change(d *engine.Decision)
}

// observed counts what passes through to next in Metrics and progress.
type observed struct {
	next      sink
	metrics   Metrics
	progress  *progress
	partition int32

	// log, when set, gets a WARN when a SIREN hits a bound, at most once
	// per boundWarnEvery per bound (nil: no log).
	log *zap.Logger
	// warned: when each bound was last logged, and the hits since.
	warned [engine.NumBounds]time.Time
	unwarn [engine.NumBounds]uint64
	// lateWarned: when a late dead letter was last logged, and the late
	// ones since (WARN at most once per boundWarnEvery).
	lateWarned time.Time
	lateSince  int64

	// flaps remembers the partition's recent exits (nil until the first
	// change). In memory only: after a restart, a re-entry whose exit was
	// before it is not counted.
	flaps *engine.Flaps
}

// boundWarnEvery rate-limits the WARN of a bound hit, per partition and
// bound: a hot SIREN hits its dedup bound every few hundred records.
const boundWarnEvery = time.Minute

func (o *observed) consumed(topic string) {
	o.metrics.Consumed(topic, o.partition)
	o.progress.update(func(p *TaskProgress) { p.Consumed++ })
	o.next.consumed(topic)
}

func (o *observed) processed(topic string) {
	o.metrics.Processed(topic, o.partition)
	o.progress.update(func(p *TaskProgress) { p.Processed++ })
	o.next.processed(topic)
}

func (o *observed) skipped() {
	o.progress.update(func(p *TaskProgress) { p.Skipped++ })
	o.next.skipped()
}

func (o *observed) deadLetter(topic string, msg *kafka.Message, reason string, cause error) {
	if reason == "late" && o.log != nil {
		o.lateSince++
		if time.Since(o.lateWarned) >= boundWarnEvery {
			o.log.Warn("records older than what they update is kept are dead-lettered as late",
				zap.String("topic", topic), zap.Int64("offset", msg.Offset), zap.Int64("late_since_last_warning", o.lateSince),
				zap.Error(cause))
			o.lateWarned, o.lateSince = time.Now(), 0
		}
	}
	o.metrics.DeadLettered(topic, o.partition, reason)
	o.progress.update(func(p *TaskProgress) { p.DeadLettered++ })
	o.next.deadLetter(topic, msg, reason, cause)
}

func (o *observed) change(d *engine.Decision) {
	o.next.change(d)
	for _, s := range d.Added.Names() {
		o.metrics.Transition(s, true)
	}
	for _, s := range d.Removed.Names() {
		o.metrics.Transition(s, false)
	}
	if d.Added|d.Removed != 0 {
		if o.flaps == nil {
			o.flaps = engine.NewFlaps()
		}
		for _, s := range o.flaps.Observe(d.SIREN, d.EventTime, d.Added, d.Removed).Names() {
			o.metrics.Flap(s)
		}
	}
	o.metrics.SegmentChange(o.partition, d)
	o.progress.update(func(p *TaskProgress) { p.Changes++ })
}

// boundHit reports n hits of bound b, the latest by siren while handling
// the record at topic/offset (a boundSink): the metric always, a WARN at
// most once per boundWarnEvery per bound with the hits since the last one.
// Called only when a bound was hit (the handler compares the engine's
// counter per record).
func (o *observed) boundHit(b engine.Bound, siren string, n uint64, topic string, offset int64) {
	o.metrics.BoundHit(o.partition, b.String(), n)
	if o.log == nil {
		return
	}
	o.unwarn[b] += n
	now := time.Now()
	if !o.warned[b].IsZero() && now.Sub(o.warned[b]) < boundWarnEvery {
		return
	}
	o.log.Warn("a SIREN hit a per-SIREN state bound: entries of its state are dropped or approximated (README: Known behaviour); logged at most once a minute per bound",
		zap.String("bound", b.String()), zap.String("siren", siren), zap.Uint64("hits_since_last_warning", o.unwarn[b]),
		zap.String("topic", topic), zap.Int64("offset", offset)) // the logger names the partition
	o.warned[b], o.unwarn[b] = now, 0
}
