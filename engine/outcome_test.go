package engine

import (
	"errors"
	"strconv"
	"testing"
)

// outcomeHarness drives a Memory with short windows and records outcomes.
type outcomeHarness struct {
	*harness
	outs []Outcome
}

func newOutcomeHarness(t *testing.T, cfg Config) *outcomeHarness {
	t.Helper()
	h := &outcomeHarness{harness: &harness{tb: t, mem: NewMemory(nil, cfg)}}
	h.mem.OnDecision = func(d *Decision) { h.out = append(h.out, cloneDec(*d)) }
	h.mem.OnOutcome = func(o *Outcome) { h.outs = append(h.outs, *o) }
	return h
}

// multiSite makes siren eligible for MULTISITE_VPN at day d (two postal
// codes).
func (h *outcomeHarness) multiSite(siren string, d int32) {
	h.must(usageEv(siren, at(d, 1), "75001", 1e6, -1), usageEv(siren, at(d, 2), "69001", 1e6, -1))
}

func contractEv(siren string, ms int64, typ ContractType, plan string, mrr int64) Event {
	return Event{Kind: KindContractEvent, SIREN: siren, EventTime: ms, ContractType: typ, Plan: plan, HasPlan: plan != "", MRRCents: mrr}
}

const windowDays = 10

func shortWindows() Config {
	return Config{ConversionWindowMs: windowDays * DayMs, ChurnWindowMs: windowDays * DayMs, AllowedLatenessMs: 2 * DayMs}
}

func TestEligibilityOpensWithTheOfferAndClosesAfterTheWindowAndLateness(t *testing.T) {
	h := newOutcomeHarness(t, shortWindows())
	s := mkSIREN(1)
	h.multiSite(s, 100)
	if n := h.state(s).OpenEligibilities(); n != 1 {
		t.Fatalf("open eligibilities = %d, want 1 (MULTISITE_VPN)", n)
	}
	// Window 10 days + lateness 2 from day 100 02:00: still open at the day
	// change of day 112, closed at the next one.
	h.tick(at(112, 0))
	if len(h.outs) != 0 {
		t.Fatalf("closed before window + lateness: %+v", h.outs)
	}
	h.tick(at(113, 0))
	if len(h.outs) != 1 {
		t.Fatalf("outcomes = %+v, want one", h.outs)
	}
	o := h.outs[0]
	if o.Offer != OfferMultisiteVPN || o.Converted || o.Churned || o.EligibleAt != at(100, 2) || o.ClosedAt != at(110, 2) ||
		o.RulesVersion != DefaultRules().Version || o.HoldoutID != DefaultHoldoutID || o.EventID != s+"-MULTISITE_VPN-"+itoa(at(100, 2)) {
		t.Fatalf("outcome %+v", o)
	}
	if h.state(s).OpenEligibilities() != 0 {
		t.Fatal("closed eligibility still open")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestConversionCountsOnlyInsideTheWindow(t *testing.T) {
	cases := []struct {
		name      string
		afterDays float64
		plan      string
		converted bool
	}{
		{"the offer's product inside the window converts", windowDays - 0.5, "MULTISITE_VPN", true},
		{"one day after the window closes does not count", windowDays + 1, "MULTISITE_VPN", false},
		{"another product does not convert", 1, "SD_WAN", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newOutcomeHarness(t, shortWindows())
			s := mkSIREN(2)
			h.must(contractEv(s, at(99, 0), ContractRenewal, "BASIC_SIM", 10_000))
			h.multiSite(s, 100)
			ev := contractEv(s, at(100, 2)+int64(c.afterDays*float64(DayMs)), ContractPlanChange, c.plan, 25_000)
			h.must(ev)
			h.tick(at(100+windowDays+4, 0))
			if len(h.outs) != 1 || h.outs[0].Converted != c.converted {
				t.Fatalf("outcomes %+v, want converted=%v", h.outs, c.converted)
			}
			if want := int64(0); c.converted {
				want = 15_000
				if h.outs[0].MRRDeltaCents != want {
					t.Fatalf("mrr delta %d, want %d", h.outs[0].MRRDeltaCents, want)
				}
			}
		})
	}
}

func TestChurnIsATerminationInsideTheChurnWindow(t *testing.T) {
	h := newOutcomeHarness(t, shortWindows())
	s := mkSIREN(3)
	h.multiSite(s, 100)
	h.must(contractEv(s, at(105, 0), ContractTermination, "", 0))
	h.tick(at(120, 0))
	if len(h.outs) != 1 || !h.outs[0].Churned || h.outs[0].Converted {
		t.Fatalf("outcomes %+v, want churned", h.outs)
	}
}

func TestLateAndDuplicateContractEvents(t *testing.T) {
	h := newOutcomeHarness(t, shortWindows())
	s := mkSIREN(4)
	h.multiSite(s, 100)
	h.tick(at(104, 0))
	// Late within the allowed lateness (2 days): applied, attributed.
	late := contractEv(s, at(102, 12), ContractPlanChange, "MULTISITE_VPN", 5_000)
	late.EventID = "contract-1"
	h.must(late)
	// The same event again: a duplicate, changes nothing.
	if err := h.feed(late); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: err = %v, want ErrDuplicate", err)
	}
	// Beyond the lateness: late, dead-lettered.
	old := contractEv(s, at(101, 0), ContractTermination, "", 0)
	if err := h.feed(old); !errors.Is(err, ErrLate) {
		t.Fatalf("late: err = %v, want ErrLate", err)
	}
	h.tick(at(120, 0))
	if len(h.outs) != 1 || !h.outs[0].Converted || h.outs[0].Churned {
		t.Fatalf("outcomes %+v, want converted, not churned", h.outs)
	}
}

