package engine

import (
	"fmt"
	"slices"
	"strconv"
)

// Task is the per-partition engine: stream time, percentile snapshot, rules.
// One goroutine owns a Task and the States of its partition; nothing in it
// is safe for concurrent use.
type Task struct {
	rules *Rules
	cfg   Config

	started    bool
	streamTime int64
	// firstDay is the task's first stream day (min_history_days); unknown
	// for a task restored from a meta written before it was recorded.
	firstDay    int32
	hasFirstDay bool

	snapValid bool
	snapN     int       // population size of the snapshot
	snap      []float64 // sorted, all values (snapN <= snapMax) or a rank sample
	scratch   []float64

	dedupDays int32 // days of event ids remembered behind the stream day
	dedupSpan int32 // days one dedup filter spans (see DedupMaxFilters)
	bounds    BoundCounts

	pass1 []float64 // pass-1 values of the last day change (reused buffer)
	// keep: the caller asked for next-day sets (KeepNextDay). kept holds
	// the intensities of the next day change's pass 1 (nil: pass 1 reads
	// the states); building is the set this day's pass 2 fills (nil when
	// not keeping, or for a pass 2 resumed without BeginDay).
	keep     bool
	kept     *nextIntensities
	building *nextIntensities

	// timers are the pending timers, sorted (timers.go).
	timers []Timer
	// offerOrder: the indexes of offerNames in the rules' priority order.
	offerOrder []int
	// products: the offers of each product of the rules' offers (plan →
	// offers, offersOfProduct), so that an evaluation looks a plan up
	// without hashing it.
	products []productOffers
}

// productOffers are the offers whose product is plan.
type productOffers struct {
	plan   string
	offers offerSet
}

// NewTask returns a task with no stream time yet. rules nil means
// DefaultRules(); rules must be valid (Rules.Validate) and not modified
// afterwards. cfg zero values take defaults.
func NewTask(rules *Rules, cfg Config) *Task {
	if rules == nil {
		rules = DefaultRules()
	}
	cfg = cfg.withDefaults()
	t := &Task{
		rules:      rules,
		cfg:        cfg,
		dedupDays:  int32((cfg.AllowedLatenessMs+DayMs-1)/DayMs) + 1,
		dedupSpan:  1,
		offerOrder: rules.offerOrder(),
	}
	for _, n := range offerNames {
		if p, ok := rules.Offers.Products[n]; ok && !slices.ContainsFunc(t.products, func(po productOffers) bool { return po.plan == p }) {
			t.products = append(t.products, productOffers{plan: p, offers: rules.offersOfProduct(p)})
		}
	}
	// The window has dedupDays+1 days; over DedupMaxFilters, filters span
	// several days so that the window needs at most DedupMaxFilters.
	if w := t.dedupDays + 1; w > DedupMaxFilters {
		t.dedupSpan = (w + DedupMaxFilters - 2) / (DedupMaxFilters - 1)
	}
	return t
}

// Rules returns the task's rules (read-only).
func (t *Task) Rules() *Rules { return t.rules }

// Config returns the task's config with defaults applied.
func (t *Task) Config() Config { return t.cfg }

// StreamTime is the largest event_time processed (ms); 0 before the first
// event.
func (t *Task) StreamTime() int64 { return t.streamTime }

// StreamDay is the UTC day of StreamTime.
func (t *Task) StreamDay() int32 { return Day(t.streamTime) }

// Started reports whether the task has a stream time (an event was Stepped
// or BeginDay/UnmarshalMeta set one).
func (t *Task) Started() bool { return t.started }

func (t *Task) retention() retention {
	d := t.StreamDay()
	return retention{
		usageMin:   d - int32(t.cfg.UsageDays) + 1,
		postalMin:  d - postalWindowDays + 1,
		historyMin: d - int32(t.cfg.HistoryDays) + 1,
		wfFrom:     int64(d-int32(t.rules.HiddenGrowth.WorkforceWindowDays)+1) * DayMs,
		dedupMin:   d - t.dedupDays,
	}
}

