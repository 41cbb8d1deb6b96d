package engine

import (
	"fmt"
	"math"
)

// Stable segments (rules version default-2, issue 22). A segment that a
// company leaves and re-enters within days is an offer sent, withdrawn and
// sent again; these rule keys make segments mean what they say:
//
//   - velocity_window completed_days: traffic windows on completed days
//     (D-30..D-1 against D-60..D-31), so a day change does not dip the
//     velocity by a missing partial day;
//   - sustained_days (HIDDEN_GROWTH): the entry condition held on each of
//     the last N completed days, and the rise is in those days;
//   - min_dwell_days: a segment entered is held at least that long unless a
//     metric it depends on becomes null (the entry day is decision state:
//     dwell.go);
//   - min_history_days and percentile_population: no percentile while the
//     task's population is still filling up, and SIRENs without traffic
//     are not scored.
//
// Every key's zero value is its v1 meaning (ParseRules leaves the keys a
// file does not set at zero, RulesV1), and the fingerprint leaves zero keys
// out, so a v1 rules file keeps its meaning and its fingerprint.

// Stability is the per-segment part of rules default-2. Zero: v1 meaning.
type Stability struct {
	// SustainedDays: the segment enters only when its entry condition held
	// on each of the last N completed days (windows ending on that day) and
	// the mean daily traffic of those N days, their largest day left out,
	// is at least (1 + velocity enter) times that of the previous window
	// (D-60..D-31), so that a one-day spike, which a 30-day window
	// remembers for a month, is not growth. HIDDEN_GROWTH only (the state keeps no history of the other
	// metrics), 0..MaxSustainedDays (default-2: 7).
	SustainedDays int `yaml:"sustained_days,omitempty"`
	// MinDwellDays: once entered, the segment is held until at least this
	// many stream days have passed since its entry day, unless a metric it
	// depends on becomes null (default-2: 7 for DATA_HUNGRY and
	// HIDDEN_GROWTH). A reason days_in_segment says when the dwell holds it.
	MinDwellDays int `yaml:"min_dwell_days,omitempty"`
}

// Values of Rules.VelocityWindow and Rules.PercentilePopulation.
const (
	VelocityCurrentDay    = "current_day"
	VelocityCompletedDays = "completed_days"
	PopulationAll         = "all"
	PopulationWithTraffic = "with_traffic"
)

// MaxSustainedDays bounds sustained_days: the velocity of the oldest day
// checked needs usage back to D-N-59, inside the 90 kept days.
const MaxSustainedDays = 30

// Reason and metric names of rules default-2.
const (
	MetricClaimsPerOutage365d = "claims_per_outage_365d"
	MetricClaimHoursRatio365d = "claim_hours_ratio_365d"
	// MetricDaysInSegment: a reason of a segment held by min_dwell_days
	// (value: stream days since its entry, threshold: min_dwell_days).
	MetricDaysInSegment = "days_in_segment"
	// MetricDaysSustained: a reason of a segment entered after
	// sustained_days (value and threshold: sustained_days).
	MetricDaysSustained = "days_sustained"
)

// dwellSegments are the segments with rules of their own, in bit order.
var dwellSegments = [...]Segments{DataHungry, HiddenGrowth, MultiSite, RecoveryExposed, SLASensitive}

// stability returns the Stability of segment seg (zero for CHURN_RISK).
func (r *Rules) stability(seg Segments) Stability {
	switch seg {
	case DataHungry:
		return r.DataHungry.Stability
	case HiddenGrowth:
		return r.HiddenGrowth.Stability
	case SLASensitive:
		return r.SLASensitive.Stability
	case RecoveryExposed:
		return r.RecoveryExposed.Stability
	case MultiSite:
		return r.MultiSite.Stability
	}
	return Stability{}
}

