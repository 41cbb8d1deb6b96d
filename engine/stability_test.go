package engine

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// Tests of rules default-2 (stable segments, stability.go and dwell.go).

const gb = int64(1_000_000_000)

// dailyUsage feeds siren one usage event a day at noon, days from..to
// (relative to d0), bytes(day) each (sims unknown).
func dailyUsage(h *harness, siren string, from, to int32, bytes func(day int32) int64) {
	h.tb.Helper()
	for d := from; d <= to; d++ {
		h.must(usageEv(siren, at(d0+d, 12), "75001", bytes(d), -1))
	}
}

// added returns the day (relative to d0) of the first decision of siren
// that adds seg, and its decision; ok false when none does.
func added(ds []Decision, seg Segments) (int32, Decision, bool) {
	for _, d := range ds {
		if d.Added&seg != 0 {
			return Day(d.EventTime) - d0, d, true
		}
	}
	return 0, Decision{}, false
}

func hasReason(d Decision, seg, metric string) (Reason, bool) {
	for _, r := range d.Reasons {
		if r.Segment == seg && r.Metric == metric {
			return r, true
		}
	}
	return Reason{}, false
}

func TestHiddenGrowthSpikeDoesNotEnter(t *testing.T) {
	s := mkSIREN(2201)
	spike := func(d int32) int64 {
		if d == 70 {
			return 200 * gb
		}
		return 10 * gb
	}
	// v1: the spike day's own usage event lifts the 30-day velocity to
	// 0.63: HIDDEN_GROWTH at once.
	v1 := newHarness(t, RulesV1())
	v1.must(profileEv(s, at(d0, 8), 10, ""))
	dailyUsage(v1, s, 0, 110, spike)
	if day, _, ok := added(v1.take(s), HiddenGrowth); !ok || day != 70 {
		t.Fatalf("v1: HIDDEN_GROWTH entered on day %d (%v), want on the spike day 70", day, ok)
	}
	// v2: the velocity stays above 0.20 for 30 days, but the days before
	// the spike fail, and once the spike is older than 7 days the last 7
	// days carry no rise.
	v2 := newHarness(t, DefaultRules())
	v2.must(profileEv(s, at(d0, 8), 10, ""))
	dailyUsage(v2, s, 0, 110, spike)
	if day, _, ok := added(v2.take(s), HiddenGrowth); ok {
		t.Fatalf("v2: a one-day spike entered HIDDEN_GROWTH on day %d", day)
	}
}

func TestHiddenGrowthSustainedRiseEnters(t *testing.T) {
	s := mkSIREN(2202)
	rise := func(d int32) int64 {
		if d >= 70 {
			return 20 * gb
		}
		return 10 * gb
	}
	v1 := newHarness(t, RulesV1())
	v1.must(profileEv(s, at(d0, 8), 10, ""))
	dailyUsage(v1, s, 0, 100, rise)
	if day, _, ok := added(v1.take(s), HiddenGrowth); !ok || day != 75 {
		t.Fatalf("v1: entered on day %d (%v), want 75 (6 days of the rise in the partial window)", day, ok)
	}
	// v2: the completed-days velocity reaches 0.20 with 6 risen days, at
	// the windows ending on day 75; it must hold for the 7 completed days
	// 75..81, so the day change to day 82 enters.
	v2 := newHarness(t, DefaultRules())
	v2.must(profileEv(s, at(d0, 8), 10, ""))
	dailyUsage(v2, s, 0, 100, rise)
	day, d, ok := added(v2.take(s), HiddenGrowth)
	if !ok || day != 82 || d.Trigger != TriggerDayChange {
		t.Fatalf("v2: entered on day %d (%v, %s), want the day change to day 82", day, ok, d.Trigger)
	}
	if r, ok := hasReason(d, "HIDDEN_GROWTH", MetricDaysSustained); !ok || r.Value != 7 || r.Threshold != 7 {
		t.Errorf("reasons %+v: want days_sustained=7 threshold=7", d.Reasons)
	}
	// windows D-30..D-1 = days 52..81: 18 days at 10 GB, 12 at 20 GB
	if got := d.Metrics.Traffic30dBytes; got != 18*10*gb+12*20*gb {
		t.Errorf("traffic_30d = %d, want the completed days 52..81", got)
	}
	// The entry day is decision state, in the header extension.
	st := v2.state(s)
	if day, ok := st.entered.get(HiddenGrowth); !ok || day != d0+82 {
		t.Fatalf("entered = %+v", st.entered)
	}
	back, err := UnmarshalState(s, st.AppendBinary(nil))
	if err != nil || back.entered != st.entered {
		t.Fatalf("entered after a round trip = %+v (%v), want %+v", back.entered, err, st.entered)
	}
}