// Step applies ev (which passed CheckRecord or Check) to st and evaluates
// the rules; on a new stream day the caller runs the day change first
// (StartsDay). It
// returns true when the segment set changed; dec then holds the decision and
// st's seq and segments are updated. Errors (nothing changed): ErrDuplicate
// when ev.EventID was already applied to this SIREN within the dedup window
// (allowed lateness + 1 day; for a SIREN over DedupExact ids, rarely a
// false positive: see dedup.go), ErrInvalidEvent for a RESOLVED without a known
// start or resolved before its start, or an event of another SIREN.
// Otherwise Step always mutates st (stream time, windows, pruning), and
// keeps a kept next-day set current (KeepNextDay). A usage event on an
// existing SIREN allocates nothing in steady state; a SIREN that hits a
// bound (Max*, Dedup*) is counted in Bounds.
func (t *Task) Step(st *State, ev *Event, dec *Decision) (bool, error) {
	if ev.SIREN != st.SIREN {
		return false, fmt.Errorf("%w: event SIREN %q on state of %q", ErrInvalidEvent, ev.SIREN, st.SIREN)
	}
	h := fnv64aString(ev.EventID)
	if st.seen(h) {
		return false, fmt.Errorf("%w: %q", ErrDuplicate, ev.EventID)
	}
	var start int64
	if ev.Kind == KindOutage && ev.Status == OutageResolved {
		if _, done := st.resolvedIndex(ev.OutageID); !done {
			var ok bool
			if start, ok = st.outageStart(ev); !ok {
				return false, fmt.Errorf("%w: RESOLVED outage %q without started_at nor STARTED", ErrInvalidEvent, ev.OutageID)
			}
			if ev.EventTime < start {
				return false, fmt.Errorf("%w: outage %q resolved at %d before its start %d", ErrInvalidEvent, ev.OutageID, ev.EventTime, start)
			}
		}
	}
	// While a next-day set is kept, st's value leaves it before the step
	// and comes back after (a new state has none).
	kept := t.kept
	var before float64
	var hadBefore bool
	if kept != nil {
		before, hadBefore = t.intensityNextDay(st)
	}
	if !t.started || ev.EventTime > t.streamTime {
		if !t.started || Day(ev.EventTime) != t.StreamDay() {
			// no day change by the caller (first event, or protocol not
			// followed): the snapshot belongs to another day.
			t.snapValid, t.snapN, t.snap = false, 0, t.snap[:0]
		}
		if !t.started {
			t.firstDay, t.hasFirstDay = Day(ev.EventTime), true
		}
		t.started = true
		t.streamTime = ev.EventTime
	}
	d := t.StreamDay()
	if !st.pruned || st.prunedDay != d {
		st.prune(t.retention())
		st.pruned, st.prunedDay = true, d
	}
	evDay := Day(ev.EventTime)
	switch ev.Kind {
	case KindUsage:
		st.applyUsage(ev, d-int32(t.cfg.UsageDays)+1, &t.bounds)
	case KindOutage:
		t.dropTimers(st)
		st.applyOutage(ev, start, &t.bounds)
		t.addTimers(st)
	case KindClaim:
		st.applyClaim(ev, &t.bounds)
	case KindProfile:
		st.applyProfile(ev, &t.bounds)
	case KindOfferResponse, KindContractEvent:
		t.applyOutcomeEvent(st, ev)
	}
	t.assignHoldout(st)
	st.remember(h, evDay, dedupWindow{min: d - t.dedupDays, span: t.dedupSpan}, &t.bounds)
	changed := t.evaluate(st, dec)
	if changed {
		dec.Trigger = TriggerInput
	}
	if kept != nil {
		if kept.day != t.StreamDay()+1 {
			t.kept = nil // cannot happen: a new day changes the day first
		} else {
			if hadBefore {
				kept.remove(before)
			}
			if v, ok := t.intensityNextDay(st); ok {
				kept.add(v)
			}
		}
	}
	return changed, nil
}

