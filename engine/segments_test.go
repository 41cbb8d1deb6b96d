package engine

import (
	"reflect"
	"strings"
	"testing"
)

// TestSegmentRules proves each enter/exit threshold of spec §6 on decide().
func TestSegmentRules(t *testing.T) {
	type ev = evaluation
	pct := func(p float64) ev { return ev{m: Metrics{IntensityPercentile: p, HasIntensityPercentile: true}} }
	vel := func(v float64) ev { return ev{m: Metrics{TrafficVelocity: v, HasTrafficVelocity: true}} }
	velWf := func(v, change float64) ev {
		e := vel(v)
		e.wfChange, e.hasWfChange = change, true
		return e
	}
	claims := func(n int32) ev { return ev{m: Metrics{Claims365d: n}} }
	expo := func(h float64) ev { return ev{m: Metrics{RecoveryExposureHours90d: h}} }
	postal := func(n int32) ev { return ev{m: Metrics{DistinctPostalCodes90d: n}} }
	with := func(a, b ev) ev {
		a.m.Claims365d += b.m.Claims365d
		a.m.RecoveryExposureHours90d += b.m.RecoveryExposureHours90d
		if b.m.HasIntensityPercentile {
			a.m.IntensityPercentile, a.m.HasIntensityPercentile = b.m.IntensityPercentile, true
		}
		if b.m.HasTrafficVelocity {
			a.m.TrafficVelocity, a.m.HasTrafficVelocity = b.m.TrafficVelocity, true
		}
		return a
	}
	tests := []struct {
		name string
		prev Segments
		e    ev
		want Segments
	}{
		{"DATA_HUNGRY enters at percentile 80", 0, pct(80), DataHungry},
		{"DATA_HUNGRY does not enter at 79.9", 0, pct(79.9), 0},
		{"DATA_HUNGRY is kept at 75", DataHungry, pct(75), DataHungry},
		{"DATA_HUNGRY leaves below 75", DataHungry, pct(74.9), 0},
		{"DATA_HUNGRY leaves when the percentile is null", DataHungry, ev{}, 0},

		{"HIDDEN_GROWTH enters at velocity 0.20 (workforce unknown)", 0, vel(0.20), HiddenGrowth},
		{"HIDDEN_GROWTH does not enter at 0.19", 0, vel(0.19), 0},
		{"HIDDEN_GROWTH is kept at 0.15", HiddenGrowth, vel(0.15), HiddenGrowth},
		{"HIDDEN_GROWTH leaves below 0.15", HiddenGrowth, vel(0.149), 0},
		{"HIDDEN_GROWTH leaves when velocity is null", HiddenGrowth, ev{}, 0},
		{"HIDDEN_GROWTH enters with flat workforce (5%)", 0, velWf(0.3, 0.05), HiddenGrowth},
		{"HIDDEN_GROWTH does not enter with workforce +6%", 0, velWf(0.3, 0.06), 0},
		{"HIDDEN_GROWTH leaves when workforce stops being flat", HiddenGrowth, velWf(0.3, 0.2), 0},
		{"HIDDEN_GROWTH does not enter with DATA_HUNGRY", 0, with(vel(0.5), pct(90)), DataHungry},
		{"HIDDEN_GROWTH leaves when DATA_HUNGRY enters", HiddenGrowth, with(vel(0.5), pct(90)), DataHungry},
		{"HIDDEN_GROWTH is kept when DATA_HUNGRY fails to enter", HiddenGrowth, with(vel(0.5), pct(79)), HiddenGrowth},

		{"SLA_SENSITIVE enters at 1 claim", 0, claims(1), SLASensitive},
		{"SLA_SENSITIVE is kept at 1 claim", SLASensitive, claims(1), SLASensitive},
		{"SLA_SENSITIVE leaves at 0 claims", SLASensitive, claims(0), 0},

		{"RECOVERY_EXPOSED enters at 4 h", 0, expo(4), RecoveryExposed},
		{"RECOVERY_EXPOSED does not enter at 3.9 h", 0, expo(3.9), 0},
		{"RECOVERY_EXPOSED is kept at 2 h", RecoveryExposed, expo(2), RecoveryExposed},
		{"RECOVERY_EXPOSED leaves below 2 h", RecoveryExposed, expo(1.9), 0},

		{"MULTI_SITE enters at 2 postal codes", 0, postal(2), MultiSite},
		{"MULTI_SITE does not enter at 1", 0, postal(1), 0},
		{"MULTI_SITE leaves at 1", MultiSite, postal(1), 0},

		{"CHURN_RISK from SLA_SENSITIVE and RECOVERY_EXPOSED", 0, with(claims(1), expo(4)), ChurnRisk | SLASensitive | RecoveryExposed},
		{"CHURN_RISK from DATA_HUNGRY and RECOVERY_EXPOSED", 0, with(pct(85), expo(4)), ChurnRisk | DataHungry | RecoveryExposed},
		{"no CHURN_RISK from RECOVERY_EXPOSED alone", 0, expo(10), RecoveryExposed},
		{"no CHURN_RISK from SLA_SENSITIVE alone", 0, claims(3), SLASensitive},
		{"CHURN_RISK is kept while exposure is above exit", ChurnRisk | SLASensitive | RecoveryExposed, with(claims(1), expo(3)), ChurnRisk | SLASensitive | RecoveryExposed},
		{"CHURN_RISK leaves with RECOVERY_EXPOSED", ChurnRisk | SLASensitive | RecoveryExposed, with(claims(1), expo(1)), SLASensitive},
		{"CHURN_RISK leaves when both SLA and DATA_HUNGRY fail", ChurnRisk | SLASensitive | RecoveryExposed, expo(5), RecoveryExposed},
	}
	task := NewTask(RulesV1(), Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			if got := task.decide(tt.prev, &e); got != tt.want {
				t.Fatalf("decide(%v) = %v, want %v", tt.prev, got, tt.want)
			}
		})
	}
}

