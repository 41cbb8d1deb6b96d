package processor

import "time"

// Metrics receives the processor's counters and gauges. The ops layer
// implements it with Prometheus; the default does nothing. Implementations
// must be safe for concurrent use (one call site per partition task).
type Metrics interface {
	Consumed(topic string, partition int32)
	Processed(topic string, partition int32)
	DeadLettered(topic string, partition int32, reason string)
	Transition(segment string, entered bool)
	StreamTime(partition int32, ms int64)
	Lag(topic string, partition int32, lag int64)
	Commit(partition int32, d time.Duration, states int)
	Owned(partitions []int32)
}

type nopMetrics struct{}

func (nopMetrics) Consumed(string, int32)             {}
func (nopMetrics) Processed(string, int32)            {}
func (nopMetrics) DeadLettered(string, int32, string) {}
func (nopMetrics) Transition(string, bool)            {}
func (nopMetrics) StreamTime(int32, int64)            {}
func (nopMetrics) Lag(string, int32, int64)           {}
func (nopMetrics) Commit(int32, time.Duration, int)   {}
func (nopMetrics) Owned([]int32)                      {}
