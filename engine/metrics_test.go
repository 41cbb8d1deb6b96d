package engine

import (
	"reflect"
	"testing"
)

func TestTrafficWindowsAndIntensity(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(11)
	h.must(
		usageEv(s, at(d0-60, 1), "A", 1e9, 10),  // outside both windows
		usageEv(s, at(d0-59, 1), "A", 2e9, 10),  // prev
		usageEv(s, at(d0-30, 23), "A", 4e9, 10), // prev (last day)
		usageEv(s, at(d0-29, 0), "A", 8e9, 3),   // 30d (first day)
		usageEv(s, at(d0, 5), "A", 16e9, 2),     // 30d
		usageEv(s, at(d0, 6), "A", 0, -1),       // no sims reported
	)
	m := h.view(s).Metrics
	want := Metrics{
		Traffic30dBytes: 24e9, TrafficPrev30dBytes: 6e9,
		TrafficVelocity: 3, HasTrafficVelocity: true, // 24/6 - 1
		DigitalIntensity: 8, HasDigitalIntensity: true, IntensityBasis: "active_sims", // 24 GB / max 3 SIMs over 30 days
		DistinctPostalCodes90d: 1,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("metrics\n got %+v\nwant %+v", m, want)
	}
	// A workforce from the latest profile replaces the SIM fallback.
	h.must(profileEv(s, at(d0, 7), 12, "SD_WAN"))
	m = h.view(s).Metrics
	if m.DigitalIntensity != 2 || m.IntensityBasis != "workforce" || !m.HasWorkforce || m.Workforce != 12 {
		t.Fatalf("workforce basis: %+v", m)
	}
	// An older profile does not replace the latest one.
	h.must(profileEv(s, at(d0, 6), 24, "BASIC_SIM"))
	if m = h.view(s).Metrics; m.Workforce != 12 || h.state(s).plan != "SD_WAN" {
		t.Fatalf("older profile won: %+v", m)
	}
}

func TestIntensityNullWithoutWorkforceOrSIMs(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(12)
	h.must(usageEv(s, at(d0, 1), "A", 5e9, -1), profileEv(s, at(d0, 2), -1, "BASIC_SIM"))
	m := h.view(s).Metrics
	if m.HasDigitalIntensity || m.IntensityBasis != "" || m.HasIntensityPercentile || m.HasTrafficVelocity || m.HasWorkforce {
		t.Fatalf("want null intensity/velocity/workforce: %+v", m)
	}
	if v, ok := h.task().intensity(h.state(s)); ok || v != 0 {
		t.Fatal("Intensity must be null")
	}
	// workforce 0 is known but cannot divide: fall back to SIMs.
	h.must(profileEv(s, at(d0, 3), 0, "BASIC_SIM"), usageEv(s, at(d0, 4), "A", 5e9, 5))
	if m := h.view(s).Metrics; m.IntensityBasis != "active_sims" || m.DigitalIntensity != 2 || !m.HasWorkforce {
		t.Fatalf("%+v", m)
	}
}

