package processor

// Backfills with warm windows (replay --emit-from, ReplayOptions.EmitFrom).
// The replay reads the whole history, so windows, percentile snapshots and
// each SIREN's seq are exactly those of a full replay, and withholds what
// happens before T: a segment change whose event_time (the stream time of
// the change) is before T, and a dead letter whose record's event_time is
// before T. What it writes is therefore byte for byte the part of a full
// replay's output from T on — with the seq and event_id the live topic has
// when the live run merged the same order. A record that does not decode
// has no event time: its record timestamp stands in (the task's stream time
// when it has none).

import (
	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
)

// emitFrom is a sink between the observed counters and the collector that
// withholds outputs before fromMs (counted in TaskProgress.Withheld*).
type emitFrom struct {
	next     sink
	fromMs   int64
	eng      *engine.Task
	in       *inputs
	progress *progress
}

// withholdBefore installs an emitFrom in front of the task's collector.
func (t *task) withholdBefore(ms int64) {
	o := t.out.(*observed)
	o.next = &emitFrom{next: o.next, fromMs: ms, eng: t.eng, in: &t.in, progress: &t.progress}
}

func (e *emitFrom) consumed(topic string)  { e.next.consumed(topic) }
func (e *emitFrom) processed(topic string) { e.next.processed(topic) }
func (e *emitFrom) skipped()               { e.next.skipped() }

func (e *emitFrom) change(d *engine.Decision) {
	if d.EventTime < e.fromMs {
		e.progress.update(func(p *TaskProgress) { p.WithheldChanges++ })
		return
	}
	e.next.change(d)
}

func (e *emitFrom) deadLetter(topic string, msg *kafka.Message, reason string, cause error) {
	if e.eventTime(msg) < e.fromMs {
		e.progress.update(func(p *TaskProgress) { p.WithheldDeadLetters++ })
		return
	}
	e.next.deadLetter(topic, msg, reason, cause)
}

// eventTime is the event time of the record msg is. The handler handles
// the head record of an input in place, so msg is the message of one
// input's head: its event time when it decoded; else the record timestamp,
// else the stream time.
func (e *emitFrom) eventTime(msg *kafka.Message) int64 {
	for _, r := range e.in.rings {
		if r == nil || r.Len() == 0 {
			continue
		}
		if it := r.Front(); &it.msg == msg && it.err == nil {
			return it.ev.EventTime
		}
	}
	if !msg.Time.IsZero() {
		return msg.Time.UnixMilli()
	}
	return e.eng.StreamTime()
}
