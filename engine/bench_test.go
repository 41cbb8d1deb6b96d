package engine

import (
	"fmt"
	"testing"
)

// warmState returns a SIREN with 90 days of hourly usage at two postal codes,
// a profile, an outage and a claim, processed by task up to day d0.
func warmState(tb testing.TB, task *Task, n int) *State {
	s := mkSIREN(n)
	st := NewState(s)
	step := stepper(tb, task, st)
	step(Event{Kind: KindProfile, EventID: "p", SIREN: s, EventTime: at(d0-100, 0), Workforce: 12, HasWorkforce: true, Plan: "BASIC_SIM"})
	for d := d0 - 89; d <= d0; d++ {
		for hr := 0; hr < 24; hr += 6 {
			pc := "75001"
			if hr == 12 {
				pc = "69001"
			}
			step(Event{Kind: KindUsage, EventID: fmt.Sprintf("u-%d-%d", d, hr), SIREN: s, EventTime: at(d, hr), PostalCode: pc, BytesUp: 1e8 + int64(n%1000)*1e6, BytesDown: 3e8, ActiveSIMs: 4, HasActiveSIMs: true})
		}
	}
	step(Event{Kind: KindOutage, EventID: "o", SIREN: s, OutageID: "X", Status: OutageResolved, EventTime: at(d0-10, 5), StartedAt: at(d0-10, 1), HasStartedAt: true})
	step(Event{Kind: KindClaim, EventID: "c", SIREN: s, ClaimID: "C", OutageID: "X", HasOutageID: true, EventTime: at(d0-9, 5), AmountCents: 10_000})
	return st
}

// stepper returns a function that steps an event into st, failing tb on an
// error.
func stepper(tb testing.TB, task *Task, st *State) func(Event) {
	var dec Decision
	return func(ev Event) {
		if _, err := task.Step(st, &ev, &dec); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkStepUsage: one usage record (hourly cadence) on an existing SIREN
// in steady state, days rolling over every 24 records.
func BenchmarkStepUsage(b *testing.B) {
	task := NewTask(nil, Config{})
	st := warmState(b, task, 1)
	const ring = 24 * 100 // ids recur after 100 days, long after dedup forgot them
	ids := make([]string, ring)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d", i)
	}
	ev := Event{Kind: KindUsage, SIREN: st.SIREN, PostalCode: "75001", SiteID: "s1", BytesUp: 1e8, BytesDown: 3e8, ActiveSIMs: 4, HasActiveSIMs: true}
	base := at(d0+1, 0)
	var dec Decision
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.EventID = ids[i%ring]
		ev.EventTime = base + int64(i)*3_600_000
		if _, err := task.Step(st, &ev, &dec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSweepPerSIREN: the day-change work per SIREN (pass 1 intensity +
// pass 2 Evaluate, Memory.DayChange) over 10k states; the sort of 10k
// values is amortised.
func BenchmarkSweepPerSIREN(b *testing.B) {
	m := NewMemory(nil, Config{})
	const n = 10_000
	for i := range n {
		m.Put(warmState(b, m.Task(), i))
	}
	day := d0 + 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		m.DayChange(at(day, 0))
		day++
	}
}

func BenchmarkStateEncode(b *testing.B) {
	st := warmState(b, NewTask(nil, Config{}), 1)
	buf := st.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		buf = st.AppendBinary(buf[:0])
	}
}

func BenchmarkStateDecode(b *testing.B) {
	st := warmState(b, NewTask(nil, Config{}), 1)
	buf := st.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		if _, err := UnmarshalState(st.SIREN, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStepUsageAllocatesNothing(t *testing.T) {
	task := NewTask(nil, Config{})
	st := warmState(t, task, 1)
	ids := make([]string, 24*100)
	for i := range ids {
		ids[i] = fmt.Sprintf("alloc-%d", i)
	}
	ev := Event{Kind: KindUsage, SIREN: st.SIREN, PostalCode: "75001", BytesUp: 1e8, ActiveSIMs: 4, HasActiveSIMs: true}
	var dec Decision
	i := 0
	step := func() {
		ev.EventID = ids[i%len(ids)]
		ev.EventTime = at(d0+1, 0) + int64(i)*3_600_000
		i++
		if _, err := task.Step(st, &ev, &dec); err != nil {
			t.Fatal(err)
		}
	}
	for k := 0; k < 24*20; k++ { // reach steady state (slice capacities)
		step()
	}
	if a := testing.AllocsPerRun(24*30, step); a != 0 {
		t.Fatalf("Step(usage) allocates %v per event", a)
	}
}