// dwellPopulation: five SIRENs ranked by their usage on day 0 (wf 1 each);
// x is the top one (percentile 80 from day 1 on).
func dwellPopulation(t *testing.T, r *Rules) (*harness, string, []string) {
	h := newHarness(t, r)
	x := mkSIREN(2300)
	var others []string
	for i := range 4 {
		p := mkSIREN(2301 + i)
		others = append(others, p)
		h.must(profileEv(p, at(d0, 1), 1, ""), usageEv(p, at(d0, 2), "75001", int64(i+1)*10*gb, -1))
	}
	h.must(profileEv(x, at(d0, 1), 1, ""), usageEv(x, at(d0, 2), "75001", 100*gb, -1))
	return h, x, others
}

func stableRules(t *testing.T, extra string) *Rules {
	t.Helper()
	r, err := ParseRules(strings.NewReader(string(DefaultRulesYAML()) + extra))
	if err != nil {
		t.Fatal(err)
	}
	r.MinPopulation, r.MinHistoryDays = 5, 0
	return r
}

func TestMinDwellDaysHoldsDataHungry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rules     *Rules
		leavesDay int32
	}{
		{"v1 leaves the next day", func() *Rules { r := RulesV1(); r.MinPopulation = 5; return r }(), 2},
		{"v2 holds 7 days", stableRules(t, ""), 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, x, others := dwellPopulation(t, tc.rules)
			h.tick(at(d0+1, 1))
			if day, _, ok := added(h.take(x), DataHungry); !ok || day != 1 {
				t.Fatalf("DATA_HUNGRY entered on day %d (%v), want 1", day, ok)
			}
			// Two others overtake x: its percentile drops to 40.
			h.must(usageEv(others[0], at(d0+1, 3), "75001", 500*gb, -1), usageEv(others[1], at(d0+1, 3), "75001", 500*gb, -1))
			var leftOn int32 = -1
			for d := int32(2); d <= 10 && leftOn < 0; d++ {
				h.tick(at(d0+d, 1))
				for _, dec := range h.take(x) {
					if dec.Removed&DataHungry != 0 {
						leftOn = d
					}
				}
				if leftOn < 0 && d >= 2 {
					v := h.view(x)
					r, ok := hasReason(v, "DATA_HUNGRY", MetricDaysInSegment)
					if !ok || r.Value != float64(d-1) || r.Threshold != 7 {
						t.Fatalf("day %d: held without the reason days_in_segment=%d threshold=7: %+v", d, d-1, v.Reasons)
					}
				}
			}
			if leftOn != tc.leavesDay {
				t.Fatalf("left DATA_HUNGRY on day %d, want %d", leftOn, tc.leavesDay)
			}
		})
	}
}

