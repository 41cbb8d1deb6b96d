package engine

import "math"

// evaluation is the metrics of one SIREN plus the inputs of the rules that
// are not spec metrics.
type evaluation struct {
	m Metrics
	// workforce flat test: (max-min)/min of the workforce values in effect
	// during the window; valid when hasWfChange (latest workforce known).
	wfChange    float64
	hasWfChange bool
	plan        string

	// stable segments (stability.go): the state evaluated and its stream
	// day; held: segments kept by min_dwell_days only; sustained: HIDDEN_GROWTH
	// entered after sustained_days.
	st        *State
	day       int32
	held      Segments
	sustained bool
}

const (
	bytesPerGB = 1e9
	msPerHour  = 3_600_000.0
)

// traffic returns traffic_30d, traffic_prev_30d and the max active_sims of
// the 30-day window (-1: none) of the windows ending on day d (d-29..d and
// d-59..d-30; Task.windowEnd gives d for a stream day). The result is remembered
// (runtime only) until usage changes or another day is asked.
func (s *State) traffic(d int32) (t30, prev int64, maxSims int32) {
	if m := &s.tmemo; m.ok && m.day == d {
		return m.t30, m.prev, m.maxSims
	}
	t30, prev, maxSims = s.trafficScan(d)
	s.tmemo = trafficMemo{ok: true, day: d, maxSims: maxSims, t30: t30, prev: prev}
	return t30, prev, maxSims
}

// velocity is traffic_velocity of windows ending on day end (spec §5: the
// SIREN's first usage day at least 59 days before end, traffic_prev_30d at
// least min_prev_bytes).
func (t *Task) velocity(s *State, end int32, t30, prev int64) (float64, bool) {
	if !s.hasUsage || s.firstUsageDay > end-59 || prev < t.rules.MinPrevBytes || prev <= 0 {
		return 0, false
	}
	// Rounded to 1e-9 so that exactly 20 % growth compares >= 0.20
	// despite binary floating point (1.2 - 1 = 0.19999999999999996).
	v := float64(t30)/float64(prev) - 1
	return math.Round(v*1e9) / 1e9, true
}

// trafficScan computes traffic(d) from the usage buckets.
func (s *State) trafficScan(d int32) (t30, prev int64, maxSims int32) {
	maxSims = -1
	for i := len(s.usage) - 1; i >= 0; i-- {
		u := &s.usage[i]
		switch {
		case u.day > d:
			continue
		case u.day >= d-29:
			t30 = satAdd(t30, u.bytes)
			if u.sims > maxSims {
				maxSims = u.sims
			}
		case u.day >= d-59:
			prev = satAdd(prev, u.bytes)
		default:
			return
		}
	}
	return
}

func (s *State) intensity(t30 int64, maxSims int32) (v float64, basis string, ok bool) {
	if s.hasWorkforce && s.workforce > 0 {
		return float64(t30) / bytesPerGB / float64(s.workforce), "workforce", true
	}
	if maxSims > 0 {
		return float64(t30) / bytesPerGB / float64(maxSims), "active_sims", true
	}
	return 0, "", false
}

// metrics computes the spec §5 metrics at stream time now (day d). It
// changes nothing encoded (only the runtime traffic memo); the percentile
// comes from the task's snapshot.
func (t *Task) metrics(s *State, e *evaluation) {
	now := t.streamTime
	d := Day(now)
	m := &e.m
	*m = Metrics{}
	e.st, e.day, e.held, e.sustained = s, d, 0, false
	var maxSims int32
	end := t.windowEnd(d)
	m.Traffic30dBytes, m.TrafficPrev30dBytes, maxSims = s.traffic(end)
	m.TrafficVelocity, m.HasTrafficVelocity = t.velocity(s, end, m.Traffic30dBytes, m.TrafficPrev30dBytes)
	m.DigitalIntensity, m.IntensityBasis, m.HasDigitalIntensity = s.intensity(m.Traffic30dBytes, maxSims)
	if m.HasDigitalIntensity && t.scored(m.Traffic30dBytes) {
		m.IntensityPercentile, m.HasIntensityPercentile = t.Percentile(m.DigitalIntensity)
	}
	m.Workforce, m.HasWorkforce = s.workforce, s.hasWorkforce

	// Durations are summed in ms and divided once, so whole hours stay exact.
	var sumMs, maxMs int64
	for i := range s.resolved {
		o := &s.resolved[i]
		if ed := Day(o.end); ed < d-89 || ed > d {
			continue
		}
		ms := o.end - o.start
		if ms > GoldenHourMs {
			m.GoldenHourBreaches90d++
		}
		m.Outages90d++
		sumMs += ms
		maxMs = max(maxMs, ms)
	}
	for i := range s.open {
		ms := max(now-s.open[i].start, 0)
		if ms > GoldenHourMs {
			m.GoldenHourBreaches90d++
		}
		m.Outages90d++
		m.OpenOutages++
		sumMs += ms
		maxMs = max(maxMs, ms)
	}
	m.RecoveryExposureHours90d = float64(sumMs) / msPerHour
	m.MaxRecoveryHours90d = float64(maxMs) / msPerHour
	for i := len(s.claims) - 1; i >= 0; i-- {
		c := &s.claims[i]
		if c.day > d {
			continue
		}
		if c.day < d-364 {
			break
		}
		if c.linked {
			m.Claims365d++
			m.ClaimAmount365dCents = satAdd(m.ClaimAmount365dCents, c.amount)
		}
	}
	s.slaRates(now, m)
	for i := range s.postals {
		if ld := s.postals[i].lastDay; ld >= d-(postalWindowDays-1) && ld <= d {
			m.DistinctPostalCodes90d++
		}
	}

	e.plan = s.currentPlan()
	e.hasWfChange = false
	e.wfChange = 0
	if s.hasWorkforce {
		e.wfChange, e.hasWfChange = s.wfChangeAt(now, t.rules.HiddenGrowth.WorkforceWindowDays, s.workforce, true)
	}
}
