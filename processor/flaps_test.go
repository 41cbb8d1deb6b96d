package processor

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
)

// flapMetrics records Flap calls.
type flapMetrics struct {
	nopMetrics
	flaps map[string]int
}

func (m *flapMetrics) Flap(segment string) { m.flaps[segment]++ }

type discard struct{}

func (discard) consumed(string)                                  {}
func (discard) processed(string)                                 {}
func (discard) skipped()                                         {}
func (discard) deadLetter(string, *kafka.Message, string, error) {}
func (discard) change(*engine.Decision)                          {}

// TestObservedCountsFlaps: sirenstream_segment_flaps_total counts an entry
// within 7 days of the SIREN leaving the segment, from the emitted changes.
func TestObservedCountsFlaps(t *testing.T) {
	m := &flapMetrics{flaps: map[string]int{}}
	o := &observed{next: discard{}, metrics: m, progress: &progress{}}
	day := func(d int64) int64 { return 20_000*engine.DayMs + d*engine.DayMs }
	for _, d := range []engine.Decision{
		{SIREN: "a", EventTime: day(0), Added: engine.HiddenGrowth},
		{SIREN: "a", EventTime: day(2), Removed: engine.HiddenGrowth},
		{SIREN: "a", EventTime: day(5), Added: engine.HiddenGrowth}, // flap
		{SIREN: "b", EventTime: day(6), Added: engine.DataHungry},
		{SIREN: "a", EventTime: day(6), Removed: engine.HiddenGrowth},
		{SIREN: "a", EventTime: day(20), Added: engine.HiddenGrowth}, // 14 days later: not
	} {
		o.change(&d)
	}
	if m.flaps["HIDDEN_GROWTH"] != 1 || len(m.flaps) != 1 {
		t.Fatalf("flaps %v, want HIDDEN_GROWTH 1", m.flaps)
	}
}