func TestMinDwellDaysNullMetricStillLeaves(t *testing.T) {
	h, x, others := dwellPopulation(t, stableRules(t, ""))
	h.tick(at(d0+1, 1))
	h.must(usageEv(others[0], at(d0+1, 3), "75001", 500*gb, -1), usageEv(others[1], at(d0+1, 3), "75001", 500*gb, -1))
	h.tick(at(d0+2, 1))
	if !h.view(x).Segments.Has(DataHungry) {
		t.Fatal("dwell did not hold DATA_HUNGRY")
	}
	h.take(x)
	// The workforce becomes unknown and usage carries no active_sims:
	// digital_intensity, and so the percentile, is null.
	h.must(profileEv(x, at(d0+2, 5), -1, ""))
	ds := h.take(x)
	if len(ds) != 1 || ds[0].Removed&DataHungry == 0 || ds[0].Metrics.HasIntensityPercentile {
		t.Fatalf("decisions %+v: want DATA_HUNGRY to leave at once on a null percentile", ds)
	}
}

func TestMinDwellDaysDecide(t *testing.T) {
	task := NewTask(DefaultRules(), Config{})
	st := NewState(mkSIREN(2400))
	st.segs = HiddenGrowth
	st.entered = task.nextEntered(enteredDays{}, 0, HiddenGrowth, d0)
	velocity := func(v float64) Metrics { return Metrics{TrafficVelocity: v, HasTrafficVelocity: true} }
	tests := []struct {
		name string
		day  int32
		m    Metrics
		want Segments
	}{
		{"held below the exit threshold within 7 days", d0 + 6, velocity(0.01), HiddenGrowth},
		{"leaves after 7 days", d0 + 7, velocity(0.01), 0},
		{"a null velocity leaves within the dwell", d0 + 1, Metrics{}, 0},
		{"DATA_HUNGRY takes over within the dwell", d0 + 1, Metrics{TrafficVelocity: 0.01, HasTrafficVelocity: true, IntensityPercentile: 95, HasIntensityPercentile: true}, DataHungry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := evaluation{m: tt.m, st: st, day: tt.day}
			if got := task.decide(HiddenGrowth, &e); got != tt.want {
				t.Fatalf("decide = %v, want %v", got, tt.want)
			}
		})
	}
	// Held without an entry day (entered under rules without dwell, e.g.
	// before the rollout of default-2): nothing holds it.
	st.entered = enteredDays{}
	e := evaluation{m: velocity(0.01), st: st, day: d0 + 1}
	if got := task.decide(HiddenGrowth, &e); got != 0 {
		t.Fatalf("decide without entry day = %v, want none", got)
	}
}