func TestHiddenGrowth(t *testing.T) {
	type prof struct {
		day int32
		wf  int32
	}
	tests := []struct {
		name       string
		firstDay   int32
		prev, cur  int64
		profiles   []prof
		wantVel    float64
		wantHasVel bool
		wantIn     bool
		wantChange float64 // reason workforce_change_60d, when in and known
	}{
		{"20% monthly growth with unknown workforce enters", d0 - 59, 100e6, 120e6, nil, 0.2, true, true, -1},
		{"8% monthly growth stays out", d0 - 59, 100e6, 108e6, nil, 0.08, true, false, 0},
		{"first usage after D-59 gives null velocity", d0 - 58, 100e6, 200e6, nil, 0, false, false, 0},
		{"prev below min_prev_bytes gives null velocity", d0 - 59, 33e6, 120e6, nil, 0, false, false, 0},
		{"flat headcount (100 to 104) with 20% growth enters", d0 - 59, 100e6, 120e6, []prof{{d0 - 80, 100}, {d0 - 10, 104}}, 0.2, true, true, 0.04},
		{"headcount changing exactly 5% is flat", d0 - 59, 100e6, 120e6, []prof{{d0 - 80, 100}, {d0 - 10, 105}}, 0.2, true, true, 0.05},
		{"growing headcount (10 to 12) with 20% growth stays out", d0 - 59, 100e6, 120e6, []prof{{d0 - 70, 10}, {d0 - 10, 12}}, 0.2, true, false, 0},
		{"headcount change before the 60-day window does not count", d0 - 59, 100e6, 120e6, []prof{{d0 - 100, 10}, {d0 - 80, 20}, {d0 - 30, 20}}, 0.2, true, true, 0},
		{"headcount drop inside the window is not flat", d0 - 59, 100e6, 120e6, []prof{{d0 - 59, 20}, {d0 - 1, 10}}, 0.2, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One usage record a day from firstDay: tt.prev bytes over days
			// D-59..D-30, tt.cur over D-29..D (D = d0); profiles in time order.
			s := mkSIREN(21)
			h2 := newHarness(t, nil)
			h2.tick(at(d0-120, 0))
			pi := 0
			for d := d0 - 120; d <= d0; d++ {
				for pi < len(tt.profiles) && tt.profiles[pi].day == d {
					h2.must(profileEv(s, at(d, 1), tt.profiles[pi].wf, "BASIC_SIM"))
					pi++
				}
				if d >= tt.firstDay {
					b := tt.prev
					if d >= d0-29 {
						b = tt.cur
					}
					h2.must(usageEv(s, at(d, 10), "75001", b, -1))
				} else {
					h2.tick(at(d, 10))
				}
			}
			v := h2.view(s)
			m := v.Metrics
			if m.HasTrafficVelocity != tt.wantHasVel || m.TrafficVelocity != tt.wantVel {
				t.Fatalf("velocity = %v (has %v), want %v (has %v); 30d %d prev %d", m.TrafficVelocity, m.HasTrafficVelocity, tt.wantVel, tt.wantHasVel, m.Traffic30dBytes, m.TrafficPrev30dBytes)
			}
			if got := v.Segments&HiddenGrowth != 0; got != tt.wantIn {
				t.Fatalf("HIDDEN_GROWTH = %v, want %v", got, tt.wantIn)
			}
			if tt.wantIn {
				want := []Reason{{"HIDDEN_GROWTH", "traffic_velocity", 0.2, 0.15}}
				if tt.wantChange >= 0 {
					want = append(want, Reason{"HIDDEN_GROWTH", "workforce_change_60d", tt.wantChange, 0.05})
				}
				if !reflect.DeepEqual(v.Reasons, want) {
					t.Fatalf("reasons = %+v, want %+v", v.Reasons, want)
				}
				if !reflect.DeepEqual(v.Offers, []string{"GROWTH_PARTNERSHIP"}) {
					t.Fatalf("offers = %v", v.Offers)
				}
			}
		})
	}
}

