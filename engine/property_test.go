package engine

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"testing/quick"
)

// randomEvents returns a seeded, time-ordered-ish event stream over nSIRENs
// and days days: all kinds, duplicates, late and invalid records included.
func randomEvents(seed int64, nSIRENs, days, perDay int) []Event {
	rng := rand.New(rand.NewSource(seed))
	sirens := make([]string, nSIRENs)
	for i := range sirens {
		sirens[i] = mkSIREN(rng.Intn(100_000_000))
	}
	postals := []string{"75001", "69001", "13001", ""}
	plans := []string{"BASIC_SIM", "SD_WAN", "PREMIUM_SLA"}
	var evs []Event
	id := 0
	start := d0 - int32(days)
	for d := start; d < d0; d++ {
		for k := 0; k < perDay; k++ {
			id++
			s := sirens[rng.Intn(len(sirens))]
			ms := at(d, 0) + rng.Int63n(DayMs)
			if rng.Intn(50) == 0 {
				ms -= rng.Int63n(10 * DayMs) // sometimes late
			}
			ev := Event{SIREN: s, EventID: fmt.Sprintf("e%d", id), EventTime: ms}
			switch r := rng.Intn(20); {
			case r < 12:
				ev.Kind = KindUsage
				ev.PostalCode = postals[rng.Intn(len(postals))]
				ev.BytesUp = rng.Int63n(1e9)
				ev.BytesDown = rng.Int63n(3e9)
				if rng.Intn(3) > 0 {
					ev.ActiveSIMs, ev.HasActiveSIMs = int32(rng.Intn(30)), true
				}
			case r < 15:
				ev.Kind = KindOutage
				ev.OutageID = fmt.Sprintf("o%d", rng.Intn(8))
				ev.PostalCode = postals[rng.Intn(len(postals))]
				if rng.Intn(2) == 0 {
					ev.Status = OutageResolved
					if rng.Intn(2) == 0 {
						ev.StartedAt, ev.HasStartedAt = ms-rng.Int63n(12*3_600_000), true
					}
				}
			case r < 17:
				ev.Kind = KindClaim
				ev.ClaimID = fmt.Sprintf("c%d", id)
				ev.AmountCents = rng.Int63n(1e6)
				if rng.Intn(3) > 0 {
					ev.OutageID, ev.HasOutageID = fmt.Sprintf("o%d", rng.Intn(8)), true
				}
			default:
				ev.Kind = KindProfile
				ev.Plan = plans[rng.Intn(len(plans))]
				if rng.Intn(4) > 0 {
					ev.Workforce, ev.HasWorkforce = int32(5+rng.Intn(60)), true
				}
			}
			switch rng.Intn(40) {
			case 0:
				ev.SIREN = "123456789" // invalid Luhn
			case 1:
				ev.BytesUp = -1
			}
			evs = append(evs, ev)
			if rng.Intn(15) == 0 {
				evs = append(evs, ev) // duplicate
			}
		}
	}
	// Generated day by day: roughly event-time order, with the late ones late.
	return evs
}

type runResult struct {
	decisions []Decision
	errs      map[string]int
	states    map[string][]byte
	meta      []byte
}

// run processes evs; restartEvery > 0 encodes and decodes every state and
// the task meta every so many events, as a restart from the store would;
// keep asks the task to keep next-day sets (KeepNextDay).
func run(t testing.TB, evs []Event, restartEvery int, keep bool) runResult {
	h := newHarness(t, nil)
	h.task().KeepNextDay(keep)
	res := runResult{errs: map[string]int{}, states: map[string][]byte{}}
	for i, ev := range evs {
		if err := h.feed(ev); err != nil {
			res.errs[DLQReason(err)]++
			if DLQReason(err) == "error" {
				t.Fatalf("unclassified error: %v", err)
			}
		}
		if restartEvery > 0 && i%restartEvery == restartEvery-1 {
			if err := h.mem.Restart(); err != nil {
				t.Fatal(err)
			}
		}
	}
	res.decisions = h.out
	for st := range h.mem.States() {
		res.states[st.SIREN] = st.AppendBinary(nil)
	}
	res.meta = h.task().AppendMeta(nil)
	return res
}

