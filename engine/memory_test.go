package engine

import (
	"fmt"
	"slices"
	"testing"
)

// States come out in SIREN order whatever the order they were added in;
// Put replaces; a rejected record of a new SIREN leaves no state.
func TestMemoryStates(t *testing.T) {
	m := NewMemory(nil, Config{})
	var want []string
	for _, n := range []int{5, 3, 9, 1, 7} {
		s := mkSIREN(n)
		want = append(want, s)
		ev := profileEv(s, at(d0, n), 10, "P")
		ev.EventID = "p"
		if err := m.Apply(&ev, Record{Key: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	var got []string
	for st := range m.States() {
		got = append(got, st.SIREN)
	}
	if !slices.Equal(got, want) || m.Len() != len(want) {
		t.Fatalf("States = %v, want %v", got, want)
	}
	fresh := NewState(want[2])
	m.Put(fresh)
	if m.State(want[2]) != fresh || m.Len() != len(want) {
		t.Fatal("Put did not replace")
	}
	bad := outageResolvedEv(mkSIREN(11), "o", at(d0, 9), -1, "") // no start: Step rejects it
	bad.EventID = "o"
	if err := m.Apply(&bad, Record{Key: []byte(bad.SIREN)}); DLQReason(err) != "invalid_event" || m.State(bad.SIREN) != nil {
		t.Fatalf("rejected record: %v, state %v", err, m.State(bad.SIREN))
	}
}

// Decisions come out as the processor emits them: a day change's in SIREN
// order, then the record's own.
func TestMemoryDecisionOrder(t *testing.T) {
	m := NewMemory(nil, Config{})
	var got []string
	m.OnDecision = func(d *Decision) {
		got = append(got, fmt.Sprintf("%s %s+%s-%s", d.SIREN, d.Segments, d.Added, d.Removed))
	}
	a, b := mkSIREN(2), mkSIREN(1)
	for _, ev := range []Event{
		usageEv(a, at(d0-100, 1), "75001", 1, 1), usageEv(a, at(d0-100, 2), "69001", 1, 1),
		usageEv(b, at(d0-100, 3), "75001", 1, 1), usageEv(b, at(d0-100, 4), "69001", 1, 1),
		usageEv(a, at(d0, 1), "13001", 1, 1), // 100 days later: both leave MULTI_SITE first
	} {
		ev.EventID = fmt.Sprint(ev.EventTime)
		if err := m.Apply(&ev, Record{Key: []byte(ev.SIREN)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		a + " MULTI_SITE+MULTI_SITE-", b + " MULTI_SITE+MULTI_SITE-",
		b + " +-MULTI_SITE", a + " +-MULTI_SITE", // the day change, in SIREN order (b < a)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("decisions\n%q\nwant\n%q", got, want)
	}
}

// A usage record of a known SIREN on the current day allocates nothing
// through the whole driver.
func TestMemoryApplyAllocatesNothing(t *testing.T) {
	m := NewMemory(nil, Config{})
	st := warmState(t, m.Task(), 1)
	m.Put(st)
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("alloc-%d", i)
	}
	ev := Event{Kind: KindUsage, SIREN: st.SIREN, PostalCode: "75001", BytesUp: 1e8, ActiveSIMs: 4, HasActiveSIMs: true}
	rec := Record{Key: []byte(st.SIREN)}
	i := 0
	apply := func() {
		ev.EventID = ids[i%len(ids)]
		ev.EventTime = at(d0, 0) + int64(i)
		i++
		if err := m.Apply(&ev, rec); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // reach steady state (slice capacities)
		apply()
	}
	if a := testing.AllocsPerRun(1000, apply); a != 0 {
		t.Fatalf("Apply(usage) allocates %v per record", a)
	}
}