func TestRulesFileThresholdsApply(t *testing.T) {
	r, err := ParseRules(strings.NewReader("version: strict-2\nrecovery_exposed: {enter: 10, exit: 8}\noffers: {golden_hour_repair_min_breaches: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, r)
	s := mkSIREN(61)
	h.must(outageResolvedEv(s, "o", at(d0, 9), at(d0, 0), ""))
	if v := h.view(s); v.Segments != 0 {
		t.Fatalf("9 h exposure entered with enter=10: %v", v.Segments)
	}
	h.must(outageResolvedEv(s, "p", at(d0, 12), at(d0, 11), ""))
	d := h.take(s)
	if len(d) != 1 || d[0].Added != RecoveryExposed || d[0].RulesVersion != "strict-2" ||
		!reflect.DeepEqual(d[0].Reasons, []Reason{{"RECOVERY_EXPOSED", "recovery_exposure_hours_90d", 10, 10}}) {
		t.Fatalf("decisions %+v", d)
	}
}

// population feeds n SIRENs on day d0, SIREN i with intensity i GB/SIM.
func population(h *harness, n int) []string {
	var ss []string
	for i := 0; i < n; i++ {
		s := mkSIREN(1000 + i)
		ss = append(ss, s)
		h.must(usageEv(s, at(d0, 8), "75001", int64(i)*1e9, 1))
	}
	return ss
}

func TestPercentileNeedsMinPopulation(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		wantPct bool
		wantDH  int
	}{
		{"99 scored SIRENs give a null percentile", 99, false, 0},
		{"100 scored SIRENs give percentiles; top 20 are DATA_HUNGRY", 100, true, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ss := population(h, tt.n)
			h.out = nil
			h.tick(at(d0+1, 0)) // day change: snapshot of the n intensities
			if h.task().SnapshotSize() != tt.n {
				t.Fatalf("snapshot of %d", h.task().SnapshotSize())
			}
			dh := 0
			for _, d := range h.out {
				if d.Added.Has(DataHungry) {
					dh++
				}
			}
			if dh != tt.wantDH {
				t.Fatalf("%d DATA_HUNGRY decisions, want %d", dh, tt.wantDH)
			}
			for i, s := range ss {
				m := h.view(s).Metrics
				if m.HasIntensityPercentile != tt.wantPct {
					t.Fatalf("SIREN %d: has percentile %v", i, m.HasIntensityPercentile)
				}
				// percentile = 100 * #(values < x) / n = i for n = 100.
				if tt.wantPct && m.IntensityPercentile != float64(i) {
					t.Fatalf("SIREN %d: percentile %v", i, m.IntensityPercentile)
				}
			}
			if tt.wantDH == 0 {
				return
			}
			// SIREN 80 enters at exactly 80; 79 does not.
			if !h.view(ss[80]).Segments.Has(DataHungry) || h.view(ss[79]).Segments.Has(DataHungry) {
				t.Fatal("threshold 80")
			}
			v := h.view(ss[99])
			want := []Reason{{"DATA_HUNGRY", "intensity_percentile", 99, 75}}
			if !reflect.DeepEqual(v.Reasons, want) {
				t.Fatalf("reasons %+v", v.Reasons)
			}
		})
	}
}

