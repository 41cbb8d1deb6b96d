package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Event-time timers (spec §8): every open outage of a SIREN has two, just
// past start + 1 h (start + 1 h + 1 ms: the first instant it breaches the
// golden hour, golden_hour_breaches_90d) and at start + the RECOVERY_EXPOSED
// enter threshold. A timer fires when the task's stream time
// reaches it — before the record that moves stream time there, or a clock
// tick — not at the SIREN's next event: the SIREN is re-evaluated at the
// timer's time and a change is a decision with trigger TIMER and event_time
// the timer's time.
//
// The pending timers are a function of the states and the stream time: the
// timers of the open outages that are later than the stream time. Step keeps
// them so (an outage that starts adds its timers, one that is resolved
// removes them: a cancelled timer never fires), firing removes them, and
// the task meta persists them (AppendMeta), so a restarted or reassigned
// task fires exactly what an uninterrupted one would: a replay emits what
// the live run emitted. Order: by time, then SIREN; one SIREN's timers at
// the same time fire once.

// GoldenHourMs is the golden hour: an outage open longer is a breach
// (golden_hour_breaches_90d); its first timer fires 1 ms past it.
const GoldenHourMs = 3_600_000

// MaxTimers caps the pending timers of a task (they are in its meta, which
// is written at each commit and must stay far below a Kafka record). Above
// it the latest timer goes (latest time, then greatest SIREN) and
// BoundTimers counts it: that SIREN is then evaluated at its next event or
// day change, as without timers. 8,192 timers are about 200 KB of meta;
// pending timers are those of outages younger than the RECOVERY_EXPOSED
// threshold, so reaching it takes thousands of outages starting within a
// few hours in one partition.
const MaxTimers = 8192

// Timer is a pending timer: SIREN is re-evaluated at At (ms).
type Timer struct {
	At    int64
	SIREN string
}

func compareTimers(a, b Timer) int {
	if a.At != b.At {
		if a.At < b.At {
			return -1
		}
		return 1
	}
	return strings.Compare(a.SIREN, b.SIREN)
}

// outageTimers calls f with the times of the timers of st's open outages.
func (t *Task) outageTimers(st *State, f func(at int64)) {
	exposed := int64(t.rules.RecoveryExposed.Enter * msPerHour)
	for i := range st.open {
		s := st.open[i].start
		f(s + GoldenHourMs + 1)
		if exposed != GoldenHourMs+1 {
			f(s + exposed)
		}
	}
}

// dropTimers removes st's pending timers (before a step changes its open
// outages).
func (t *Task) dropTimers(st *State) {
	if len(t.timers) == 0 || len(st.open) == 0 {
		return
	}
	t.outageTimers(st, func(at int64) {
		if i, ok := slices.BinarySearchFunc(t.timers, Timer{At: at, SIREN: st.SIREN}, compareTimers); ok {
			t.timers = slices.Delete(t.timers, i, i+1)
		}
	})
}

// addTimers adds the pending timers of st's open outages (after a step).
func (t *Task) addTimers(st *State) {
	t.outageTimers(st, func(at int64) {
		if at <= t.streamTime {
			return // passed: the step's evaluation saw it
		}
		tm := Timer{At: at, SIREN: st.SIREN}
		i, ok := slices.BinarySearchFunc(t.timers, tm, compareTimers)
		if ok {
			return
		}
		if len(t.timers) >= MaxTimers {
			if i == len(t.timers) {
				t.bounds.add(BoundTimers, st.SIREN, 1)
				return
			}
			t.bounds.add(BoundTimers, t.timers[len(t.timers)-1].SIREN, 1)
			t.timers = t.timers[:len(t.timers)-1]
		}
		t.timers = slices.Insert(t.timers, i, tm)
	})
}

// PendingTimers is the number of pending timers.
func (t *Task) PendingTimers() int { return len(t.timers) }

// NextTimer returns the earliest pending timer due at or before ms (the
// event time of the record about to be stepped, or of a clock tick). The
// caller fires it (FireTimer) — after a day change when StartsDayAt(At) —
// and asks again until none is due, then steps the record.
func (t *Task) NextTimer(ms int64) (Timer, bool) {
	if len(t.timers) == 0 || t.timers[0].At > ms {
		return Timer{}, false
	}
	return t.timers[0], true
}

// StartsDayAt reports whether stream time ms begins a new stream day: the
// caller runs a day change (BeginDay(ms, …), Evaluate…, EndDay) first.
func (t *Task) StartsDayAt(ms int64) bool {
	return t.started && Day(ms) > t.StreamDay()
}

// FireTimer fires tm, the timer NextTimer returned, on st (tm.SIREN's
// state; nil when the SIREN is unknown: the timer is dropped). Stream time
// moves to tm.At and st is evaluated there: when its segments or offers
// change, dec holds the decision (Trigger TriggerTimer) and FireTimer
// returns true. Like Evaluate it changes only st's header (AppendHeader).
func (t *Task) FireTimer(st *State, tm Timer, dec *Decision) (bool, error) {
	if len(t.timers) == 0 || t.timers[0] != tm {
		return false, errors.New("engine: FireTimer: not the next timer")
	}
	if t.StartsDayAt(tm.At) {
		return false, errors.New("engine: FireTimer: the timer starts a day: run the day change first")
	}
	t.timers[0] = Timer{}
	t.timers = t.timers[1:]
	if len(t.timers) == 0 {
		t.timers = nil
	}
	t.advanceTo(tm.At)
	if st == nil {
		return false, nil
	}
	if st.SIREN != tm.SIREN {
		return false, errors.New("engine: FireTimer: state of another SIREN")
	}
	if !t.evaluate(st, dec) {
		return false, nil
	}
	dec.Trigger = TriggerTimer
	return true, nil
}

// AdvanceTo moves stream time to ms without an event: a clock tick of a
// quiet partition. The caller fires the timers due at ms first and runs the
// day change when StartsDayAt(ms); ms before stream time changes nothing.
func (t *Task) AdvanceTo(ms int64) error {
	if t.StartsDayAt(ms) {
		return errors.New("engine: AdvanceTo: a new day: run the day change first")
	}
	if tm, ok := t.NextTimer(ms); ok {
		return fmt.Errorf("engine: AdvanceTo: a timer of %s is due at %d: fire it first", tm.SIREN, tm.At)
	}
	t.advanceTo(ms)
	return nil
}

// appendTimers appends the pending timers to a task meta.
func appendTimers(dst []byte, timers []Timer) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(timers)))
	var prev int64
	for _, tm := range timers {
		dst = binary.AppendVarint(dst, tm.At-prev)
		dst = appendStr(dst, tm.SIREN)
		prev = tm.At
	}
	return dst
}

// timers reads appendTimers' encoding.
func (r *reader) timers() []Timer {
	n := r.count(2)
	if n > MaxTimers {
		r.fail(errors.New("too many timers"))
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]Timer, 0, n)
	var at int64
	for i := 0; i < n && r.err == nil; i++ {
		at += r.varint()
		tm := Timer{At: at, SIREN: r.str()}
		if i > 0 && compareTimers(out[i-1], tm) >= 0 {
			r.fail(errors.New("timers not sorted"))
		}
		out = append(out, tm)
	}
	return out
}
