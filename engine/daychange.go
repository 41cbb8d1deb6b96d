package engine

// A day change (spec §4) re-evaluates every SIREN of the partition when
// stream time enters a new UTC day, so windows slide without new events. It
// is three calls, made before Step of the event that starts the day
// (StartsDay):
//
//	stats, err := task.BeginDay(ev.EventTime, FromStates(each)) // pass 1: percentile snapshot
//	for every state in SIREN order: if task.Evaluate(st, &dec) { emit(dec) } // pass 2
//	task.EndDay()
//
// Pass 2 may be split across commits and resumed after a restart from the
// last evaluated SIREN (Evaluate is deterministic given the task meta and
// the states); EndDay closes it either way.

// StartsDay reports whether ev begins a new stream day: the caller must run
// a day change (BeginDay, then Evaluate on every state in SIREN order, then
// EndDay) before Step(ev). It is false before the first event: no SIREN
// exists yet, the first Step sets the stream time.
func (t *Task) StartsDay(ev *Event) bool {
	return t.started && Day(ev.EventTime) > t.StreamDay()
}

// Population is pass 1 of a day change: the intensities of the partition's
// states at the new day. FromStates and FromEncoded make one.
type Population interface {
	// appendIntensities appends the digital_intensity at t's stream day of
	// every scored state to dst; source names where they came from.
	appendIntensities(t *Task, dst []float64) (vals []float64, source string, err error)
}

// FromStates is a Population read from decoded states: each calls visit on
// every state of the partition, in any order, and returns visit's first
// error (visit itself never fails). Intensity reads leave the states'
// encodings unchanged (they warm a runtime memo that pass 2 reuses).
func FromStates(each func(visit func(*State) error) error) Population {
	return statesPopulation(each)
}

// FromEncoded is a Population read straight from encoded states (the bytes
// of State.AppendBinary), without decoding them: the scan of a store that
// does not fit in memory. scan calls visit on every stored state, in any
// order, and returns visit's first error: a state that does not decode,
// returned as is — the caller adds its coordinates. Allocates nothing per
// state.
func FromEncoded(scan func(visit func(siren string, encoded []byte) error) error) Population {
	return encodedPopulation(scan)
}

type statesPopulation func(visit func(*State) error) error

func (each statesPopulation) appendIntensities(t *Task, dst []float64) ([]float64, string, error) {
	err := each(func(st *State) error {
		if v, ok := t.intensity(st); ok {
			dst = append(dst, v)
		}
		return nil
	})
	return dst, SourceStates, err
}

type encodedPopulation func(visit func(siren string, encoded []byte) error) error

func (scan encodedPopulation) appendIntensities(t *Task, dst []float64) ([]float64, string, error) {
	err := scan(func(_ string, b []byte) error {
		v, ok, err := t.intensityEncoded(b)
		if ok {
			dst = append(dst, v)
		}
		return err
	})
	return dst, SourceEncoded, err
}

// DayStats describes pass 1 of a day change.
type DayStats struct {
	// Scored is the population of the percentile snapshot: the states with a
	// non-null digital_intensity.
	Scored int
	// Source is where the intensities came from: SourceKept, SourceStates or
	// SourceEncoded.
	Source string
}

// DayStats.Source values.
const (
	SourceKept    = "kept set" // the next-day set kept since the last day change (KeepNextDay)
	SourceStates  = "states"   // FromStates
	SourceEncoded = "encoded"  // FromEncoded
)

// BeginDay moves stream time to ms (a later day: StartsDay) and builds the
// day's percentile snapshot. When the task kept a next-day set valid for
// this day (KeepNextDay) it is used and pop is not called; otherwise pop is.
// On error (pop's) stream time has moved but the task has no snapshot: the
// caller must not go on (a retry calls BeginDay again with the same ms).
// While keeping, it starts the set that pass 2 builds for the next day
// change (see EndDay). Cost: pass 1 (one read of every state unless kept)
// plus a sort of the values; the value buffer is reused between days.
func (t *Task) BeginDay(ms int64, pop Population) (DayStats, error) {
	t.advanceTo(ms)
	vals, source := t.pass1[:0], SourceKept
	if k := t.kept; k != nil && k.day == t.StreamDay() {
		vals = k.appendValues(vals)
	} else {
		var err error
		if vals, source, err = pop.appendIntensities(t, vals); err != nil {
			t.pass1 = vals[:0]
			return DayStats{}, err
		}
	}
	t.pass1 = vals[:0]
	t.kept, t.building = nil, nil
	if t.keep {
		t.building = newNextIntensities(t.StreamDay() + 1)
	}
	t.setSnapshot(vals)
	return DayStats{Scored: len(vals), Source: source}, nil
}

// EndDay marks pass 2 finished: a next-day set built during this day's
// pass 2 becomes the kept set of the next day change. A pass 2 resumed
// after a restart (no BeginDay in this process) built none and installs
// nothing: the next day change runs pass 1.
func (t *Task) EndDay() {
	if t.building != nil {
		t.kept, t.building = t.building, nil
	}
}

// KeepNextDay asks the task to keep the next day's intensities (on) or not.
// A caller turns it on when its partition does not fit in memory, so that
// pass 1 of the next day change does not scan the store: from the next
// BeginDay, pass 2's Evaluate records each state's intensity at the next
// day, EndDay installs the set, and while a kept set exists Step keeps it
// current (the state's next-day intensity out before the step, in after; a
// new empty state has none). Cost while keeping: one scan of a state's usage
// days per Evaluate and two per Step, and a map of the distinct values.
// Off drops a set being built (pass 2 in progress installs nothing); a set
// already kept still serves the next day change if it is valid for it.
func (t *Task) KeepNextDay(on bool) {
	t.keep = on
	if !on {
		t.building = nil
	}
}

// advanceTo moves stream time forward to ms (never back). When the day
// changes the percentile snapshot is dropped until setSnapshot.
func (t *Task) advanceTo(ms int64) {
	if t.started && ms <= t.streamTime {
		return
	}
	newDay := !t.started || Day(ms) != t.StreamDay()
	if !t.started {
		t.firstDay, t.hasFirstDay = Day(ms), true
	}
	t.started = true
	t.streamTime = ms
	if newDay {
		t.snapValid = false
		t.snapN = 0
		t.snap = t.snap[:0]
	}
}

// intensity returns st's digital_intensity at the current stream day (ok
// false: null). It changes nothing encoded (it remembers the day's traffic
// sums for pass 2); allocates nothing.
func (t *Task) intensity(st *State) (float64, bool) {
	t30, _, sims := st.traffic(t.windowEnd(t.StreamDay()))
	v, _, ok := st.intensity(t30, sims)
	return v, ok && t.scored(t30)
}

// intensityNextDay returns st's digital_intensity at the day after the
// stream day: the value pass 1 of the next day change computes for st if
// that change is to the next day and no other event reaches st before it.
// It changes nothing, not even the traffic memo (a scan of the usage
// buckets).
func (t *Task) intensityNextDay(st *State) (float64, bool) {
	t30, _, sims := st.trafficScan(t.windowEnd(t.StreamDay() + 1))
	v, _, ok := st.intensity(t30, sims)
	return v, ok && t.scored(t30)
}