// validateStability checks the keys of rules default-2 and stores the
// spelled-out v1 values as their zero value (so that a file that writes
// `velocity_window: current_day` has the fingerprint of one that leaves it
// out).
func (r *Rules) validateStability() error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("rules: %s: %s", field, fmt.Sprintf(format, args...))
	}
	switch r.VelocityWindow {
	case "", VelocityCurrentDay:
		r.VelocityWindow = ""
	case VelocityCompletedDays:
	default:
		return bad("velocity_window", "must be %s or %s, got %q", VelocityCurrentDay, VelocityCompletedDays, r.VelocityWindow)
	}
	switch r.PercentilePopulation {
	case "", PopulationAll:
		r.PercentilePopulation = ""
	case PopulationWithTraffic:
	default:
		return bad("percentile_population", "must be %s or %s, got %q", PopulationAll, PopulationWithTraffic, r.PercentilePopulation)
	}
	if d := r.MinHistoryDays; d < 0 || d > 365 {
		return bad("min_history_days", "must be in [0, 365], got %d", d)
	}
	segs := []struct {
		name    string
		th      *Threshold
		metrics []string // the first is the spec metric
	}{
		{"data_hungry", &r.DataHungry, []string{MetricIntensityPercentile}},
		{"hidden_growth.velocity", &r.HiddenGrowth.Velocity, []string{MetricTrafficVelocity}},
		{"sla_sensitive", &r.SLASensitive, []string{MetricClaims365d, MetricClaimsPerOutage365d, MetricClaimHoursRatio365d}},
		{"recovery_exposed", &r.RecoveryExposed, []string{MetricRecoveryExposure}},
		{"multi_site", &r.MultiSite, []string{MetricDistinctPostalCodes}},
	}
	for _, s := range segs {
		ok := s.th.Metric == ""
		for _, m := range s.metrics {
			ok = ok || s.th.Metric == m
		}
		if !ok {
			return bad(s.name+".metric", "must be one of %v, got %q", s.metrics, s.th.Metric)
		}
		if s.th.Metric == s.metrics[0] {
			s.th.Metric = ""
		}
		if s.th == &r.HiddenGrowth.Velocity {
			if s.th.Stability != (Stability{}) {
				return bad(s.name, "sustained_days and min_dwell_days belong to hidden_growth, not to its velocity")
			}
			continue
		}
		if err := checkStability(s.name, s.th.Stability, false); err != nil {
			return err
		}
	}
	return checkStability("hidden_growth", r.HiddenGrowth.Stability, true)
}

func checkStability(name string, s Stability, sustained bool) error {
	if d := s.SustainedDays; d != 0 && !sustained {
		return fmt.Errorf("rules: %s.sustained_days: only hidden_growth has sustained_days (the state keeps no daily history of this metric), got %d", name, d)
	}
	if d := s.SustainedDays; d < 0 || d > MaxSustainedDays {
		return fmt.Errorf("rules: %s.sustained_days: must be in [0, %d], got %d", name, MaxSustainedDays, d)
	}
	if d := s.MinDwellDays; d < 0 || d > 365 {
		return fmt.Errorf("rules: %s.min_dwell_days: must be in [0, 365], got %d", name, d)
	}
	return nil
}

// windowEnd is the last day of the traffic windows at stream day d: d
// (current_day, v1) or d-1 (completed_days).
func (t *Task) windowEnd(d int32) int32 {
	if t.rules.VelocityWindow == VelocityCompletedDays {
		return d - 1
	}
	return d
}

// scored reports whether a SIREN whose traffic_30d is t30 is part of the
// percentile population (with_traffic: only with traffic in the window).
func (t *Task) scored(t30 int64) bool {
	return t30 > 0 || t.rules.PercentilePopulation != PopulationWithTraffic
}

// warm reports whether the task has min_history_days of stream time: the
// percentile is null before. A task whose first day is unknown (a meta from
// before first days were recorded) counts as warm.
func (t *Task) warm() bool {
	n := t.rules.MinHistoryDays
	return n == 0 || !t.hasFirstDay || t.StreamDay()-t.firstDay >= int32(n)
}

// slaMetric is the value of the metric SLA_SENSITIVE's thresholds apply to
// (ok false: null).
func (t *Task) slaMetric(m *Metrics) (name string, v float64, ok bool) {
	switch t.rules.SLASensitive.Metric {
	case MetricClaimsPerOutage365d:
		return MetricClaimsPerOutage365d, m.ClaimsPerOutage365d, m.HasClaimsPerOutage365d
	case MetricClaimHoursRatio365d:
		return MetricClaimHoursRatio365d, m.ClaimHoursRatio365d, m.HasClaimHoursRatio365d
	}
	return MetricClaims365d, float64(m.Claims365d), true
}

// slaRates sets claims_per_outage_365d and claim_hours_ratio_365d from
// m.Claims365d and the outages of the last 365 days at now: resolved in
// them (by resolution day) or still open (hours so far).
func (s *State) slaRates(now int64, m *Metrics) {
	d := Day(now)
	var outages int64
	var ms int64
	for i := range s.resolved {
		o := &s.resolved[i]
		if ed := Day(o.end); ed < d-364 || ed > d {
			continue
		}
		outages++
		ms += o.end - o.start
	}
	for i := range s.open {
		outages++
		ms += max(now-s.open[i].start, 0)
	}
	round := func(v float64) float64 { return math.Round(v*1e9) / 1e9 }
	if outages > 0 {
		m.ClaimsPerOutage365d = round(float64(m.Claims365d) / float64(outages))
		m.HasClaimsPerOutage365d = true
	}
	if ms > 0 {
		m.ClaimHoursRatio365d = round(float64(m.Claims365d) * 10 / (float64(ms) / msPerHour))
		m.HasClaimHoursRatio365d = true
	}
}

