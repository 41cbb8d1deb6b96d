package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// hotDay feeds n usage events of one SIREN on day d0 (ids "hot-i") and,
// every 1000th, an event of another SIREN, through Memory. It returns the
// number dead-lettered as duplicates (false positives: every id is new).
func hotDay(tb testing.TB, m *Memory, siren string, n int) int {
	dups := 0
	for i := range n {
		ev := usageEv(siren, at(d0, 0)+int64(i)*400, "75001", 1e6, 3) // 200k events span 22 h
		ev.EventID = fmt.Sprint("hot-", i)
		err := m.Apply(&ev, Record{Key: []byte(siren)})
		switch {
		case errors.Is(err, ErrDuplicate):
			dups++
		case err != nil:
			tb.Fatal(err)
		}
		if i%1000 == 0 {
			other := usageEv(mkSIREN(7), ev.EventTime, "13001", 1e6, 1)
			other.EventID = fmt.Sprint("other-", i)
			if err := m.Apply(&other, Record{Key: []byte(other.SIREN)}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return dups
}

// TestDedupHotSIRENIsBounded is issue 20's hot SIREN: 200k events in one
// day. Its state stays far below a Kafka record, false positives stay
// within DedupFalsePositive, recent and early ids are still duplicates, the
// bound is counted, and the bytes are deterministic across a restart.
func TestDedupHotSIRENIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("200k events")
	}
	hot := mkSIREN(42)
	const n = 200_000
	m := NewMemory(nil, Config{})
	fp := hotDay(t, m, hot, n)
	st := m.State(hot)
	b := st.AppendBinary(nil)
	t.Logf("hot SIREN: %d events, state %d bytes (%d exact ids, %d filters), %d false positives (%.4f %%)",
		n, len(b), len(st.ids.hash), len(st.ids.filters), fp, 100*float64(fp)/n)
	if len(b) > 64<<10 {
		t.Fatalf("state of the hot SIREN: %d bytes", len(b))
	}
	// At most one full filter: ≤ DedupFalsePositive of the events after
	// it filled, with generous room for chance (expected ~90).
	if limit := int(3*DedupFalsePositive*n) + 10; fp > limit {
		t.Fatalf("%d false positives, more than %d", fp, limit)
	}
	// Every id the exact set and the filter kept is still a duplicate: the
	// last DedupExact/2 and the first DedupFilterCap spilled.
	for _, i := range []int{0, 1, DedupFilterCap - 1, n - 1, n - DedupExact/2} {
		ev := usageEv(hot, at(d0, 23), "75001", 1, 1)
		ev.EventID = fmt.Sprint("hot-", i)
		if err := m.Apply(&ev, Record{Key: []byte(hot)}); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("re-sent hot-%d: %v", i, err)
		}
	}
	c := m.Task().Bounds()
	if c.Hits[BoundDedup] == 0 || c.Hits[BoundDedupForgotten] == 0 || c.Last[BoundDedup] != hot || c.Last[BoundDedupForgotten] != hot {
		t.Fatalf("bounds %+v", c)
	}
	if c.Total != c.Hits[BoundDedup]+c.Hits[BoundDedupForgotten] || m.Task().BoundHits() != c.Total {
		t.Fatalf("total %d of %v", c.Total, c.Hits)
	}
	// Deterministic: a second run gives the same bytes, a restart too.
	m2 := NewMemory(nil, Config{})
	hotDay(t, m2, hot, n)
	if !bytes.Equal(m2.State(hot).AppendBinary(nil), b) {
		t.Fatal("two runs give different states")
	}
	if err := m2.Restart(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m2.State(hot).AppendBinary(nil), b) {
		t.Fatal("a restart changes the state")
	}
	// The other SIREN is untouched by the hot one's bound.
	if o := m.State(mkSIREN(7)); len(o.ids.filters) != 0 || len(o.ids.hash) != n/1000 {
		t.Fatalf("other SIREN: %d ids, %d filters", len(o.ids.hash), len(o.ids.filters))
	}
}