// Evaluate re-evaluates st's rules at the current stream time (pass 2 of a
// day change, in SIREN order). When the segment set changes it fills dec,
// increments seq, stores the new set and returns true; otherwise it changes
// nothing (not even dec) and returns false. It never prunes, so a SIREN's
// bytes depend only on the events Stepped. While keeping (KeepNextDay(true)
// before BeginDay) it also records st's next-day intensity.
func (t *Task) Evaluate(st *State, dec *Decision) bool {
	if b := t.building; b != nil {
		if v, ok := t.intensityNextDay(st); ok {
			b.add(v)
		}
	}
	if !t.evaluate(st, dec) {
		return false
	}
	dec.Trigger = TriggerDayChange
	return true
}

// EvaluateDaily is Evaluate, and then fills daily with what a siren-daily
// record carries of st after it, as View would fill it: SIREN, Metrics,
// Segments, Offers, ControlGroup and RulesVersion (daily's other fields are
// left as they were). The metrics are computed once for both.
func (t *Task) EvaluateDaily(st *State, dec, daily *Decision) bool {
	if b := t.building; b != nil {
		if v, ok := t.intensityNextDay(st); ok {
			b.add(v)
		}
	}
	var e evaluation
	changed := t.evaluateWith(st, dec, &e)
	if changed {
		dec.Trigger = TriggerDayChange
	}
	daily.SIREN = st.SIREN
	daily.Metrics = e.m
	daily.Segments = st.segs
	daily.Offers = t.offerNames(st.offers, daily.Offers[:0])
	daily.ControlGroup = t.inControl(st)
	daily.RulesVersion = t.rules.Version
	return changed
}

// evaluate decides st at the stream time: a decision when the segment set or
// the offer set changes (spec §8).
func (t *Task) evaluate(st *State, dec *Decision) bool {
	var e evaluation
	return t.evaluateWith(st, dec, &e)
}

// evaluateWith is evaluate with e as its evaluation; e.m holds st's metrics
// after it.
func (t *Task) evaluateWith(st *State, dec *Decision, e *evaluation) bool {
	t.metrics(st, e)
	prev := st.segs
	if st.offersUnknown {
		// Stored before offers were kept (state version 2): its offers
		// were those of its segments under its current plan and workforce.
		st.offers, st.offersUnknown = t.offers(prev, e), false
	}
	next := t.decide(prev, e)
	nextOffers := t.offers(next, e)
	if next == prev && nextOffers == st.offers {
		return false
	}
	prevOffers := st.offers
	st.seq++
	st.segs = next
	st.offers = nextOffers
	st.entered = t.nextEntered(st.entered, prev, next, e.day)
	t.fill(st, dec, e, prev, next, prevOffers)
	t.noteEligible(st, nextOffers&^prevOffers)
	return true
}

// View fills dec with st's current view (metrics now, the held segments,
// reasons with exit thresholds, offers, seq of the last decision) without
// changing st's encoding (only its runtime traffic memo). Previous =
// Segments and Added = Removed = 0. Reasons whose metric is now null are
// left out.
func (t *Task) View(st *State, dec *Decision) {
	var e evaluation
	t.metrics(st, &e)
	offers := st.offers
	if st.offersUnknown {
		offers = t.offers(st.segs, &e)
	}
	t.decide(st.segs, &e) // for the reasons of segments min_dwell_days holds
	t.fill(st, dec, &e, st.segs, st.segs, offers)
	dec.Offers = t.offerNames(offers, dec.Offers[:0])
}

func atLeast(held bool, v float64, th Threshold) bool {
	if held {
		return v >= th.Exit
	}
	return v >= th.Enter
}