func TestDataHungryOffersAndChurnRisk(t *testing.T) {
	h := newHarness(t, nil)
	ss := population(h, 100)
	top := ss[95]
	h.must(profileEv(top, at(d0, 9), -1, "BASIC_SIM"))
	h.tick(at(d0+1, 0))
	v := h.view(top)
	if v.Segments != DataHungry || !reflect.DeepEqual(v.Offers, []string{"SD_WAN_UPSELL"}) {
		t.Fatalf("view %+v", v)
	}
	h.take(top)
	// A 5 h outage adds RECOVERY_EXPOSED and, with DATA_HUNGRY, CHURN_RISK.
	h.must(outageResolvedEv(top, "o", at(d0+1, 6), at(d0+1, 1), "75001"))
	d := h.take(top)
	if len(d) != 1 {
		t.Fatalf("decisions %+v", d)
	}
	want := []Reason{
		{"CHURN_RISK", "intensity_percentile", 95, 75},
		{"CHURN_RISK", "recovery_exposure_hours_90d", 5, 4},
		{"DATA_HUNGRY", "intensity_percentile", 95, 75},
		{"RECOVERY_EXPOSED", "recovery_exposure_hours_90d", 5, 4},
	}
	if d[0].Added != ChurnRisk|RecoveryExposed || d[0].Previous != DataHungry || !reflect.DeepEqual(d[0].Reasons, want) {
		t.Fatalf("decision %+v", d[0])
	}
	if !reflect.DeepEqual(d[0].Offers, []string{"GOLDEN_HOUR_REPAIR", "SD_WAN_UPSELL"}) {
		t.Fatalf("offers %v", d[0].Offers)
	}
}