func TestHoldoutIsStableAcrossRulesVersions(t *testing.T) {
	ho := Holdout{ID: "h1", Salt: "pepper", Share: 0.3}
	r2 := DefaultRules()
	r2.Version = "other-version"
	r2.ControlGroup.Salt = "changed-in-the-rules"
	r2.ControlGroup.Percent = 90
	a := NewMemory(nil, Config{Holdout: ho})
	b := NewMemory(r2, Config{Holdout: ho})
	control := 0
	for i := 0; i < 400; i++ {
		s := mkSIREN(1000 + i)
		for _, m := range []*Memory{a, b} {
			ev := usageEv(s, at(100, 1), "75001", 1e6, -1)
			ev.EventID = "u-" + s
			if err := m.Apply(&ev, Record{Key: []byte(s)}); err != nil {
				t.Fatal(err)
			}
		}
		var da, db Decision
		a.Task().View(a.State(s), &da)
		b.Task().View(b.State(s), &db)
		if da.ControlGroup != db.ControlGroup || da.ControlGroup != ho.InControl(s) {
			t.Fatalf("%s: control %v under default rules, %v under %s", s, da.ControlGroup, db.ControlGroup, r2.Version)
		}
		if da.ControlGroup {
			control++
		}
	}
	if control < 80 || control > 160 {
		t.Fatalf("%d of 400 in control, want about 30%%", control)
	}
}

