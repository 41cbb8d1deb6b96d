package engine

import (
	"slices"
	"strings"
)

// Config holds window sizes and lateness (spec §4). Zero values take defaults.
type Config struct {
	// UsageDays is how many daily usage buckets a SIREN keeps (default 90).
	// Values below 60 are raised to 60: traffic_velocity needs days D-59..D.
	UsageDays int
	// HistoryDays is how long resolved outages and claims are kept, by
	// resolution / claim day (default 365). Values below 365 are raised to
	// 365: claims_365d needs them.
	HistoryDays int
	// AllowedLatenessMs: events older than stream time minus this are late
	// (ErrLate). Default 7 days; negative means 0.
	AllowedLatenessMs int64
	// MaxFutureSkewMs: CheckRecord rejects an event whose event_time is
	// later than its record timestamp plus this (ErrFuture). 0 (default)
	// means no future check; any other value, negative included, is used as
	// is.
	MaxFutureSkewMs int64
	// Repair makes Check classify old events for a live task: older than
	// retention is late (ErrLate); older than the allowed lateness, or from
	// a stream day already closed by a day change, is ErrNeedsRepair. Off
	// (replays): older than the allowed lateness is late.
	Repair bool
	// Holdout is the universal control group (holdout.go).
	Holdout Holdout
	// ConversionWindowMs and ChurnWindowMs are the attribution windows of
	// an eligibility (default 90 and 180 days, outcome.go).
	ConversionWindowMs int64
	ChurnWindowMs      int64
}

// Defaults of Config (spec §4).
const (
	DefaultUsageDays         = 90
	DefaultHistoryDays       = 365
	DefaultAllowedLatenessMs = 7 * DayMs
)

func (c Config) withDefaults() Config {
	if c.UsageDays == 0 {
		c.UsageDays = DefaultUsageDays
	}
	if c.UsageDays < 60 {
		c.UsageDays = 60
	}
	if c.HistoryDays < DefaultHistoryDays {
		c.HistoryDays = DefaultHistoryDays
	}
	if c.AllowedLatenessMs == 0 {
		c.AllowedLatenessMs = DefaultAllowedLatenessMs
	}
	if c.AllowedLatenessMs < 0 {
		c.AllowedLatenessMs = 0
	}
	c.Holdout = c.Holdout.withDefaults()
	if c.ConversionWindowMs <= 0 {
		c.ConversionWindowMs = DefaultConversionWindowMs
	}
	if c.ChurnWindowMs <= 0 {
		c.ChurnWindowMs = DefaultChurnWindowMs
	}
	return c
}

// postalWindowDays is the window of distinct_postal_codes_90d and how long a
// postal code is remembered after it was last seen.
const postalWindowDays = 90

type dayUsage struct {
	day   int32
	sims  int32 // max active_sims of the day, -1 = never reported
	bytes int64 // bytes_up + bytes_down, saturating
}

type postal struct {
	code    string
	lastDay int32
}

type openOutage struct {
	id    string
	start int64
}

type resolvedOutage struct {
	id         string
	start, end int64
}

type claim struct {
	day    int32
	amount int64
	linked bool // outage_id not null
}

type wfObs struct {
	t  int64
	wf int32
}

// State is one SIREN's windows and last decision. It is owned by one Task
// (not safe for concurrent use, even by readers: BeginDay's pass 1, Evaluate
// and View update a runtime memo). Its encoding (AppendBinary) depends only on
// the sequence of events Stepped by its task.
type State struct {
	SIREN string

	seq    int64
	segs   Segments
	offers offerSet // the offers of the last decision (header extension)
	// entered: the entry day of held segments with a min_dwell_days
	// (header extension tag 2, dwell.go).
	entered enteredDays
	// outcomeState: holdout group and open eligibilities (header
	// extension tags 3 and 4, outcome.go).
	outcomeState

	hasUsage      bool
	firstUsageDay int32
	usage         []dayUsage // sorted by day, one entry per day

	postals  []postal         // sorted by code
	open     []openOutage     // sorted by id
	resolved []resolvedOutage // sorted by id; also remembers resolved ids
	claims   []claim          // sorted by day, arrival order within a day

	hasProfile   bool
	profileTime  int64
	hasWorkforce bool
	workforce    int32
	plan         string
	wfHist       []wfObs // known workforce observations, sorted by time

	// ids: the applied event ids of the dedup window (see dedup).
	ids dedup

	// runtime only, not encoded: a state of version 2 or less holding
	// segments does not know the offers it emitted (evaluate derives them).
	offersUnknown bool

	// runtime only, not encoded: the stream day of the last prune. Pruning
	// is idempotent for a given day, so skipping it changes no bytes.
	pruned    bool
	prunedDay int32

	// runtime only, not encoded: the last traffic result. Every change of
	// usage must call usageChanged; the zero value (a decoded or new State)
	// holds nothing.
	tmemo trafficMemo
}

// trafficMemo is traffic(day) of the current usage buckets, valid when ok.
// A day change asks for the same day twice per SIREN (pass 1 intensity,
// pass 2 Evaluate).
type trafficMemo struct {
	ok        bool
	day       int32
	maxSims   int32
	t30, prev int64
}