func TestOutagesAndRecoveryExposure(t *testing.T) {
	s := mkSIREN(31)
	tests := []struct {
		name     string
		evs      []Event
		tickTo   int64 // 0: none
		wantM    Metrics
		wantSegs Segments
	}{
		{"short outage (1 h) is not exposed",
			[]Event{outageStartEv(s, "o1", at(d0, 10), "A"), outageResolvedEv(s, "o1", at(d0, 11), -1, "A")}, 0,
			Metrics{Outages90d: 1, RecoveryExposureHours90d: 1, MaxRecoveryHours90d: 1, DistinctPostalCodes90d: 1}, 0},
		{"long outage (5 h) enters RECOVERY_EXPOSED",
			[]Event{outageStartEv(s, "o1", at(d0, 9), "A"), outageResolvedEv(s, "o1", at(d0, 14), -1, "A")}, 0,
			Metrics{Outages90d: 1, RecoveryExposureHours90d: 5, MaxRecoveryHours90d: 5, DistinctPostalCodes90d: 1, GoldenHourBreaches90d: 1}, RecoveryExposed},
		{"started_at on RESOLVED gives the start without a STARTED",
			[]Event{outageResolvedEv(s, "o1", at(d0, 16), at(d0, 10), "")}, 0,
			Metrics{Outages90d: 1, RecoveryExposureHours90d: 6, MaxRecoveryHours90d: 6, GoldenHourBreaches90d: 1}, RecoveryExposed},
		{"two short outages add up (2 h + 2 h)",
			[]Event{outageResolvedEv(s, "o1", at(d0, 3), at(d0, 1), ""), outageResolvedEv(s, "o2", at(d0, 8), at(d0, 6), "")}, 0,
			Metrics{Outages90d: 2, RecoveryExposureHours90d: 4, MaxRecoveryHours90d: 2, GoldenHourBreaches90d: 2}, RecoveryExposed},
		{"still-open outage counts hours so far at the day-change sweep",
			[]Event{outageStartEv(s, "o1", at(d0, 10), "A")}, at(d0+1, 0),
			Metrics{Outages90d: 1, OpenOutages: 1, RecoveryExposureHours90d: 14, MaxRecoveryHours90d: 14, DistinctPostalCodes90d: 1, GoldenHourBreaches90d: 1}, RecoveryExposed},
		{"late STARTED after its RESOLVED is a no-op",
			[]Event{outageResolvedEv(s, "o1", at(d0, 11), at(d0, 10), ""), outageStartEv(s, "o1", at(d0, 10), "")}, 0,
			Metrics{Outages90d: 1, RecoveryExposureHours90d: 1, MaxRecoveryHours90d: 1}, 0},
		{"a second RESOLVED of the same outage is a no-op",
			[]Event{outageResolvedEv(s, "o1", at(d0, 11), at(d0, 10), ""), outageResolvedEv(s, "o1", at(d0, 20), at(d0, 1), "")}, 0,
			Metrics{Outages90d: 1, RecoveryExposureHours90d: 1, MaxRecoveryHours90d: 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.tick(at(d0, 0))
			h.must(tt.evs...)
			if tt.tickTo != 0 {
				h.tick(tt.tickTo)
			}
			v := h.view(s)
			// The SLA rates have their own test (TestSLARates).
			v.Metrics.ClaimsPerOutage365d, v.Metrics.HasClaimsPerOutage365d = 0, false
			v.Metrics.ClaimHoursRatio365d, v.Metrics.HasClaimHoursRatio365d = 0, false
			if !reflect.DeepEqual(v.Metrics, tt.wantM) {
				t.Fatalf("metrics\n got %+v\nwant %+v", v.Metrics, tt.wantM)
			}
			if v.Segments != tt.wantSegs {
				t.Fatalf("segments = %v, want %v", v.Segments, tt.wantSegs)
			}
			if tt.wantSegs.Has(RecoveryExposed) && !reflect.DeepEqual(v.Offers, []string{"GOLDEN_HOUR_REPAIR"}) {
				t.Fatalf("offers = %v", v.Offers)
			}
		})
	}
}

func TestRecoveryExposureDecaysAfter90DaysWithoutEvents(t *testing.T) {
	h := newHarness(t, noGoldenHourOffer())
	s := mkSIREN(32)
	h.must(outageStartEv(s, "o1", at(d0, 9), "A"), outageResolvedEv(s, "o1", at(d0, 14), -1, "A"))
	if d := h.take(s); len(d) != 1 || d[0].Added != RecoveryExposed || d[0].Seq != 1 || d[0].EventID != s+"-1" {
		t.Fatalf("decisions = %+v", d)
	}
	h.tick(at(d0+89, 0)) // window D-89..D still holds day d0
	if d := h.take(s); len(d) != 0 {
		t.Fatalf("early decay: %+v", d)
	}
	h.tick(at(d0+90, 0))
	d := h.take(s)
	if len(d) != 1 || d[0].Removed != RecoveryExposed || d[0].Segments != 0 || d[0].Seq != 2 || d[0].EventTime != at(d0+90, 0) {
		t.Fatalf("decisions = %+v", d)
	}
	if d[0].Metrics.Outages90d != 0 || d[0].Metrics.RecoveryExposureHours90d != 0 || len(d[0].Reasons) != 0 || len(d[0].Offers) != 0 {
		t.Fatalf("metrics = %+v", d[0])
	}
}

