package processor

import (
	"time"

	"github.com/sirenstream/sirenstream/engine"
)

// Metrics receives the processor's counters and gauges. The ops layer
// implements it with Prometheus; the default does nothing. Implementations
// must be safe for concurrent use (one call site per partition task).
type Metrics interface {
	Consumed(topic string, partition int32)
	Processed(topic string, partition int32)
	DeadLettered(topic string, partition int32, reason string)
	Transition(segment string, entered bool)
	// Flap reports an entry into segment within engine.FlapWindowMs (7
	// days) of event time after the same SIREN left it.
	Flap(segment string)
	StreamTime(partition int32, ms int64)
	Lag(topic string, partition int32, lag int64)
	Commit(partition int32, d time.Duration, states int)
	Owned(partitions []int32)
	// RestoreProgress reports a changelog restore of a partition: records
	// read so far of total.
	RestoreProgress(partition int32, read, total int64)
	// Loaded reports that a partition's task has loaded its state (checkpoint
	// and restore) and is about to process: segments counts the SIRENs per
	// segment label in that state (nil when it could not be scanned). Called
	// once per task start, before any SegmentChange of the task. Cost: one
	// scan of the partition's state (skipped with the no-op Metrics).
	Loaded(partition int32, segments map[string]int64)
	// SegmentChange reports a segment change emitted by a partition's task.
	// d is reused by the task after the call returns: copy what you keep.
	SegmentChange(partition int32, d *engine.Decision)
	// BoundHit reports n hits of a per-SIREN bound (engine.Bound names:
	// "dedup", "open_outages", ...) in a partition's task: entries of a
	// SIREN's state dropped or approximated. Called only when it happens.
	BoundHit(partition int32, bound string, n uint64)
	// Repair reports a repair of a partition (records that arrived after
	// the merge went past them, re-processed in event-time order) and the
	// corrections it emitted.
	Repair(partition int32, corrections int)
	// InputLag reports how far an input is behind the task's stream time:
	// stream time minus the latest event time taken from it, in seconds.
	InputLag(topic string, partition int32, seconds float64)
	// Outcome reports a closed eligibility written to offer-outcomes (and
	// the uplift repartition topic) by a partition's task: its offer, its
	// holdout group, and whether it converted. Counts what this instance
	// wrote (a batch re-run after a crash counts again); the uplift table
	// is the deduplicated figure.
	Outcome(partition int32, offer string, control, converted bool)
}

type nopMetrics struct{}

func (nopMetrics) Consumed(string, int32)                {}
func (nopMetrics) Processed(string, int32)               {}
func (nopMetrics) DeadLettered(string, int32, string)    {}
func (nopMetrics) Transition(string, bool)               {}
func (nopMetrics) Flap(string)                           {}
func (nopMetrics) StreamTime(int32, int64)               {}
func (nopMetrics) Lag(string, int32, int64)              {}
func (nopMetrics) Commit(int32, time.Duration, int)      {}
func (nopMetrics) Owned([]int32)                         {}
func (nopMetrics) RestoreProgress(int32, int64, int64)   {}
func (nopMetrics) Loaded(int32, map[string]int64)        {}
func (nopMetrics) SegmentChange(int32, *engine.Decision) {}
func (nopMetrics) BoundHit(int32, string, uint64)        {}
func (nopMetrics) Repair(int32, int)                     {}
func (nopMetrics) InputLag(string, int32, float64)       {}
func (nopMetrics) Outcome(int32, string, bool, bool)     {}