func TestSameEventsGiveIdenticalDecisionsAndBytes(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		evs := randomEvents(seed, 40, 150, 60)
		a := run(t, evs, 0, false)
		b := run(t, evs, 0, false)
		c := run(t, evs, 97, false) // with restarts from encoded state + meta
		k := run(t, evs, 0, true)   // pass 1 from the kept next-day sets
		kr := run(t, evs, 97, true) // kept sets lost at each restart
		if len(a.decisions) == 0 {
			t.Fatal("no decisions: generator too weak")
		}
		for name, r := range map[string]runResult{"second run": b, "restarted run": c, "kept-set run": k, "kept-set restarted run": kr} {
			if !reflect.DeepEqual(a.decisions, r.decisions) {
				t.Fatalf("seed %d: %s decisions differ", seed, name)
			}
			if !reflect.DeepEqual(a.states, r.states) || !bytes.Equal(a.meta, r.meta) || !reflect.DeepEqual(a.errs, r.errs) {
				t.Fatalf("seed %d: %s state bytes / meta / errors differ", seed, name)
			}
		}
		if seed == 1 {
			t.Logf("seed 1: %d events, %d decisions, errors %v", len(evs), len(a.decisions), a.errs)
		}
	}
}

// TestStateRoundTrip: every state of a random event stream (one SIREN hot
// enough for dedup filters) decodes to the same usage and exact ids, with
// the capacities the engine appends to, and to the same view and
// intensity; it encodes back to the same bytes.
func TestStateRoundTrip(t *testing.T) {
	evs := randomEvents(42, 30, 200, 50)
	evs = append(evs, randomEvents(43, 1, 5, 700)...)
	h := newHarness(t, nil)
	for _, ev := range evs {
		_ = h.feed(ev)
	}
	filters := 0
	for _, k := range h.sirens() {
		st := h.state(k)
		b := st.AppendBinary(nil)
		got, err := UnmarshalState(k, b)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if b2 := got.AppendBinary(nil); !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encoding differs", k)
		}
		if !slices.Equal(got.usage, st.usage) || !slices.Equal(got.ids.hash, st.ids.hash) || !slices.Equal(got.ids.day, st.ids.day) {
			t.Fatalf("%s: usage or exact ids differ from the encoded state's", k)
		}
		if n := len(got.usage); n > 0 && cap(got.usage) != n+1 {
			t.Fatalf("%s: %d usage buckets with capacity %d", k, n, cap(got.usage))
		}
		if n := len(got.ids.hash); cap(got.ids.hash) != n || cap(got.ids.day) != n {
			t.Fatalf("%s: %d exact ids with capacities %d, %d", k, n, cap(got.ids.hash), cap(got.ids.day))
		}
		filters += len(got.ids.filters)
		want, wok := h.task().intensity(got)
		if v, ok, err := h.task().intensityEncoded(b); err != nil || v != want || ok != wok {
			t.Fatalf("%s: intensityEncoded = %v %v %v, intensity %v %v", k, v, ok, err, want, wok)
		}
		var v1, v2 Decision
		h.task().View(st, &v1)
		h.task().View(got, &v2)
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%s: view differs after decode\n%+v\n%+v", k, v1, v2)
		}
		// every truncation is an error, never a panic (at ~2000 lengths of
		// a state with filters)
		for i := 0; i < len(b); i += 1 + len(b)/2000 {
			if _, err := UnmarshalState(k, b[:i]); err == nil {
				t.Fatalf("%s: truncated at %d decoded", k, i)
			}
		}
	}
	if filters == 0 {
		t.Fatal("no state with dedup filters: generator too weak")
	}
}

func TestUnmarshalStateRejectsBadInput(t *testing.T) {
	good := NewState(mkSIREN(1)).AppendBinary(nil)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{StateVersion + 1}, good[1:]...)},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"trailing bytes", append(slices.Clone(good), 0)},
		{"unknown segment bits", func() []byte { b := slices.Clone(good); b[2] = 0x80; return b }()},
		{"huge count", []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalState("x", tt.b); err == nil {
				t.Fatal("decoded")
			}
		})
	}
	// quick: random bytes never panic.
	f := func(b []byte) bool {
		_, _ = UnmarshalState("x", append([]byte{StateVersion}, b...))
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Fatal(err)
	}
}

