package engine

import (
	"reflect"
	"testing"
)

const minute = 60_000

// timerRun feeds an outage of s starting at d0 10:00 and events of another
// SIREN (keeping stream time moving) every half hour until 16:00; restartAt
// > 0 restarts the memory (a process restart from the encodings) before
// the event at that time.
func timerRun(t *testing.T, restartAt int64) (*harness, string) {
	h := newHarness(t, nil)
	s, other := mkSIREN(501), mkSIREN(502)
	h.must(outageStartEv(s, "o1", at(d0, 10), "75001"))
	for ms := at(d0, 10) + 30*minute; ms <= at(d0, 16); ms += 30 * minute {
		if ms == restartAt {
			if err := h.mem.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		h.must(usageEv(other, ms, "13001", 1e6, 1))
	}
	return h, s
}

// TestTimersFireAtTheirStreamTimeOnce: an open outage with no other event
// of its SIREN is re-evaluated when stream time passes start + 1 h (the
// golden hour: GOLDEN_HOUR_REPAIR offered) and start + 4 h (RECOVERY_EXPOSED),
// each decision at the timer's time with trigger TIMER, each once.
func TestTimersFireAtTheirStreamTimeOnce(t *testing.T) {
	h, s := timerRun(t, 0)
	d := h.take(s)
	if len(d) != 2 {
		t.Fatalf("%d decisions, want 2: %+v", len(d), d)
	}
	golden, exposed := d[0], d[1]
	if golden.Trigger != TriggerTimer || golden.EventTime != at(d0, 11)+1 || golden.Segments != 0 ||
		!reflect.DeepEqual(golden.OffersAdded, []string{OfferGoldenHourRepair}) || golden.Metrics.GoldenHourBreaches90d != 1 {
		t.Fatalf("golden hour decision %+v", golden)
	}
	if exposed.Trigger != TriggerTimer || exposed.EventTime != at(d0, 14) || exposed.Added != RecoveryExposed ||
		exposed.Metrics.RecoveryExposureHours90d != 4 || exposed.Seq != 2 {
		t.Fatalf("threshold decision %+v", exposed)
	}
	if n := h.task().PendingTimers(); n != 0 {
		t.Fatalf("%d timers still pending", n)
	}
}

// TestTimersSurviveARestart: restarting between the outage and its timers
// (task meta and states encoded and decoded) fires the same decisions.
func TestTimersSurviveARestart(t *testing.T) {
	h0, s := timerRun(t, 0)
	want := h0.take(s)
	for _, restart := range []int64{at(d0, 10) + 30*minute, at(d0, 12), at(d0, 14) + 30*minute} {
		h, _ := timerRun(t, restart)
		if got := h.take(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("restart at %d:\n got %+v\nwant %+v", restart, got, want)
		}
	}
}

// TestResolvedOutageCancelsItsTimers: an outage resolved within the golden
// hour fires nothing, at its times or later.
func TestResolvedOutageCancelsItsTimers(t *testing.T) {
	h := newHarness(t, nil)
	s, other := mkSIREN(503), mkSIREN(504)
	h.must(outageStartEv(s, "o1", at(d0, 10), "75001"))
	if n := h.task().PendingTimers(); n != 2 {
		t.Fatalf("%d timers pending, want 2", n)
	}
	h.must(outageResolvedEv(s, "o1", at(d0, 10)+40*minute, -1, "75001"))
	if n := h.task().PendingTimers(); n != 0 {
		t.Fatalf("%d timers pending after the resolution, want 0", n)
	}
	h.must(usageEv(other, at(d0, 20), "13001", 1e6, 1))
	if d := h.take(s); len(d) != 0 {
		t.Fatalf("decisions %+v", d)
	}
}

// TestTimerAcrossMidnightFollowsTheDayChange: a timer of the next day
// starts that day's change at the timer's own time, before the record that
// moved stream time past it: the day change, which evaluates every SIREN at
// that time, is what enters RECOVERY_EXPOSED (the timer then finds nothing
// new), at exactly start + 4 h.
func TestTimerAcrossMidnightFollowsTheDayChange(t *testing.T) {
	h := newHarness(t, noGoldenHourOffer())
	s, other := mkSIREN(505), mkSIREN(506)
	h.must(outageStartEv(s, "o1", at(d0, 22), "75001"))
	h.must(usageEv(other, at(d0+1, 5), "13001", 1e6, 1))
	d := h.take(s)
	if len(d) != 1 || d[0].Trigger != TriggerDayChange || d[0].EventTime != at(d0+1, 2) || d[0].Added != RecoveryExposed {
		t.Fatalf("decisions %+v", d)
	}
	if h.task().StreamTime() != at(d0+1, 5) {
		t.Fatalf("stream time %d", h.task().StreamTime())
	}
}

// TestTickMovesAQuietPartition: a clock tick (no SIREN) fires the timers
// due and changes the day, as a record would.
func TestTickMovesAQuietPartition(t *testing.T) {
	h := newHarness(t, noGoldenHourOffer())
	s := mkSIREN(507)
	h.must(outageStartEv(s, "o1", at(d0, 9), "75001"), outageResolvedEv(s, "o1", at(d0, 15), -1, "75001"))
	h.take(s)
	h.mem.Tick(at(d0+90, 6))
	d := h.take(s)
	if len(d) != 1 || d[0].Trigger != TriggerDayChange || d[0].Removed != RecoveryExposed {
		t.Fatalf("decisions %+v", d)
	}
	if h.task().StreamTime() != at(d0+90, 6) {
		t.Fatalf("stream time %d", h.task().StreamTime())
	}
}

// TestTimersAreBounded: past MaxTimers pending timers the latest go,
// counted as BoundTimers.
func TestTimersAreBounded(t *testing.T) {
	task := NewTask(nil, Config{})
	var dec Decision
	n := MaxTimers/2 + 10
	for i := range n {
		st := NewState(mkSIREN(1000 + i))
		ev := outageStartEv(st.SIREN, "o", at(d0, 1)+int64(i), "75001")
		ev.EventID = st.SIREN
		if _, err := task.Step(st, &ev, &dec); err != nil {
			t.Fatal(err)
		}
	}
	if task.PendingTimers() != MaxTimers || task.Bounds().Hits[BoundTimers] != 2*uint64(n)-MaxTimers {
		t.Fatalf("%d timers, %d bound hits", task.PendingTimers(), task.Bounds().Hits[BoundTimers])
	}
	meta := task.AppendMeta(nil)
	back := NewTask(nil, Config{})
	if err := back.UnmarshalMeta(meta); err != nil || back.PendingTimers() != MaxTimers {
		t.Fatalf("meta round trip: %v, %d timers", err, back.PendingTimers())
	}
	if len(meta) > 300_000 {
		t.Fatalf("meta of %d bytes with MaxTimers timers", len(meta))
	}
}

// TestRolloutSchedulesTheNewThreshold: a rules rollout that lowers the
// RECOVERY_EXPOSED threshold re-times the open outages' timers: the outage
// enters at start + the new threshold.
func TestRolloutSchedulesTheNewThreshold(t *testing.T) {
	h := newHarness(t, noGoldenHourOffer())
	s, other := mkSIREN(508), mkSIREN(509)
	h.must(outageStartEv(s, "o1", at(d0, 10), "75001"), usageEv(other, at(d0, 11), "13001", 1e6, 1))
	v2 := noGoldenHourOffer()
	v2.Version, v2.RecoveryExposed.Enter, v2.RecoveryExposed.Exit = "v2", 2, 1
	if rollout, err := h.mem.Rollout(v2); err != nil || !rollout {
		t.Fatalf("Rollout = %v, %v", rollout, err)
	}
	h.must(usageEv(other, at(d0, 13), "13001", 1e6, 1))
	d := h.take(s)
	if len(d) != 1 || d[0].Trigger != TriggerTimer || d[0].EventTime != at(d0, 12) || d[0].Added != RecoveryExposed {
		t.Fatalf("decisions %+v", d)
	}
}