// TestDedupExactBelowBudget: a SIREN with DedupExact ids in its window is
// deduplicated exactly (no filter), whatever their days; one more id
// spills the older half into filters, still without forgetting any.
func TestDedupExactBelowBudget(t *testing.T) {
	h := newHarness(t, nil)
	h.tick(at(d0, 1))
	s := mkSIREN(3)
	ids := make([]string, 0, DedupExact+1)
	for i := range DedupExact { // over the 8 days the lateness accepts
		ev := usageEv(s, at(d0-7+int32(i%8), 1), "75001", 1, 1)
		ev.EventID = fmt.Sprint("e-", i)
		ids = append(ids, ev.EventID)
		h.must(ev)
	}
	st := h.state(s)
	if len(st.ids.hash) != DedupExact || len(st.ids.filters) != 0 || h.task().BoundHits() != 0 {
		t.Fatalf("%d exact, %d filters, %d hits", len(st.ids.hash), len(st.ids.filters), h.task().BoundHits())
	}
	dupAll := func() {
		t.Helper()
		for _, id := range ids {
			ev := usageEv(s, at(d0, 23), "75001", 1, 1)
			ev.EventID = id
			if err := h.feed(ev); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
	dupAll()
	ev := usageEv(s, at(d0, 23), "75001", 1, 1)
	ev.EventID = "one-more"
	ids = append(ids, ev.EventID)
	h.must(ev)
	if len(st.ids.hash) != DedupExact/2+1 || len(st.ids.filters) != 8 {
		t.Fatalf("after the spill: %d exact, %d filters", len(st.ids.hash), len(st.ids.filters))
	}
	if c := h.task().Bounds(); c.Hits[BoundDedup] != DedupExact/2 || c.Hits[BoundDedupForgotten] != 0 {
		t.Fatalf("bounds %v", c.Hits)
	}
	dupAll()
}

// TestDedupFiltersAgeOut: a day filter goes with its day at the end of the
// window (AllowedLateness + 1 day), like the exact ids.
func TestDedupFiltersAgeOut(t *testing.T) {
	task := NewTask(nil, Config{})
	s := mkSIREN(5)
	st := NewState(s)
	var dec Decision
	step := func(id string, ms int64) {
		ev := usageEv(s, ms, "", 1, 1)
		ev.EventID = id
		if _, err := task.Step(st, &ev, &dec); err != nil {
			t.Fatal(err)
		}
	}
	for i := range DedupExact + 1 {
		step(fmt.Sprint("a-", i), at(d0, 0)+int64(i))
	}
	if len(st.ids.filters) != 1 || st.ids.filters[0].from != d0 || st.ids.filters[0].to != d0 {
		t.Fatalf("filters %+v", st.ids.filters)
	}
	step("b", at(d0+8, 0)) // window d0..d0+8: kept
	if len(st.ids.filters) != 1 || !st.seen(fnv64aString("a-0")) {
		t.Fatal("filter of day d0 dropped inside the window")
	}
	step("c", at(d0+9, 0))
	if len(st.ids.filters) != 0 || st.seen(fnv64aString("a-0")) || st.seen(fnv64aString(fmt.Sprint("a-", DedupExact))) {
		t.Fatal("day d0 remembered after the window")
	}
}

// TestDedupFiltersSpanLongWindows: with 30 days of lateness a filter spans
// 4 days, so a SIREN hot every day never has more than DedupMaxFilters.
// (1500 ids a day: a 4-day filter takes them all, nothing is forgotten;
// new ids may be false positives.)
func TestDedupFiltersSpanLongWindows(t *testing.T) {
	task := NewTask(nil, Config{AllowedLatenessMs: 30 * DayMs})
	if task.dedupSpan != 4 {
		t.Fatalf("span %d", task.dedupSpan)
	}
	s := mkSIREN(6)
	st := NewState(s)
	var dec Decision
	most, fp := 0, 0
	for d := range int32(60) {
		for i := range 1500 {
			ev := usageEv(s, at(d0+d, 0)+int64(i), "", 1, 1)
			ev.EventID = fmt.Sprint(d, "-", i)
			if _, err := task.Step(st, &ev, &dec); errors.Is(err, ErrDuplicate) {
				fp++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		most = max(most, len(st.ids.filters))
		for i, f := range st.ids.filters {
			if f.to-f.from != 3 || f.from%4 != 0 || (i > 0 && f.from <= st.ids.filters[i-1].to) {
				t.Fatalf("day %d: filters %v", d, st.ids.filters)
			}
		}
	}
	if most > DedupMaxFilters || most < DedupMaxFilters-1 {
		t.Fatalf("at most %d filters", most)
	}
	if task.Bounds().Hits[BoundDedupForgotten] != 0 || fp > 60*1500/500 {
		t.Fatalf("forgot %d ids, %d false positives", task.Bounds().Hits[BoundDedupForgotten], fp)
	}
}

// TestDedupFilterFalsePositiveRate: a full filter answers "seen" for new
// ids at about DedupFalsePositive.
func TestDedupFilterFalsePositiveRate(t *testing.T) {
	f := filter{bits: make([]uint64, filterWords)}
	rng := rand.New(rand.NewPCG(3, 4))
	for range DedupFilterCap {
		f.add(fnv64aString(fmt.Sprint("in-", rng.Uint64())))
	}
	const probes = 1_000_000
	fp := 0
	for i := range probes {
		if f.has(fnv64aString(fmt.Sprint("out-", i))) {
			fp++
		}
	}
	rate := float64(fp) / probes
	t.Logf("false-positive rate of a full filter: %.5f %% (documented %.3f %%)", 100*rate, 100*DedupFalsePositive)
	if rate > 1.3*DedupFalsePositive || rate < 0.7*DedupFalsePositive {
		t.Fatalf("rate %v, documented %v", rate, DedupFalsePositive)
	}
}

// Each cap: the list stops at its value, the least relevant entry goes,
// and the task counts the hit with the SIREN.
func TestCapsDropTheLeastRelevantEntry(t *testing.T) {
	s := mkSIREN(9)
	tests := []struct {
		name  string
		bound Bound
		n     int // events
		ev    func(i int) Event
		check func(t *testing.T, st *State)
	}{
		{"open outages: the longest open goes", BoundOpenOutages, MaxOpenOutages + 5,
			func(i int) Event { return outageStartEv(s, fmt.Sprintf("o-%04d", 9999-i), at(d0, 0)+int64(i), "") },
			func(t *testing.T, st *State) {
				if len(st.open) != MaxOpenOutages || st.open[0].id != fmt.Sprintf("o-%04d", 9999-MaxOpenOutages-4) {
					t.Fatalf("%d open, first %+v", len(st.open), st.open[0])
				}
				for _, o := range st.open {
					if o.start < at(d0, 0)+5 {
						t.Fatalf("kept %+v", o)
					}
				}
			}},
		{"resolved outages: the first resolved goes", BoundResolvedOutages, MaxResolvedOutages + 3,
			func(i int) Event {
				return outageResolvedEv(s, fmt.Sprintf("r-%05d", i), at(d0, 1)+int64(i), at(d0, 0), "")
			},
			func(t *testing.T, st *State) {
				if len(st.resolved) != MaxResolvedOutages || st.resolved[0].id != "r-00003" {
					t.Fatalf("%d resolved, first %+v", len(st.resolved), st.resolved[0])
				}
			}},
		{"postal codes: the least recently seen goes", BoundPostalCodes, MaxPostalCodes + 2,
			func(i int) Event { return usageEv(s, at(d0-50+int32(i%40), 0), fmt.Sprintf("%05d", i), 1, 1) },
			func(t *testing.T, st *State) {
				if len(st.postals) != MaxPostalCodes {
					t.Fatalf("%d postal codes", len(st.postals))
				}
				for _, p := range st.postals {
					if p.code == "00000" || p.code == "00040" {
						t.Fatalf("kept %+v (least recently seen)", p)
					}
				}
			}},
		{"claims: the oldest goes", BoundClaims, MaxClaims + 7,
			func(i int) Event { return claimEv(s, at(d0-300, 0)+int64(i)*3_600_000, int64(i), "o") },
			func(t *testing.T, st *State) {
				if len(st.claims) != MaxClaims || st.claims[0].amount != 7 {
					t.Fatalf("%d claims, first %+v", len(st.claims), st.claims[0])
				}
			}},
		{"workforce history: the oldest goes", BoundWorkforce, MaxWorkforceObservations + 4,
			func(i int) Event { return profileEv(s, at(d0-20, 0)+int64(i)*60_000, int32(10+i%3), "") },
			func(t *testing.T, st *State) {
				if len(st.wfHist) != MaxWorkforceObservations || st.wfHist[0].t != at(d0-20, 0)+4*60_000 {
					t.Fatalf("%d observations, first %+v", len(st.wfHist), st.wfHist[0])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := NewTask(nil, Config{})
			st := NewState(s)
			var dec Decision
			for i := range tt.n {
				ev := tt.ev(i)
				ev.EventID = fmt.Sprint("e-", i)
				if _, err := task.Step(st, &ev, &dec); err != nil {
					t.Fatal(err)
				}
			}
			tt.check(t, st)
			c := task.Bounds()
			want := uint64(tt.n - capOf(tt.bound))
			if c.Hits[tt.bound] != want || c.Total != want || c.Last[tt.bound] != s {
				t.Fatalf("%s: hits %v, last %q; want %d", tt.bound, c.Hits, c.Last[tt.bound], want)
			}
			back, err := UnmarshalState(s, st.AppendBinary(nil))
			if err != nil || !bytes.Equal(back.AppendBinary(nil), st.AppendBinary(nil)) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func capOf(b Bound) int {
	switch b {
	case BoundOpenOutages:
		return MaxOpenOutages
	case BoundResolvedOutages:
		return MaxResolvedOutages
	case BoundPostalCodes:
		return MaxPostalCodes
	case BoundClaims:
		return MaxClaims
	case BoundWorkforce:
		return MaxWorkforceObservations
	}
	panic(b)
}

// TestWorstCaseStateFitsAKafkaRecord: every list at its cap, every string
// at maxFieldLen, every dedup filter dense: the encoding stays well under
// a 1 MiB Kafka record (the bound documented in bounds.go).
func TestWorstCaseStateFitsAKafkaRecord(t *testing.T) {
	long := func(prefix string, i int) string {
		p := fmt.Sprintf("%s-%06d-", prefix, i)
		return p + strings.Repeat("x", maxFieldLen-len(p))
	}
	st := NewState(mkSIREN(11))
	st.hasUsage, st.hasProfile, st.hasWorkforce = true, true, true
	st.plan = long("plan", 0)
	for d := range int32(DefaultUsageDays) {
		st.usage = append(st.usage, dayUsage{day: d0 - 89 + d, sims: 1 << 20, bytes: 1 << 50})
	}
	for i := range MaxPostalCodes {
		st.postals = append(st.postals, postal{code: long("p", i), lastDay: d0})
	}
	for i := range MaxOpenOutages {
		st.open = append(st.open, openOutage{id: long("o", i), start: at(d0, 0)})
	}
	for i := range MaxResolvedOutages {
		st.resolved = append(st.resolved, resolvedOutage{id: long("r", i), start: at(d0-364, 0), end: at(d0, 0)})
	}
	for i := range MaxClaims {
		st.claims = append(st.claims, claim{day: d0 - 364 + int32(i%365), amount: maxAmountCents, linked: true})
	}
	for i := range MaxWorkforceObservations {
		st.wfHist = append(st.wfHist, wfObs{t: at(d0-60, 0) + int64(i)*DayMs/20, wf: maxCount})
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range DedupExact {
		st.ids.hash = append(st.ids.hash, rng.Uint64())
		st.ids.day = append(st.ids.day, d0-int32(i%9))
	}
	for d := range int32(DedupMaxFilters) {
		f := filter{from: d0 - 8 + d, to: d0 - 8 + d, bits: make([]uint64, filterWords)}
		for range DedupFilterCap {
			f.add(rng.Uint64())
		}
		st.ids.filters = append(st.ids.filters, f)
	}
	b := st.AppendBinary(nil)
	t.Logf("worst-case state: %d bytes", len(b))
	if len(b) > 600_000 {
		t.Fatalf("worst-case state: %d bytes", len(b))
	}
	back, err := UnmarshalState(st.SIREN, b)
	if err != nil || !bytes.Equal(back.AppendBinary(nil), b) {
		t.Fatalf("round trip: %v", err)
	}
}

// TestUnmarshalStateRejectsOverBudgetDedup: a version 2 encoding beyond the
// dedup budget, or with a broken filter, is an error (never a panic).
func TestUnmarshalStateRejectsOverBudgetDedup(t *testing.T) {
	task := NewTask(nil, Config{})
	st := NewState(mkSIREN(12))
	var dec Decision
	for i := range DedupExact + 1 {
		ev := usageEv(st.SIREN, at(d0, 0)+int64(i), "", 1, 1)
		ev.EventID = fmt.Sprint(i)
		if _, err := task.Step(st, &ev, &dec); err != nil {
			t.Fatal(err)
		}
	}
	good := st.AppendBinary(nil)
	if _, err := UnmarshalState(st.SIREN, good); err != nil {
		t.Fatal(err)
	}
	tooMany := *st
	tooMany.ids.hash = make([]uint64, DedupExact+1)
	tooMany.ids.day = make([]int32, DedupExact+1)
	tooMany.ids.filters = nil
	filters := *st
	f := st.ids.filters[0]
	for range DedupMaxFilters {
		filters.ids.filters = append(filters.ids.filters, f)
		f.from, f.to = f.to+1, f.to+1
	}
	overlap := *st
	overlap.ids.filters = []filter{st.ids.filters[0], st.ids.filters[0]}
	for name, b := range map[string][]byte{
		"too many exact ids": tooMany.AppendBinary(nil),
		"too many filters":   filters.AppendBinary(nil),
		"overlapping":        overlap.AppendBinary(nil),
		"bit count":          append(good[:len(good)-1:len(good)-1], good[len(good)-1]^1),
	} {
		if _, err := UnmarshalState(st.SIREN, b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	for i := range len(good) {
		if _, err := UnmarshalState(st.SIREN, good[:i]); err == nil {
			t.Fatalf("truncated at %d: decoded", i)
		}
	}
}

// BenchmarkStepHotSIREN: a usage record of a SIREN far over its exact
// dedup budget (a full day filter, the exact set spilling every
// DedupExact/2 records): the per-event cost stays flat. Ids recur after
// 1M records, long after the set and the filter (the day's first 8192
// spilled ids) forgot them.
func BenchmarkStepHotSIREN(b *testing.B) {
	task := NewTask(nil, Config{})
	st := NewState(mkSIREN(13))
	var dec Decision
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = fmt.Sprint("hot-", i)
	}
	ev := usageEv(st.SIREN, at(d0, 0), "75001", 1e6, 3)
	step := func(i int) {
		ev.EventID = ids[20_000+i%(len(ids)-20_000)]
		ev.EventTime = at(d0, 0) + 20_000 + int64(i)
		if _, err := task.Step(st, &ev, &dec); err != nil && !errors.Is(err, ErrDuplicate) {
			b.Fatal(err)
		}
	}
	for i := range 20_000 {
		ev.EventID = ids[i]
		ev.EventTime = at(d0, 0) + int64(i)
		if _, err := task.Step(st, &ev, &dec); err != nil && !errors.Is(err, ErrDuplicate) {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step(i)
	}
}