func TestStateSizeFor90DaysOfUsage(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(5)
	h.must(profileEv(s, at(d0-100, 1), 35, "BASIC_SIM"))
	for d := d0 - 89; d <= d0; d++ {
		h.must(usageEv(s, at(d, 12), "75001", 2_345_678_901, 12))
		if d%30 == 0 {
			h.must(outageResolvedEv(s, fmt.Sprintf("OUT-%d", d), at(d, 18), at(d, 13), "69001"))
			h.must(claimEv(s, at(d, 20), 150_000, fmt.Sprintf("OUT-%d", d)))
		}
	}
	b := h.state(s).AppendBinary(nil)
	t.Logf("state of a SIREN with 90 days of usage, 3 outages, 3 claims: %d bytes", len(b))
	if len(b) >= 1024 {
		t.Fatalf("state is %d bytes, want < 1 KiB", len(b))
	}
	if b[0] != StateVersion {
		t.Fatal("version byte")
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 100, SnapshotMax, SnapshotMax + 1, 10_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			task := NewTask(nil, Config{})
			task.advanceTo(at(d0, 3))
			rng := rand.New(rand.NewSource(int64(n)))
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = rng.ExpFloat64()
			}
			task.setSnapshot(vals)
			b := task.AppendMeta(nil)
			t2 := NewTask(nil, Config{})
			if err := t2.UnmarshalMeta(b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(t2.AppendMeta(nil), b) || t2.StreamTime() != at(d0, 3) || t2.SnapshotSize() != n {
				t.Fatal("meta differs")
			}
			for _, x := range vals[:min(n, 50)] {
				p1, ok1 := task.Percentile(x)
				p2, ok2 := t2.Percentile(x)
				if p1 != p2 || ok1 != ok2 {
					t.Fatal("percentile differs after restore")
				}
			}
			if err := t2.UnmarshalMeta(append([]byte{9}, b[1:]...)); err == nil {
				t.Fatal("unknown version accepted")
			}
			if err := t2.UnmarshalMeta(b[:len(b)-1]); n > 0 && err == nil {
				t.Fatal("truncated accepted")
			}
		})
	}
	// a task without any event round-trips as not started
	t3 := NewTask(nil, Config{})
	t4 := NewTask(nil, Config{})
	if err := t4.UnmarshalMeta(t3.AppendMeta(nil)); err != nil || t4.Started() {
		t.Fatal(err)
	}
}

func TestPercentileSampleErrorBound(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, n := range []int{1025, 5000, 100_000} {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.Floor(rng.ExpFloat64() * 1000) // with ties
		}
		task := NewTask(RulesV1(), Config{})
		task.advanceTo(0)
		task.setSnapshot(vals)
		sorted := slices.Sorted(slices.Values(vals))
		worst := 0.0
		for k := 0; k < 2000; k++ {
			x := vals[rng.Intn(n)] + []float64{0, 0.5}[rng.Intn(2)]
			exact := 100 * float64(sortSearch(sorted, x)) / float64(n)
			got, ok := task.Percentile(x)
			if !ok {
				t.Fatal("null")
			}
			worst = math.Max(worst, math.Abs(got-exact))
		}
		if worst > 100.0/(SnapshotMax-1) {
			t.Fatalf("n=%d: worst error %v percentile points", n, worst)
		}
		t.Logf("n=%d: worst percentile error %.4f points", n, worst)
	}
}

func sortSearch(sorted []float64, x float64) int {
	i, _ := slices.BinarySearch(sorted, x)
	return i
}

func TestPercentileExactSmallPopulation(t *testing.T) {
	task := NewTask(RulesV1(), Config{})
	task.advanceTo(0)
	if _, ok := task.Percentile(1); ok {
		t.Fatal("no snapshot: must be null")
	}
	vals := make([]float64, 200)
	for i := range vals {
		vals[i] = float64(i / 2) // pairs of ties
	}
	task.setSnapshot(vals)
	tests := []struct{ x, want float64 }{{0, 0}, {1, 1}, {50, 50}, {99, 99}, {1000, 100}, {-1, 0}}
	for _, tt := range tests {
		if got, ok := task.Percentile(tt.x); !ok || got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	task.advanceTo(DayMs) // new day drops the snapshot
	if _, ok := task.Percentile(1); ok {
		t.Fatal("snapshot survived a day change")
	}
}
