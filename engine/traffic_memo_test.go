package engine

import (
	"bytes"
	"math/rand"
	"reflect"
	"testing"
)

// trafficOf is traffic's result as one comparable value.
type trafficOf struct {
	t30, prev int64
	maxSims   int32
}

func memoTraffic(s *State, d int32) trafficOf {
	t30, prev, sims := s.traffic(d)
	return trafficOf{t30, prev, sims}
}

func scanTraffic(s *State, d int32) trafficOf {
	t30, prev, sims := s.trafficScan(d)
	return trafficOf{t30, prev, sims}
}

func TestTrafficMemoIsUsedForTheSameDayOnly(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(21)
	h.must(usageEv(s, at(d0-40, 1), "A", 3e9, 2), usageEv(s, at(d0, 1), "A", 5e9, 4))
	st := h.state(s)
	want := trafficOf{5e9, 3e9, 4}
	if got := memoTraffic(st, d0); got != want {
		t.Fatalf("traffic(d0) = %+v, want %+v", got, want)
	}
	if !st.tmemo.ok || st.tmemo.day != d0 {
		t.Fatalf("no memo after traffic(d0): %+v", st.tmemo)
	}
	// A hit returns the memo without scanning (poisoned to see it).
	st.tmemo.t30 = 42
	if got := memoTraffic(st, d0); got.t30 != 42 {
		t.Fatalf("traffic(d0) did not use the memo: %+v", got)
	}
	// Another day is computed, not taken from the memo of d0.
	st.tmemo.t30 = 42
	if got, want := memoTraffic(st, d0+31), scanTraffic(st, d0+31); got != want || got.t30 != 0 || got.prev != 5e9 {
		t.Fatalf("traffic(d0+31) = %+v, want %+v", got, want)
	}
	// The zero State (new or decoded) holds no memo.
	dec, err := UnmarshalState(s, st.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	if dec.tmemo != (trafficMemo{}) || NewState(s).tmemo != (trafficMemo{}) {
		t.Fatal("fresh state with a memo")
	}
}

// A memo taken at day d is dropped by a usage event of day d applied by
// Step: both Intensity (pass 1) and metrics (pass 2, View) see the event.
func TestTrafficMemoInvalidatedByUsage(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(22)
	h.must(usageEv(s, at(d0-45, 1), "A", 6e9, 3), usageEv(s, at(d0, 1), "A", 2e9, 2))
	st := h.state(s)
	if v, ok := h.task().intensity(st); !ok || v != 1 { // 2 GB / 2 SIMs
		t.Fatalf("Intensity = %v, %v", v, ok)
	}
	if !st.tmemo.ok || st.tmemo.day != d0 {
		t.Fatal("Intensity left no memo")
	}
	// Same day, same bucket.
	h.must(usageEv(s, at(d0, 5), "A", 6e9, 1))
	if v, ok := h.task().intensity(st); !ok || v != 4 { // 8 GB / max 2 SIMs
		t.Fatalf("Intensity after a same-day event = %v, %v", v, ok)
	}
	if m := h.view(s).Metrics; m.Traffic30dBytes != 8e9 || m.TrafficPrev30dBytes != 6e9 || m.DigitalIntensity != 4 {
		t.Fatalf("metrics after a same-day event: %+v", m)
	}
	// A late event of an earlier day inside the window (new bucket).
	h.must(usageEv(s, at(d0-1, 5), "A", 2e9, 5))
	if m := h.view(s).Metrics; m.Traffic30dBytes != 10e9 || m.DigitalIntensity != 2 {
		t.Fatalf("metrics after a late event: %+v", m)
	}
	// A new day: the sweep (Intensity then Evaluate) memoizes d0+3, then a
	// usage event of d0+3 and a late one of d0-3.
	h.tick(at(d0+3, 0))
	if !st.tmemo.ok || st.tmemo.day != d0+3 {
		t.Fatalf("sweep left no memo of d0+3: %+v", st.tmemo)
	}
	h.must(usageEv(s, at(d0+3, 5), "A", 1e9, -1))
	if m := h.view(s).Metrics; m.Traffic30dBytes != 11e9 || m.TrafficPrev30dBytes != 6e9 || m.DigitalIntensity != 2.2 {
		t.Fatalf("metrics after a new day's event: %+v", m)
	}
	h.must(usageEv(s, at(d0-3, 5), "A", 11e9, 11))
	if v, ok := h.task().intensity(st); !ok || v != 2 { // 22 GB / max 11 SIMs
		t.Fatalf("Intensity after a late event = %v, %v", v, ok)
	}
	if got, want := memoTraffic(st, d0), scanTraffic(st, d0); got != want {
		t.Fatalf("memo %+v != scan %+v", got, want)
	}
}

// prune drops old buckets: a memo of a day whose window held them must not
// survive it.
func TestTrafficMemoInvalidatedByPrune(t *testing.T) {
	h := newHarness(t, nil)
	s, s2 := mkSIREN(23), mkSIREN(24)
	for _, k := range []string{s, s2} {
		h.must(usageEv(k, at(d0-80, 1), "A", 1e9, 1))
	}
	for _, k := range []string{s, s2} {
		h.must(usageEv(k, at(d0, 1), "A", 2e9, 1))
	}
	old := d0 - 60 // its window holds d0-80
	for _, k := range []string{s, s2} {
		if got := memoTraffic(h.state(k), old); got.t30 != 1e9 {
			t.Fatalf("traffic(%d) = %+v", old, got)
		}
	}
	// prune itself (Step re-evaluates right after pruning, which replaces
	// the memo anyway, so call it directly).
	st := h.state(s)
	st.prune(retention{usageMin: d0 - 69})
	if got, want := memoTraffic(st, old), scanTraffic(st, old); got != want || got.t30 != 0 {
		t.Fatalf("after prune traffic(%d) = %+v, scan %+v", old, got, want)
	}
	// Through Step on day d0+20 (usage days before d0-69 pruned), with an
	// event that is not a usage record.
	st2 := h.state(s2)
	h.must(profileEv(s2, at(d0+20, 1), 10, "BASIC_SIM"))
	if got, want := memoTraffic(st2, old), scanTraffic(st2, old); got != want || got.t30 != 0 {
		t.Fatalf("after Step's prune traffic(%d) = %+v, scan %+v", old, got, want)
	}
}

// Property: over random streams (every kind of event, late, duplicate and
// invalid records, day changes with sweeps), the memoized traffic and the
// view of a state equal those of a fresh decode of its encoding, and the
// memo never changes the encoding. Before each event the target's memo is
// warmed at the current day, so a missed invalidation would show.
func TestTrafficMemoMatchesFreshDecode(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		evs := randomEvents(seed, 25, 150, 40)
		rng := rand.New(rand.NewSource(seed))
		h := newHarness(t, nil)
		checked := 0
		for i, ev := range evs {
			if st := h.state(ev.SIREN); st != nil && h.task().Started() {
				h.task().intensity(st)
				if rng.Intn(2) == 0 {
					memoTraffic(st, h.task().StreamDay()-int32(rng.Intn(40)))
				}
			}
			_ = h.feed(ev)
			st := h.state(ev.SIREN)
			if st == nil || (i%7 != 0 && rng.Intn(3) != 0) {
				continue
			}
			checked++
			enc := st.AppendBinary(nil)
			fresh, err := UnmarshalState(st.SIREN, enc)
			if err != nil {
				t.Fatal(err)
			}
			d := h.task().StreamDay()
			for _, day := range []int32{d, d, d - 1 - int32(rng.Intn(70)), d + int32(rng.Intn(40)), d} {
				got, want := memoTraffic(st, day), memoTraffic(fresh, day)
				if got != want || got != scanTraffic(st, day) {
					t.Fatalf("seed %d event %d day %d: traffic %+v, fresh decode %+v", seed, i, day, got, want)
				}
			}
			var v1, v2 Decision
			h.task().View(st, &v1)
			h.task().View(fresh, &v2)
			if !reflect.DeepEqual(v1, v2) {
				t.Fatalf("seed %d event %d: view differs from a fresh decode\n%+v\n%+v", seed, i, v1, v2)
			}
			if !bytes.Equal(st.AppendBinary(nil), enc) {
				t.Fatalf("seed %d event %d: memo changed the encoding", seed, i)
			}
		}
		// After the stream, every state at every day of the last 120.
		for _, k := range h.sirens() {
			st := h.state(k)
			fresh, err := UnmarshalState(k, st.AppendBinary(nil))
			if err != nil {
				t.Fatal(err)
			}
			for day := h.task().StreamDay() - 120; day <= h.task().StreamDay(); day++ {
				if got, want := memoTraffic(st, day), memoTraffic(fresh, day); got != want {
					t.Fatalf("seed %d %s day %d: traffic %+v, fresh decode %+v", seed, k, day, got, want)
				}
			}
		}
		if checked < 500 {
			t.Fatalf("seed %d: only %d checks", seed, checked)
		}
	}
}
