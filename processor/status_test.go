package processor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func newTestStatus(cfg StatusConfig) (*Status, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	cfg.Logger = zap.New(core)
	return NewStatus(cfg), logs
}

// TestCaughtUpIsLoggedOncePerCatchUp: a partition logs "caught up" when it
// first is, not at every snapshot, and again only after falling behind.
func TestCaughtUpIsLoggedOncePerCatchUp(t *testing.T) {
	s, logs := newTestStatus(StatusConfig{Every: -1})
	t0 := time.Unix(1_800_000_000, 0)
	tp := TaskProgress{Partition: 3, Loaded: true, Consumed: 50_000, Lag: 40_000}
	step := func(sec int) { s.observe(t0.Add(time.Duration(sec)*time.Second), []int32{3}, []TaskProgress{tp}) }
	step(0)
	tp.Consumed, tp.Lag, tp.CaughtUp = 90_000, 0, true
	step(1)
	tp.Consumed, tp.CaughtUp = 90_010, false // a record arrives: not caught up for an instant
	step(2)
	tp.CaughtUp = true
	step(3)
	if n := logs.FilterMessageSnippet("caught up").Len(); n != 1 {
		t.Fatalf("%d caught-up lines after one catch-up, want 1: %v", n, logs.All())
	}
	e := logs.FilterMessageSnippet("caught up").All()[0]
	if f := e.ContextMap(); fmt.Sprint(f["partition"]) != "3" || fmt.Sprint(f["records"]) != "90000" {
		t.Errorf("caught-up line fields %v: want partition 3 and the 90000 records it took", f)
	}
	tp.Lag, tp.CaughtUp = 25_000, false // falls behind
	step(4)
	tp.Lag, tp.CaughtUp = 0, true
	step(5)
	if n := logs.FilterMessageSnippet("caught up").Len(); n != 2 {
		t.Fatalf("%d caught-up lines after falling behind and catching up again, want 2", n)
	}
}

// TestStatusLineEveryInterval: one status line per interval with
// records/s, lag and dead letters/s over that interval.
func TestStatusLineEveryInterval(t *testing.T) {
	s, logs := newTestStatus(StatusConfig{Every: 10 * time.Second})
	t0 := time.Unix(1_800_000_000, 0)
	tps := []TaskProgress{{Partition: 0, Loaded: true}, {Partition: 1, Loaded: true}}
	for sec := 0; sec <= 20; sec++ {
		tps[0].Consumed += 100
		tps[1].Consumed += 50
		tps[1].DeadLettered += 5
		tps[0].Lag, tps[1].Lag = 7, 3
		s.observe(t0.Add(time.Duration(sec)*time.Second), []int32{0, 1}, tps)
	}
	lines := logs.FilterMessage("status").All()
	if len(lines) != 2 {
		t.Fatalf("%d status lines in 20 s at a 10 s interval, want 2", len(lines))
	}
	f := lines[1].ContextMap()
	if fmt.Sprint(f["records_per_s"], f["dead_letters_per_s"], f["lag"], f["partitions"]) != "150 5 10 2" {
		t.Errorf("status line %v: want 150 records/s, 5 dead letters/s, lag 10, 2 partitions", f)
	}
}

// TestDeadLetterSpikeWarnsOnceWithReasonAndHint: the example of issue 21 —
// 11,781 of 11,994 records wrong_schema without a registry — gives one WARN
// naming the reason, the counts and --schema-registry; more of the same
// within a minute gives no second WARN.
func TestDeadLetterSpikeWarnsOnceWithReasonAndHint(t *testing.T) {
	s, logs := newTestStatus(StatusConfig{Every: -1})
	m := s.Metrics(nil)
	t0 := time.Unix(1_800_000_000, 0)
	tp := TaskProgress{Partition: 0, Loaded: true}
	s.observe(t0, []int32{0}, []TaskProgress{tp})
	for range 11_781 {
		m.DeadLettered("usage", 0, "wrong_schema")
	}
	for range 2 {
		m.DeadLettered("usage", 0, "late")
	}
	tp.Consumed, tp.DeadLettered = 11_994, 11_783
	s.observe(t0.Add(time.Second), []int32{0}, []TaskProgress{tp})
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 {
		t.Fatalf("%d WARNs after a spike, want 1: %v", len(warns), logs.All())
	}
	msg := warns[0].Message
	for _, want := range []string{"11783 of 11994 records", "11781 of them wrong_schema", "no schema registry", "--schema-registry"} {
		if !strings.Contains(msg, want) {
			t.Errorf("spike WARN %q lacks %q", msg, want)
		}
	}
	for i := 2; i < 50; i++ { // the spike goes on: rate-limited
		for range 500 {
			m.DeadLettered("usage", 0, "wrong_schema")
		}
		tp.Consumed, tp.DeadLettered = tp.Consumed+500, tp.DeadLettered+500
		s.observe(t0.Add(time.Duration(i)*time.Second), []int32{0}, []TaskProgress{tp})
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Fatalf("%d WARNs within a minute of the first, want 1", n)
	}
	for i := 50; i < 75; i++ {
		for range 500 {
			m.DeadLettered("usage", 0, "wrong_schema")
		}
		tp.Consumed, tp.DeadLettered = tp.Consumed+500, tp.DeadLettered+500
		s.observe(t0.Add(time.Duration(i)*time.Second), []int32{0}, []TaskProgress{tp})
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 2 {
		t.Fatalf("%d WARNs after more than a minute of spike, want 2", n)
	}
}

// TestFewDeadLettersAreNoSpike: a trickle of bad records (under 10 % or
// under 100) logs no WARN.
func TestFewDeadLettersAreNoSpike(t *testing.T) {
	s, logs := newTestStatus(StatusConfig{Every: -1, Registry: true})
	m := s.Metrics(nil)
	t0 := time.Unix(1_800_000_000, 0)
	tp := TaskProgress{Partition: 0, Loaded: true}
	for i := range 120 {
		for range 50 {
			m.DeadLettered("usage", 0, "invalid_siren")
		}
		tp.Consumed, tp.DeadLettered = tp.Consumed+1000, tp.DeadLettered+50 // 5 %
		s.observe(t0.Add(time.Duration(i)*time.Second), []int32{0}, []TaskProgress{tp})
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Fatalf("%d WARNs for 5 %% dead letters, want none: %v", n, logs.All())
	}
}

// TestStatusMetricsKeepTheNoOpBaselineSkip: wrapping the no-op Metrics
// must not turn on the baseline scan of every loaded partition.
func TestStatusMetricsKeepTheNoOpBaselineSkip(t *testing.T) {
	s := NewStatus(StatusConfig{})
	if wantsBaseline(s.Metrics(nil)) {
		t.Error("the wrapped no-op Metrics asks for segment baselines")
	}
	if !wantsBaseline(s.Metrics(&countingMetrics{})) {
		t.Error("a wrapped real Metrics gets no segment baselines")
	}
}

type countingMetrics struct{ nopMetrics }