// sustained reports whether HIDDEN_GROWTH's entry condition held on each of
// the last n completed days (velocity of the windows ending that day at
// least the enter threshold, workforce flat in the window ending that day)
// and the last n days carry the rise: their traffic without their largest
// day is at least (1 + enter) times as many days' worth of the previous
// window (D-60..D-31) — so a one-day spike, which the 30-day windows
// remember for a month, is not growth. Cost: n+1 scans of the usage
// buckets, only for a SIREN about to enter.
func (t *Task) sustained(s *State, n int) bool {
	if s == nil {
		return false
	}
	r := t.rules
	d := t.StreamDay()
	for k := d - 1; k >= d-int32(n); k-- {
		t30, prev, _ := s.trafficScan(k)
		v, ok := t.velocity(s, k, t30, prev)
		if !ok || v < r.HiddenGrowth.Velocity.Enter {
			return false
		}
		if !s.hasWorkforce {
			continue // unknown now: flat
		}
		if c, known := s.wfChangeAt(int64(k+1)*DayMs-1, r.HiddenGrowth.WorkforceWindowDays, 0, false); known && c > r.HiddenGrowth.WorkforceFlatTolerance {
			return false
		}
	}
	var recent, top int64
	for i := len(s.usage) - 1; i >= 0; i-- {
		u := &s.usage[i]
		if u.day >= d {
			continue
		}
		if u.day < d-int32(n) {
			break
		}
		recent = satAdd(recent, u.bytes)
		top = max(top, u.bytes)
	}
	days := n
	if n > 1 { // without the largest day: a spike is not a rise
		recent -= top
		days--
	}
	_, prev, _ := s.trafficScan(d - 1)
	return float64(recent)*30 >= (1+r.HiddenGrowth.Velocity.Enter)*float64(prev)*float64(days)
}

// wfChangeAt is the workforce flat test of the window of `days` days ending
// at ms end: (max-min)/min of the workforce values in effect in it, and of
// cur when seeded (the current workforce). known is false when the
// workforce is unknown (not seeded and no observation by then): unknown
// counts as flat. Values superseded before the current window were pruned
// (see prune): for a window that starts earlier they are missing.
func (s *State) wfChangeAt(end int64, days int, cur int32, seeded bool) (change float64, known bool) {
	from := (end/DayMs - int64(days) + 1) * DayMs
	lo, hi, known := cur, cur, seeded
	for i := range s.wfHist {
		o := &s.wfHist[i]
		if o.t > end {
			break
		}
		if o.t <= from && i+1 < len(s.wfHist) && s.wfHist[i+1].t <= from {
			continue // superseded before the window started
		}
		if !known {
			lo, hi, known = o.wf, o.wf, true
			continue
		}
		lo, hi = min(lo, o.wf), max(hi, o.wf)
	}
	switch {
	case !known || hi == lo:
		return 0, known
	case lo <= 0:
		return math.Inf(1), true // from zero: never flat
	}
	return float64(hi-lo) / float64(lo), true
}

// hold returns seg when min_dwell_days keeps it although its conditions
// failed: held in prev, not in next, entered fewer than min_dwell_days
// stream days ago (an unknown entry day holds nothing), and defined: its
// metrics are not null and nothing structural excludes it. It records the
// hold in e for the reasons.
func (t *Task) hold(seg, prev, next Segments, e *evaluation, defined bool) Segments {
	n := t.rules.stability(seg).MinDwellDays
	if n == 0 || prev&seg == 0 || next&seg != 0 || !defined || e.st == nil {
		return 0
	}
	day, ok := e.st.entered.get(seg)
	if !ok || e.day-day >= int32(n) {
		return 0
	}
	e.held |= seg
	return seg
}

// stabilityReasons appends the reasons of the stable-segments rules for the
// segments next of the evaluation e: days_in_segment for a segment that
// min_dwell_days holds, days_sustained for HIDDEN_GROWTH entered after
// sustained_days.
func (t *Task) stabilityReasons(rs []Reason, e *evaluation, next Segments) []Reason {
	if e.sustained && next&HiddenGrowth != 0 {
		n := float64(t.rules.HiddenGrowth.SustainedDays)
		rs = append(rs, Reason{Segment: "HIDDEN_GROWTH", Metric: MetricDaysSustained, Value: n, Threshold: n})
	}
	for _, seg := range dwellSegments {
		if e.held&seg == 0 || next&seg == 0 || e.st == nil {
			continue
		}
		day, _ := e.st.entered.get(seg)
		rs = append(rs, Reason{Segment: seg.String(), Metric: MetricDaysInSegment,
			Value: float64(e.day - day), Threshold: float64(t.rules.stability(seg).MinDwellDays)})
	}
	return rs
}