// decide applies spec §6 to the metrics given the held segments prev, with
// the stable-segments rules (stability.go): sustained_days before
// HIDDEN_GROWTH enters, min_dwell_days holding a segment whose conditions
// fail (e.held).
func (t *Task) decide(prev Segments, e *evaluation) Segments {
	r := t.rules
	m := &e.m
	var next Segments
	if m.HasIntensityPercentile && atLeast(prev&DataHungry != 0, m.IntensityPercentile, r.DataHungry) {
		next |= DataHungry
	}
	next |= t.hold(DataHungry, prev, next, e, m.HasIntensityPercentile)
	if next&DataHungry == 0 && m.HasTrafficVelocity &&
		atLeast(prev&HiddenGrowth != 0, m.TrafficVelocity, r.HiddenGrowth.Velocity) &&
		(!e.hasWfChange || e.wfChange <= r.HiddenGrowth.WorkforceFlatTolerance) {
		if n := r.HiddenGrowth.SustainedDays; prev&HiddenGrowth != 0 || n == 0 {
			next |= HiddenGrowth
		} else if t.sustained(e.st, n) {
			next |= HiddenGrowth
			e.sustained = true
		}
	}
	next |= t.hold(HiddenGrowth, prev, next, e, next&DataHungry == 0 && m.HasTrafficVelocity)
	if _, v, ok := t.slaMetric(m); ok && atLeast(prev&SLASensitive != 0, v, r.SLASensitive) {
		next |= SLASensitive
	} else {
		next |= t.hold(SLASensitive, prev, next, e, ok)
	}
	if atLeast(prev&RecoveryExposed != 0, m.RecoveryExposureHours90d, r.RecoveryExposed) {
		next |= RecoveryExposed
	}
	next |= t.hold(RecoveryExposed, prev, next, e, true)
	if atLeast(prev&MultiSite != 0, float64(m.DistinctPostalCodes90d), r.MultiSite) {
		next |= MultiSite
	}
	next |= t.hold(MultiSite, prev, next, e, true)
	if next&(SLASensitive|DataHungry) != 0 && next&RecoveryExposed != 0 {
		next |= ChurnRisk
	}
	return next
}

// Offer labels, sorted.
const (
	OfferGoldenHourRepair  = "GOLDEN_HOUR_REPAIR"
	OfferGrowthPartnership = "GROWTH_PARTNERSHIP"
	OfferLogicalVIPBackup  = "LOGICAL_VIP_BACKUP"
	OfferMultisiteVPN      = "MULTISITE_VPN"
	OfferSDWanUpsell       = "SD_WAN_UPSELL"
)

// Reason metric names (spec §3 metrics field names).
const (
	MetricIntensityPercentile = "intensity_percentile"
	MetricTrafficVelocity     = "traffic_velocity"
	MetricClaims365d          = "claims_365d"
	MetricRecoveryExposure    = "recovery_exposure_hours_90d"
	MetricDistinctPostalCodes = "distinct_postal_codes_90d"
	MetricWorkforceChange     = "workforce_change_60d"
)

