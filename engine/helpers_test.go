package engine

import (
	"fmt"
	"slices"
	"testing"
)

// Times used by scenarios: day d0 = 2024-10-04 (UTC).
const d0 int32 = 20000

// at returns the Unix ms of day+hours (hours may be fractional via minutes).
func at(day int32, hour int) int64 { return int64(day)*DayMs + int64(hour)*3_600_000 }

// mkSIREN returns a valid SIREN built from n: 8 digits + Luhn check digit.
func mkSIREN(n int) string {
	p := fmt.Sprintf("%08d", n%100_000_000)
	for c := byte('0'); c <= '9'; c++ {
		if s := p + string(c); ValidSIREN(s) {
			return s
		}
	}
	panic("unreachable")
}

// filler is the SIREN of tick events: a profile without workforce never
// scores nor holds a segment.
var filler = mkSIREN(99_999_999)

func cloneDec(d Decision) Decision {
	d.Reasons = slices.Clone(d.Reasons)
	d.Offers = slices.Clone(d.Offers)
	return d
}

// harness feeds events through the one in-memory driver (Memory: CheckRecord,
// day change, Step) and records every decision (copied).
type harness struct {
	tb     testing.TB
	mem    *Memory
	out    []Decision
	nextID int
}

// newHarness drives a Memory under r; nil means RulesV1 (the tests written
// for rules default-1 keep their meaning; rules default-2 has its own).
func newHarness(tb testing.TB, r *Rules) *harness {
	if r == nil {
		r = RulesV1()
	}
	h := &harness{tb: tb, mem: NewMemory(r, Config{})}
	h.mem.OnDecision = func(d *Decision) { h.out = append(h.out, cloneDec(*d)) }
	return h
}

// task is the driven task (it changes on a restart).
func (h *harness) task() *Task { return h.mem.Task() }

// state is the state of siren, nil when it has none.
func (h *harness) state(siren string) *State { return h.mem.State(siren) }

// sirens returns the SIRENs with a state, in order.
func (h *harness) sirens() []string {
	keys := make([]string, 0, h.mem.Len())
	for st := range h.mem.States() {
		keys = append(keys, st.SIREN)
	}
	return keys
}

// feed processes ev as a record keyed by its SIREN, without a timestamp;
// it fills an empty EventID with a fresh one.
func (h *harness) feed(ev Event) error {
	if ev.EventID == "" {
		h.nextID++
		ev.EventID = fmt.Sprintf("ev-%d", h.nextID)
	}
	return h.mem.Apply(&ev, Record{Key: []byte(ev.SIREN)})
}

func (h *harness) must(evs ...Event) {
	h.tb.Helper()
	for _, ev := range evs {
		if err := h.feed(ev); err != nil {
			h.tb.Fatalf("feed %+v: %v", ev, err)
		}
	}
}

// tick moves stream time to ms with an event of another SIREN.
func (h *harness) tick(ms int64) { h.must(profileEv(filler, ms, -1, "")) }

func (h *harness) view(siren string) Decision {
	var d Decision
	st := h.state(siren)
	if st == nil {
		st = NewState(siren)
	}
	h.task().View(st, &d)
	return d
}

// decisions returns the recorded decisions of siren and forgets all.
func (h *harness) take(siren string) []Decision {
	var r []Decision
	for _, d := range h.out {
		if d.SIREN == siren {
			r = append(r, d)
		}
	}
	h.out = nil
	return r
}

func usageEv(siren string, ms int64, postal string, bytes int64, sims int32) Event {
	ev := Event{Kind: KindUsage, SIREN: siren, EventTime: ms, SiteID: "site-" + postal, PostalCode: postal, BytesUp: bytes / 4, BytesDown: bytes - bytes/4}
	if sims >= 0 {
		ev.ActiveSIMs, ev.HasActiveSIMs = sims, true
	}
	return ev
}

func outageStartEv(siren, outage string, ms int64, postal string) Event {
	return Event{Kind: KindOutage, SIREN: siren, OutageID: outage, Status: OutageStarted, EventTime: ms, PostalCode: postal}
}

// outageResolvedEv: startedAt < 0 means null.
func outageResolvedEv(siren, outage string, ms, startedAt int64, postal string) Event {
	ev := Event{Kind: KindOutage, SIREN: siren, OutageID: outage, Status: OutageResolved, EventTime: ms, PostalCode: postal}
	if startedAt >= 0 {
		ev.StartedAt, ev.HasStartedAt = startedAt, true
	}
	return ev
}

// claimEv: outage "" means null.
func claimEv(siren string, ms int64, amount int64, outage string) Event {
	return Event{Kind: KindClaim, SIREN: siren, ClaimID: fmt.Sprintf("c-%d", ms), EventTime: ms, AmountCents: amount, OutageID: outage, HasOutageID: outage != ""}
}

// profileEv: wf < 0 means null.
func profileEv(siren string, ms int64, wf int32, plan string) Event {
	ev := Event{Kind: KindProfile, SIREN: siren, EventTime: ms, Plan: plan}
	if wf >= 0 {
		ev.Workforce, ev.HasWorkforce = wf, true
	}
	return ev
}

// noGoldenHourOffer are the default-1 rules without the golden-hour offer
// (GOLDEN_HOUR_REPAIR only with RECOVERY_EXPOSED): a test of segments alone
// then sees no offer-only event at an outage's first hour.
func noGoldenHourOffer() *Rules {
	r := RulesV1()
	r.Offers.GoldenHourMinBreaches = 0
	return r
}