func TestSLAChurnDecisionReasonsOffersAndIDs(t *testing.T) {
	h := newHarness(t, noGoldenHourOffer())
	s := mkSIREN(71)
	h.must(
		profileEv(s, at(d0, 8), 20, "BASIC_SIM"),
		outageStartEv(s, "o1", at(d0, 9), "75001"),
		outageResolvedEv(s, "o1", at(d0, 14), -1, "75001"),
	)
	// The outage's threshold timer (start + 4 h) enters RECOVERY_EXPOSED
	// before its RESOLVED arrives.
	d := h.take(s)
	if len(d) != 1 || d[0].EventID != s+"-1" || d[0].Seq != 1 || d[0].Added != RecoveryExposed ||
		d[0].Trigger != TriggerTimer || d[0].EventTime != at(d0, 13) {
		t.Fatalf("first decision %+v", d)
	}
	h.must(claimEv(s, at(d0, 15), 50_000, "o1"))
	d = h.take(s)
	if len(d) != 1 {
		t.Fatalf("decisions %+v", d)
	}
	got := d[0]
	want := Decision{
		EventID: s + "-2", SIREN: s, Seq: 2, EventTime: at(d0, 15),
		Segments: ChurnRisk | RecoveryExposed | SLASensitive, Previous: RecoveryExposed, Added: ChurnRisk | SLASensitive,
		Metrics: Metrics{HasDigitalIntensity: true, IntensityBasis: "workforce", // 0 bytes / 20 employees
			Workforce: 20, HasWorkforce: true, Outages90d: 1, RecoveryExposureHours90d: 5, MaxRecoveryHours90d: 5,
			Claims365d: 1, ClaimAmount365dCents: 50_000, DistinctPostalCodes90d: 1, GoldenHourBreaches90d: 1,
			ClaimsPerOutage365d: 1, HasClaimsPerOutage365d: true, ClaimHoursRatio365d: 2, HasClaimHoursRatio365d: true}, // 1 claim, 1 outage of 5 h
		Reasons: []Reason{
			{"CHURN_RISK", "claims_365d", 1, 1},
			{"CHURN_RISK", "recovery_exposure_hours_90d", 5, 2}, // RECOVERY_EXPOSED kept: exit threshold
			{"RECOVERY_EXPOSED", "recovery_exposure_hours_90d", 5, 2},
			{"SLA_SENSITIVE", "claims_365d", 1, 1},
		},
		Offers:       []string{"GOLDEN_HOUR_REPAIR", "LOGICAL_VIP_BACKUP"},
		ControlGroup: DefaultRules().InControlGroup(s),
		RulesVersion: RulesV1Version,
		// The previous event (RECOVERY_EXPOSED alone) offered GOLDEN_HOUR_REPAIR.
		OffersAdded: []string{"LOGICAL_VIP_BACKUP"},
		Trigger:     TriggerInput,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decision\n got %+v\nwant %+v", got, want)
	}
	// Workforce 50 is not < 50: LOGICAL_VIP_BACKUP goes, segments stay, and
	// that change of offers alone is an event.
	h.must(profileEv(s, at(d0, 16), 50, "BASIC_SIM"))
	d = h.take(s)
	if len(d) != 1 || d[0].Seq != 3 || d[0].Added != 0 || d[0].Removed != 0 || d[0].Trigger != TriggerInput ||
		!reflect.DeepEqual(d[0].Offers, []string{"GOLDEN_HOUR_REPAIR"}) ||
		!reflect.DeepEqual(d[0].OffersRemoved, []string{"LOGICAL_VIP_BACKUP"}) || len(d[0].OffersAdded) != 0 {
		t.Fatalf("offer change %+v", d)
	}
	if v := h.view(s); !reflect.DeepEqual(v.Offers, []string{"GOLDEN_HOUR_REPAIR"}) || v.Seq != 3 || v.EventID != s+"-3" {
		t.Fatalf("view %+v", v)
	}
}

func TestViewDoesNotMutate(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(81)
	h.must(usageEv(s, at(d0, 1), "A", 1e9, 1), usageEv(s, at(d0, 2), "B", 1e9, 1))
	before := h.state(s).AppendBinary(nil)
	var d Decision
	h.task().View(h.state(s), &d)
	if string(h.state(s).AppendBinary(nil)) != string(before) || d.Segments != MultiSite || d.Added != 0 || d.Previous != MultiSite {
		t.Fatalf("view %+v", d)
	}
	// A new SIREN has an empty view.
	h.task().View(NewState(mkSIREN(82)), &d)
	if d.EventID != "" || d.Seq != 0 || d.Segments != 0 || len(d.Reasons) != 0 {
		t.Fatalf("empty view %+v", d)
	}
}

func TestEvaluateWithoutChangeMutatesNothing(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(83)
	h.must(usageEv(s, at(d0, 1), "A", 1e9, 1))
	h.tick(at(d0+200, 0)) // far later: everything is stale but Evaluate must not prune
	before := h.state(s).AppendBinary(nil)
	var d Decision
	if h.task().Evaluate(h.state(s), &d) || string(h.state(s).AppendBinary(nil)) != string(before) || d.SIREN != "" {
		t.Fatal("Evaluate mutated")
	}
}