// fill fills dec with st's decision: segments prev → next (st's), offers
// prevOffers → st's.
func (t *Task) fill(st *State, dec *Decision, e *evaluation, prev, next Segments, prevOffers offerSet) {
	r := t.rules
	m := &e.m
	if st.seq > 0 {
		dec.EventID = eventID(st.SIREN, st.seq)
	} else {
		dec.EventID = ""
	}
	dec.SIREN = st.SIREN
	dec.Seq = st.seq
	dec.EventTime = t.streamTime
	dec.Segments = next
	dec.Previous = prev
	dec.Added = next &^ prev
	dec.Removed = prev &^ next
	dec.Metrics = *m
	dec.ControlGroup = t.inControl(st)
	dec.RulesVersion = r.Version
	dec.Trigger, dec.TriggerTopic = "", ""

	th := func(seg Segments, t Threshold) float64 {
		if prev&seg != 0 {
			return t.Exit
		}
		return t.Enter
	}
	rs := dec.Reasons[:0]
	add := func(seg, metric string, v float64, threshold float64) {
		rs = append(rs, Reason{Segment: seg, Metric: metric, Value: v, Threshold: threshold})
	}
	pct := func(seg string) {
		if m.HasIntensityPercentile {
			add(seg, MetricIntensityPercentile, m.IntensityPercentile, th(DataHungry, r.DataHungry))
		}
	}
	claims := func(seg string) {
		if name, v, ok := t.slaMetric(m); ok {
			add(seg, name, v, th(SLASensitive, r.SLASensitive))
		}
	}
	exposure := func(seg string) {
		add(seg, MetricRecoveryExposure, m.RecoveryExposureHours90d, th(RecoveryExposed, r.RecoveryExposed))
	}
	if next&ChurnRisk != 0 {
		const s = "CHURN_RISK"
		if next&SLASensitive != 0 {
			claims(s)
		}
		if next&DataHungry != 0 {
			pct(s)
		}
		exposure(s)
	}
	if next&DataHungry != 0 {
		pct("DATA_HUNGRY")
	}
	if next&HiddenGrowth != 0 {
		const s = "HIDDEN_GROWTH"
		if m.HasTrafficVelocity {
			add(s, MetricTrafficVelocity, m.TrafficVelocity, th(HiddenGrowth, r.HiddenGrowth.Velocity))
		}
		if e.hasWfChange {
			add(s, MetricWorkforceChange, e.wfChange, r.HiddenGrowth.WorkforceFlatTolerance)
		}
	}
	if next&MultiSite != 0 {
		add("MULTI_SITE", MetricDistinctPostalCodes, float64(m.DistinctPostalCodes90d), th(MultiSite, r.MultiSite))
	}
	if next&RecoveryExposed != 0 {
		exposure("RECOVERY_EXPOSED")
	}
	if next&SLASensitive != 0 {
		claims("SLA_SENSITIVE")
	}
	rs = t.stabilityReasons(rs, e, next)
	dec.Reasons = rs

	nextOffers := st.offers
	dec.Offers = t.offerNames(nextOffers, dec.Offers[:0])
	dec.OffersAdded = t.offerNames(nextOffers&^prevOffers, dec.OffersAdded[:0])
	dec.OffersRemoved = t.offerNames(prevOffers&^nextOffers, dec.OffersRemoved[:0])
}

// offerSet is a set of offers; bit i is offerNames[i] (label order).
type offerSet uint8

var offerNames = [...]string{OfferGoldenHourRepair, OfferGrowthPartnership, OfferLogicalVIPBackup, OfferMultisiteVPN, OfferSDWanUpsell}

// allOffers has every offer bit.
const allOffers offerSet = 1<<len(offerNames) - 1

const (
	offerGoldenHour offerSet = 1 << iota
	offerGrowth
	offerVIPBackup
	offerMultisite
	offerSDWan
)

// offerNames appends the names of o to dst in the rules' priority order.
func (t *Task) offerNames(o offerSet, dst []string) []string {
	for _, i := range t.offerOrder {
		if o&(1<<i) != 0 {
			dst = append(dst, offerNames[i])
		}
	}
	return dst
}

// offers are the offers of segments segs for the SIREN evaluated in e (spec
// §6), less those whose product (Rules.Offers.Products) is the SIREN's plan:
// a company is never offered what it has.
func (t *Task) offers(segs Segments, e *evaluation) offerSet {
	r, m := t.rules, &e.m
	var o offerSet
	if segs&RecoveryExposed != 0 || (r.Offers.GoldenHourMinBreaches > 0 && m.GoldenHourBreaches90d >= r.Offers.GoldenHourMinBreaches) {
		o |= offerGoldenHour
	}
	if segs&HiddenGrowth != 0 {
		o |= offerGrowth
	}
	if segs&SLASensitive != 0 && m.HasWorkforce && m.Workforce < r.Offers.VIPBackupMaxWorkforce {
		o |= offerVIPBackup
	}
	if segs&MultiSite != 0 {
		o |= offerMultisite
	}
	if segs&DataHungry != 0 && e.plan == r.Offers.SDWanUpsellPlan {
		o |= offerSDWan
	}
	if e.plan != "" && o != 0 {
		for i := range t.products {
			if t.products[i].plan == e.plan {
				o &^= t.products[i].offers
				break
			}
		}
	}
	return o
}

func eventID(siren string, seq int64) string {
	var buf [48]byte
	b := append(buf[:0], siren...)
	b = append(b, '-')
	b = strconv.AppendInt(b, seq, 10)
	return string(b)
}
