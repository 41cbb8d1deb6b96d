package processor

import (
	"github.com/segmentio/kafka-go"

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
}

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
	o.metrics.SegmentChange(o.partition, d)
	o.progress.update(func(p *TaskProgress) { p.Changes++ })
}