func TestEnteredDaysEncoding(t *testing.T) {
	task := NewTask(DefaultRules(), Config{})
	st := NewState(mkSIREN(2401))
	st.seq, st.segs = 3, DataHungry|HiddenGrowth|MultiSite
	st.entered = task.nextEntered(enteredDays{}, 0, st.segs, d0+5)
	if st.entered.set != DataHungry|HiddenGrowth {
		t.Fatalf("entered %v: only segments with min_dwell_days get an entry day", st.entered.set)
	}
	hdr := st.AppendHeader(nil)
	back, err := decodeHeader(hdr)
	if err != nil || back.entered != st.entered {
		t.Fatalf("header round trip: %+v, %v", back.entered, err)
	}
	// A header written alone carries the entry days over an older base.
	base := NewState(st.SIREN).AppendBinary(nil)
	merged, err := MergeHeader(nil, base, hdr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := UnmarshalState(st.SIREN, merged)
	if err != nil || m.entered != st.entered {
		t.Fatalf("merged: %+v, %v", m.entered, err)
	}
	// Rules without dwell write nothing: the v1 header is unchanged.
	v1 := NewTask(RulesV1(), Config{})
	st.entered = v1.nextEntered(st.entered, st.segs, st.segs, d0+6)
	if st.entered.set != 0 || !bytes.Equal(st.AppendHeader(nil), []byte{StateVersion, 3, byte(st.segs), 0}) {
		t.Fatalf("v1 header = %x", st.AppendHeader(nil))
	}
	if err := (&State{}).readEntered([]byte{byte(DataHungry)}); err == nil {
		t.Fatal("a truncated entered payload decodes")
	}
}

func TestPercentileWarmUp(t *testing.T) {
	r := DefaultRules()
	r.MinPopulation = 2
	task := NewTask(r, Config{})
	pop := FromStates(func(func(*State) error) error { return nil })
	vals := []float64{1, 2, 3}
	for _, tc := range []struct {
		day  int32
		want bool
	}{{0, false}, {29, false}, {30, true}} {
		if _, err := task.BeginDay(at(d0+tc.day, 0), pop); err != nil {
			t.Fatal(err)
		}
		task.setSnapshot(vals)
		task.EndDay()
		if _, ok := task.Percentile(2.5); ok != tc.want {
			t.Fatalf("day %d: percentile non-null = %v, want %v", tc.day, ok, tc.want)
		}
		if tc.day == 29 {
			// A restart keeps the first day (task meta version 4).
			again := NewTask(r, Config{})
			if err := again.UnmarshalMeta(task.AppendMeta(nil)); err != nil || again.firstDay != d0 || !again.hasFirstDay {
				t.Fatalf("restored first day %d/%v (%v)", again.firstDay, again.hasFirstDay, err)
			}
		}
	}
	// Under v1 rules there is no warm-up.
	v1 := NewTask(func() *Rules { r := RulesV1(); r.MinPopulation = 2; return r }(), Config{})
	if _, err := v1.BeginDay(at(d0, 0), pop); err != nil {
		t.Fatal(err)
	}
	v1.setSnapshot(vals)
	if _, ok := v1.Percentile(2.5); !ok {
		t.Fatal("v1: percentile null on the first day")
	}
}

func TestZeroTrafficIsNotScored(t *testing.T) {
	quiet := NewState(mkSIREN(2402))
	quiet.applyProfile(&Event{Kind: KindProfile, SIREN: quiet.SIREN, EventTime: at(d0, 1), Workforce: 10, HasWorkforce: true}, &BoundCounts{})
	for _, tc := range []struct {
		rules  *Rules
		scored bool
	}{{RulesV1(), true}, {DefaultRules(), false}} {
		task := NewTask(tc.rules, Config{})
		task.advanceTo(at(d0+40, 1))
		if _, ok := task.intensity(quiet); ok != tc.scored {
			t.Errorf("%s: a SIREN without traffic scored = %v, want %v", tc.rules.Version, ok, tc.scored)
		}
		if v, ok, err := task.intensityEncoded(quiet.AppendBinary(nil)); err != nil || ok != tc.scored || v != 0 {
			t.Errorf("%s: encoded: %v %v %v", tc.rules.Version, v, ok, err)
		}
	}
}

func TestV1RulesFileKeepsItsMeaning(t *testing.T) {
	file := "version: prod-7\nrecovery_exposed: {enter: 4, exit: 2}\n"
	r, err := ParseRules(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	v1 := RulesV1()
	if r.Fingerprint() != v1.Fingerprint() {
		t.Fatalf("a v1 file's fingerprint %s differs from default-1's %s", r.Fingerprint(), v1.Fingerprint())
	}
	if r.VelocityWindow != "" || r.MinHistoryDays != 0 || r.PercentilePopulation != "" ||
		r.HiddenGrowth.Stability != (Stability{}) || r.DataHungry.Stability != (Stability{}) {
		t.Fatalf("v1 file got rules default-2 keys: %+v", r)
	}
	// Spelling out a v1 meaning changes nothing, not even the fingerprint.
	spelled, err := ParseRules(strings.NewReader(file + "velocity_window: current_day\npercentile_population: all\nsla_sensitive: {metric: claims_365d}\n"))
	if err != nil || spelled.Fingerprint() != v1.Fingerprint() {
		t.Fatalf("spelled-out v1 keys: %v, fingerprint %s", err, spelled.Fingerprint())
	}
	// And it behaves as v1: the spike enters at once.
	s := mkSIREN(2203)
	h := newHarness(t, r)
	h.must(profileEv(s, at(d0, 8), 10, ""))
	dailyUsage(h, s, 0, 71, func(d int32) int64 {
		if d == 70 {
			return 200 * gb
		}
		return 10 * gb
	})
	if day, _, ok := added(h.take(s), HiddenGrowth); !ok || day != 70 {
		t.Fatalf("v1 file: entered on %d (%v), want 70", day, ok)
	}
	// The default-2 keys are validated.
	for _, bad := range []string{
		"velocity_window: yesterday\n",
		"percentile_population: some\n",
		"min_history_days: -1\n",
		"data_hungry: {sustained_days: 3}\n",
		"hidden_growth: {sustained_days: 31}\n",
		"hidden_growth: {velocity: {min_dwell_days: 3}}\n",
		"multi_site: {min_dwell_days: -1}\n",
		"sla_sensitive: {metric: claims_90d}\n",
		"data_hungry: {metric: claims_365d}\n",
	} {
		if _, err := ParseRules(strings.NewReader("version: x\n" + bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSLARates(t *testing.T) {
	s := mkSIREN(2500)
	h := newHarness(t, nil)
	h.must(
		outageStartEv(s, "o1", at(d0, 1), "75001"),
		outageResolvedEv(s, "o1", at(d0, 6), -1, "75001"), // 5 h
		outageStartEv(s, "o2", at(d0+1, 1), "75001"),
		outageResolvedEv(s, "o2", at(d0+1, 16), -1, "75001"), // 15 h
		claimEv(s, at(d0+2, 1), 100, "o1"),
		claimEv(s, at(d0+2, 2), 100, ""), // not linked
	)
	m := h.view(s).Metrics
	if !m.HasClaimsPerOutage365d || m.ClaimsPerOutage365d != 0.5 || !m.HasClaimHoursRatio365d || m.ClaimHoursRatio365d != 0.5 {
		t.Fatalf("claims_per_outage_365d %v/%v claim_hours_ratio_365d %v/%v: want 1/2 and 1 per 20 h = 0.5",
			m.ClaimsPerOutage365d, m.HasClaimsPerOutage365d, m.ClaimHoursRatio365d, m.HasClaimHoursRatio365d)
	}
	if m := h.view(mkSIREN(2501)).Metrics; m.HasClaimsPerOutage365d || m.HasClaimHoursRatio365d {
		t.Fatal("rates without outages are not null")
	}
	// SLA_SENSITIVE on the rate: 0.5 claims per outage is below 0.6.
	for _, tc := range []struct {
		enter float64
		want  bool
	}{{0.5, true}, {0.6, false}} {
		r, err := ParseRules(strings.NewReader("version: rate\nsla_sensitive: {metric: claims_per_outage_365d, enter: " +
			strconv.FormatFloat(tc.enter, 'g', -1, 64) + ", exit: 0.3}\n"))
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, r)
		h.must(outageStartEv(s, "o1", at(d0, 1), "75001"), outageResolvedEv(s, "o1", at(d0, 2), -1, "75001"),
			outageStartEv(s, "o2", at(d0, 3), "75001"), outageResolvedEv(s, "o2", at(d0, 4), -1, "75001"),
			claimEv(s, at(d0, 5), 100, "o1"))
		v := h.view(s)
		if v.Segments.Has(SLASensitive) != tc.want {
			t.Fatalf("enter %v: SLA_SENSITIVE = %v, want %v", tc.enter, v.Segments.Has(SLASensitive), tc.want)
		}
		if tc.want {
			if r, ok := hasReason(v, "SLA_SENSITIVE", MetricClaimsPerOutage365d); !ok || r.Value != 0.5 {
				t.Fatalf("reasons %+v", v.Reasons)
			}
		}
	}
}