// usageChanged drops the traffic memo. Call it on every mutation of s.usage
// (except applyUsage, which updates it: memoAdd).
func (s *State) usageChanged() { s.tmemo = trafficMemo{} }

// memoAdd keeps the traffic memo exact when b bytes and sims active SIMs are
// added to day d's bucket: the event lands in the memo day's 30-day window,
// its previous 30 days, or neither. Sums saturate like the scan's (for
// non-negative terms, saturating sums do not depend on the order); the max of
// SIMs only grows.
func (s *State) memoAdd(d int32, b int64, sims int32) {
	m := &s.tmemo
	if !m.ok {
		return
	}
	switch {
	case d > m.day:
	case d >= m.day-29:
		m.t30 = satAdd(m.t30, b)
		m.maxSims = max(m.maxSims, sims)
	case d >= m.day-59:
		m.prev = satAdd(m.prev, b)
	}
}

// NewState returns the empty state of a SIREN (nothing seen, seq 0).
func NewState(siren string) *State { return &State{SIREN: siren} }

// Seq is the seq of the last emitted decision (0: none yet).
func (s *State) Seq() int64 { return s.seq }

// Segments is the set of segments currently held.
func (s *State) Segments() Segments { return s.segs }

func (s *State) seen(h uint64) bool { return s.ids.seen(h) }

func (s *State) openIndex(id string) (int, bool) {
	lo, hi := 0, len(s.open)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.open[m].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s.open) && s.open[lo].id == id
}

func (s *State) resolvedIndex(id string) (int, bool) {
	lo, hi := 0, len(s.resolved)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.resolved[m].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s.resolved) && s.resolved[lo].id == id
}

func (s *State) notePostal(code string, day int32, c *BoundCounts) {
	if code == "" {
		return
	}
	lo, hi := 0, len(s.postals)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.postals[m].code < code {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s.postals) && s.postals[lo].code == code {
		if day > s.postals[lo].lastDay {
			s.postals[lo].lastDay = day
		}
		return
	}
	s.postals = append(s.postals, postal{})
	copy(s.postals[lo+1:], s.postals[lo:])
	s.postals[lo] = postal{code: strings.Clone(code), lastDay: day}
	for len(s.postals) > MaxPostalCodes {
		// The code seen least recently goes (then the smallest).
		j := 0
		for i, p := range s.postals {
			if p.lastDay < s.postals[j].lastDay {
				j = i
			}
		}
		s.postals = slices.Delete(s.postals, j, j+1)
		c.add(BoundPostalCodes, s.SIREN, 1)
	}
}