func TestHoldoutIsRecordedTheFirstTimeASIRENIsSeen(t *testing.T) {
	m := NewMemory(nil, Config{Holdout: Holdout{ID: "h1", Share: 1}})
	s := mkSIREN(5)
	ev := usageEv(s, at(100, 1), "75001", 1e6, -1)
	ev.EventID = "u1"
	if err := m.Apply(&ev, Record{Key: []byte(s)}); err != nil {
		t.Fatal(err)
	}
	st, err := UnmarshalState(s, m.State(s).AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Another task with a share of 0 under the same id still sees the
	// recorded group.
	other := NewTask(nil, Config{Holdout: Holdout{ID: "h1", Share: -1}})
	var d Decision
	other.View(st, &d)
	if !d.ControlGroup {
		t.Fatal("recorded control group lost")
	}
	// A new holdout id assigns again.
	fresh := NewTask(nil, Config{Holdout: Holdout{ID: "h2", Share: -1}})
	fresh.View(st, &d)
	if d.ControlGroup {
		t.Fatal("a new holdout id kept the old group")
	}
}

func TestReshuffleUnderTheSameHoldoutIDIsRefused(t *testing.T) {
	stored := Holdout{ID: "h1", Salt: "a", Share: 0.05}
	cases := []struct {
		name    string
		current Holdout
		refused bool
	}{
		{"same configuration", Holdout{ID: "h1", Salt: "a", Share: 0.05}, false},
		{"another salt", Holdout{ID: "h1", Salt: "b", Share: 0.05}, true},
		{"another share", Holdout{ID: "h1", Salt: "a", Share: 0.10}, true},
		{"a new id", Holdout{ID: "h2", Salt: "b", Share: 0.10}, false},
		{"another start date only", Holdout{ID: "h1", Salt: "a", Share: 0.05, StartMs: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckHoldout(stored.ID, stored.Fingerprint(), c.current)
			if (err != nil) != c.refused {
				t.Fatalf("err = %v, refused want %v", err, c.refused)
			}
		})
	}
}

func TestOutcomeStateSurvivesHeaderMergeAndRestart(t *testing.T) {
	h := newOutcomeHarness(t, shortWindows())
	s := mkSIREN(6)
	h.must(contractEv(s, at(99, 0), ContractRenewal, "BASIC_SIM", 10_000))
	h.multiSite(s, 100)
	before := h.state(s).AppendBinary(nil)
	if err := h.mem.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := h.state(s).AppendBinary(nil); string(got) != string(before) {
		t.Fatal("restart changed the encoding")
	}
	// A header alone carries the eligibilities.
	hdr, err := decodeHeader(h.state(s).AppendHeader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr.elig) != 1 || hdr.mrr != 10_000 || !hdr.ho.set {
		t.Fatalf("header outcome state %+v", hdr.outcomeState)
	}
}

// TestPlanChangeUpdatesThePlanAndWithdrawsItsOffer: a PLAN_CHANGE is the
// SIREN's plan from its event time on, like a profile's: the offer selling
// the new product is withdrawn at once (an offer change, trigger INPUT),
// SD_WAN_UPSELL needs BASIC_SIM again, an older profile does not undo it, a
// newer one does, and the plan survives the state's encoding and a header
// alone (a replay decides the same).
func TestPlanChangeUpdatesThePlanAndWithdrawsItsOffer(t *testing.T) {
	h := newOutcomeHarness(t, shortWindows())
	s := mkSIREN(7)
	h.must(profileEv(s, at(100, 0), 20, "BASIC_SIM"))
	h.multiSite(s, 100)
	if v := h.view(s); !contains(v.Offers, OfferMultisiteVPN) {
		t.Fatalf("offers %v, want MULTISITE_VPN", v.Offers)
	}
	h.take(s)
	h.must(contractEv(s, at(101, 0), ContractPlanChange, "MULTISITE_VPN", 15_000))
	got := h.take(s)
	if len(got) != 1 || got[0].Trigger != TriggerInput || !contains(got[0].OffersRemoved, OfferMultisiteVPN) || contains(got[0].Offers, OfferMultisiteVPN) {
		t.Fatalf("after the plan change: %+v, want one offer change withdrawing MULTISITE_VPN", got)
	}
	if p := h.state(s).currentPlan(); p != "MULTISITE_VPN" {
		t.Fatalf("plan %q", p)
	}
	// An older profile arriving now does not undo the plan change.
	h.must(profileEv(s, at(100, 12), 20, "BASIC_SIM"))
	if p := h.state(s).currentPlan(); p != "MULTISITE_VPN" {
		t.Fatalf("an older profile set the plan back to %q", p)
	}
	// The plan is in the encoding and in a header alone.
	before := h.state(s).AppendBinary(nil)
	if err := h.mem.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := h.state(s).AppendBinary(nil); string(got) != string(before) {
		t.Fatal("restart changed the encoding")
	}
	hdr, err := decodeHeader(h.state(s).AppendHeader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.cplan != "MULTISITE_VPN" || hdr.cplanAt != at(101, 0) {
		t.Fatalf("header contract plan %q at %d", hdr.cplan, hdr.cplanAt)
	}
	// RENEWAL and TERMINATION do not set the plan; a newer profile does.
	h.must(contractEv(s, at(102, 0), ContractRenewal, "BASIC_SIM", 15_000))
	if p := h.state(s).currentPlan(); p != "MULTISITE_VPN" {
		t.Fatalf("a renewal set the plan to %q", p)
	}
	h.take(s)
	h.must(profileEv(s, at(103, 0), 20, "BASIC_SIM"))
	if v := h.view(s); h.state(s).currentPlan() != "BASIC_SIM" || !contains(v.Offers, OfferMultisiteVPN) {
		t.Fatalf("after a newer profile: plan %q, offers %v", h.state(s).currentPlan(), v.Offers)
	}
}

// TestSDWanConversionStopsTheSDWanUpsell: the spec's case — a SIREN that
// moved to SD_WAN is no longer offered SD_WAN_UPSELL (its product), which
// needs the plan BASIC_SIM.
func TestSDWanConversionStopsTheSDWanUpsell(t *testing.T) {
	task := NewTask(DefaultRules(), Config{})
	st := NewState(mkSIREN(8))
	e := evaluation{plan: "BASIC_SIM"}
	if o := task.offers(DataHungry, &e); o&offerSDWan == 0 {
		t.Fatal("a DATA_HUNGRY BASIC_SIM SIREN is not offered SD_WAN_UPSELL")
	}
	st.applyPlanChange(&Event{Kind: KindContractEvent, ContractType: ContractPlanChange, Plan: "SD_WAN", HasPlan: true, EventTime: at(1, 0)})
	e.plan = st.currentPlan()
	if o := task.offers(DataHungry, &e); o&offerSDWan != 0 {
		t.Fatalf("plan %q: still offered SD_WAN_UPSELL", e.plan)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