func TestClaims(t *testing.T) {
	tests := []struct {
		name       string
		outageID   string
		wantClaims int32
		wantAmount int64
		wantSLA    bool
	}{
		{"claim with outage_id enters SLA_SENSITIVE", "o1", 1, 12_345, true},
		{"claim without outage_id is not counted", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			s := mkSIREN(41)
			h.must(claimEv(s, at(d0, 10), 12_345, tt.outageID))
			v := h.view(s)
			if v.Metrics.Claims365d != tt.wantClaims || v.Metrics.ClaimAmount365dCents != tt.wantAmount {
				t.Fatalf("claims = %d / %d", v.Metrics.Claims365d, v.Metrics.ClaimAmount365dCents)
			}
			if got := v.Segments.Has(SLASensitive); got != tt.wantSLA {
				t.Fatalf("SLA_SENSITIVE = %v", got)
			}
			if !tt.wantSLA {
				return
			}
			// Leaves when the claim is older than 365 days.
			h.tick(at(d0+364, 0))
			if !h.view(s).Segments.Has(SLASensitive) {
				t.Fatal("left too early")
			}
			h.take(s)
			h.tick(at(d0+365, 0))
			if d := h.take(s); len(d) != 1 || d[0].Removed != SLASensitive {
				t.Fatalf("decisions = %+v", d)
			}
		})
	}
}

func TestMultiSite(t *testing.T) {
	tests := []struct {
		name  string
		evs   func(s string) []Event
		want  int32
		multi bool
	}{
		{"two lines at one postal code are not multi-site", func(s string) []Event {
			a, b := usageEv(s, at(d0, 1), "75001", 1, 1), usageEv(s, at(d0, 2), "75001", 1, 1)
			a.SiteID, b.SiteID = "s1", "s2"
			return []Event{a, b}
		}, 1, false},
		{"two postal codes are multi-site", func(s string) []Event {
			return []Event{usageEv(s, at(d0, 1), "75001", 1, 1), usageEv(s, at(d0, 2), "69001", 1, 1)}
		}, 2, true},
		{"postal codes of outage events count", func(s string) []Event {
			return []Event{usageEv(s, at(d0, 1), "75001", 1, 1), outageStartEv(s, "o", at(d0, 2), "13001")}
		}, 2, true},
		{"empty postal code is not a site", func(s string) []Event {
			return []Event{usageEv(s, at(d0, 1), "75001", 1, 1), usageEv(s, at(d0, 2), "", 1, 1)}
		}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			s := mkSIREN(51)
			h.must(tt.evs(s)...)
			v := h.view(s)
			if v.Metrics.DistinctPostalCodes90d != tt.want || v.Segments.Has(MultiSite) != tt.multi {
				t.Fatalf("postal codes = %d, segments %v", v.Metrics.DistinctPostalCodes90d, v.Segments)
			}
			if !tt.multi {
				return
			}
			if !reflect.DeepEqual(v.Offers, []string{"MULTISITE_VPN"}) ||
				!reflect.DeepEqual(v.Reasons, []Reason{{"MULTI_SITE", "distinct_postal_codes_90d", 2, 2}}) {
				t.Fatalf("view = %+v", v)
			}
			// One site keeps reporting, the other goes silent: decays after 90 days.
			h.take(s)
			for d := d0 + 1; d <= d0+89; d++ {
				h.must(usageEv(s, at(d, 1), "75001", 1, 1))
			}
			for _, d := range h.take(s) {
				if d.Removed.Has(MultiSite) {
					t.Fatalf("early decay %+v", d)
				}
			}
			h.must(usageEv(s, at(d0+90, 1), "75001", 1, 1))
			if d := h.take(s); len(d) != 1 || !d[0].Removed.Has(MultiSite) || d[0].Metrics.DistinctPostalCodes90d != 1 {
				t.Fatalf("decisions %+v", d)
			}
		})
	}
}