func satAdd(a, b int64) int64 {
	if a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

// applyUsage adds a usage record; minDay is the oldest day kept.
func (s *State) applyUsage(ev *Event, minDay int32, c *BoundCounts) {
	d := Day(ev.EventTime)
	if !s.hasUsage || d < s.firstUsageDay {
		s.firstUsageDay = d
		s.hasUsage = true
	}
	s.notePostal(ev.PostalCode, d, c)
	if d < minDay {
		return
	}
	sims := int32(-1)
	if ev.HasActiveSIMs {
		sims = ev.ActiveSIMs
	}
	b := ev.BytesUp + ev.BytesDown
	s.memoAdd(d, b, sims)
	i := len(s.usage) - 1
	for i >= 0 && s.usage[i].day > d {
		i--
	}
	if i >= 0 && s.usage[i].day == d {
		u := &s.usage[i]
		u.bytes = satAdd(u.bytes, b)
		if sims > u.sims {
			u.sims = sims
		}
		return
	}
	s.usage = append(s.usage, dayUsage{})
	copy(s.usage[i+2:], s.usage[i+1:])
	s.usage[i+1] = dayUsage{day: d, sims: sims, bytes: b}
}

func (s *State) applyOutage(ev *Event, start int64, c *BoundCounts) {
	s.notePostal(ev.PostalCode, Day(ev.EventTime), c)
	if _, done := s.resolvedIndex(ev.OutageID); done {
		return // resolution already known: a late STARTED or a repeated RESOLVED is a no-op
	}
	oi, isOpen := s.openIndex(ev.OutageID)
	switch ev.Status {
	case OutageStarted:
		if isOpen {
			if ev.EventTime < s.open[oi].start {
				s.open[oi].start = ev.EventTime
			}
			return
		}
		s.open = append(s.open, openOutage{})
		copy(s.open[oi+1:], s.open[oi:])
		s.open[oi] = openOutage{id: strings.Clone(ev.OutageID), start: ev.EventTime}
		for len(s.open) > MaxOpenOutages {
			// The outage open the longest goes (then the smallest id).
			j := 0
			for i, o := range s.open {
				if o.start < s.open[j].start {
					j = i
				}
			}
			s.open = slices.Delete(s.open, j, j+1)
			c.add(BoundOpenOutages, s.SIREN, 1)
		}
	case OutageResolved:
		id := ev.OutageID
		if isOpen {
			id = s.open[oi].id
			copy(s.open[oi:], s.open[oi+1:])
			s.open[len(s.open)-1] = openOutage{}
			s.open = s.open[:len(s.open)-1]
		} else {
			id = strings.Clone(id)
		}
		ri, _ := s.resolvedIndex(id)
		s.resolved = append(s.resolved, resolvedOutage{})
		copy(s.resolved[ri+1:], s.resolved[ri:])
		s.resolved[ri] = resolvedOutage{id: id, start: start, end: ev.EventTime}
		for len(s.resolved) > MaxResolvedOutages {
			// The outage resolved first goes (then the smallest id).
			j := 0
			for i, o := range s.resolved {
				if o.end < s.resolved[j].end {
					j = i
				}
			}
			s.resolved = slices.Delete(s.resolved, j, j+1)
			c.add(BoundResolvedOutages, s.SIREN, 1)
		}
	}
}

// outageStart returns the start of the outage a RESOLVED event closes:
// started_at when present, else the open STARTED time.
func (s *State) outageStart(ev *Event) (int64, bool) {
	if ev.HasStartedAt {
		return ev.StartedAt, true
	}
	if i, ok := s.openIndex(ev.OutageID); ok {
		return s.open[i].start, true
	}
	return 0, false
}

func (s *State) applyClaim(ev *Event, c *BoundCounts) {
	d := Day(ev.EventTime)
	i := len(s.claims)
	for i > 0 && s.claims[i-1].day > d {
		i--
	}
	s.claims = append(s.claims, claim{})
	copy(s.claims[i+1:], s.claims[i:])
	s.claims[i] = claim{day: d, amount: ev.AmountCents, linked: ev.HasOutageID}
	if n := len(s.claims) - MaxClaims; n > 0 {
		// The oldest go (earliest day, then earliest arrival).
		s.claims = s.claims[:copy(s.claims, s.claims[n:])]
		c.add(BoundClaims, s.SIREN, n)
	}
}

func (s *State) applyProfile(ev *Event, c *BoundCounts) {
	if !s.hasProfile || ev.EventTime >= s.profileTime {
		s.hasProfile = true
		s.profileTime = ev.EventTime
		s.hasWorkforce = ev.HasWorkforce
		s.workforce = 0
		if ev.HasWorkforce {
			s.workforce = ev.Workforce
		}
		if s.plan != ev.Plan {
			s.plan = strings.Clone(ev.Plan)
		}
	}
	if ev.HasWorkforce {
		i := len(s.wfHist)
		for i > 0 && s.wfHist[i-1].t > ev.EventTime {
			i--
		}
		s.wfHist = append(s.wfHist, wfObs{})
		copy(s.wfHist[i+1:], s.wfHist[i:])
		s.wfHist[i] = wfObs{t: ev.EventTime, wf: ev.Workforce}
		if n := len(s.wfHist) - MaxWorkforceObservations; n > 0 {
			s.wfHist = s.wfHist[:copy(s.wfHist, s.wfHist[n:])]
			c.add(BoundWorkforce, s.SIREN, n)
		}
	}
}

func (s *State) remember(h uint64, day int32, w dedupWindow, c *BoundCounts) {
	s.ids.remember(h, day, w, c, s.SIREN)
}

// retention is what prune keeps, all relative to the stream day.
type retention struct {
	usageMin   int32 // oldest usage day kept
	postalMin  int32
	historyMin int32 // oldest resolved-outage end day / claim day
	wfFrom     int64 // first ms of the workforce window
	dedupMin   int32
}

func (s *State) prune(r retention) {
	// usage: sorted by day, drop a prefix.
	n := 0
	for n < len(s.usage) && s.usage[n].day < r.usageMin {
		n++
	}
	if n > 0 {
		// The memo survives unless a dropped bucket was in its 60 days
		// (never for a memo of the stream day: UsageDays >= 60).
		if m := &s.tmemo; m.ok && s.usage[n-1].day >= m.day-59 {
			s.usageChanged()
		}
		s.usage = s.usage[:copy(s.usage, s.usage[n:])]
	}
	// postal codes: filter in place.
	k := 0
	for _, p := range s.postals {
		if p.lastDay >= r.postalMin {
			s.postals[k] = p
			k++
		}
	}
	clear(s.postals[k:])
	s.postals = s.postals[:k]
	k = 0
	for _, o := range s.resolved {
		if Day(o.end) >= r.historyMin {
			s.resolved[k] = o
			k++
		}
	}
	clear(s.resolved[k:])
	s.resolved = s.resolved[:k]
	n = 0
	for n < len(s.claims) && s.claims[n].day < r.historyMin {
		n++
	}
	if n > 0 {
		s.claims = s.claims[:copy(s.claims, s.claims[n:])]
	}
	// workforce: keep the observation in effect at wfFrom and everything after.
	n = 0
	for n+1 < len(s.wfHist) && s.wfHist[n+1].t <= r.wfFrom {
		n++
	}
	if n > 0 {
		s.wfHist = s.wfHist[:copy(s.wfHist, s.wfHist[n:])]
	}
	s.ids.prune(r.dedupMin)
}
