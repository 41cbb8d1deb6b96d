// Package gen is sirenstream's deterministic synthetic data generator: B2B
// telecom customers (SIRENs) of several archetypes producing usage, outage,
// claim and profile events (spec §2) such that every segment of spec §6
// appears in a 90–120 day run. It is pure Go: it performs no I/O and reads
// no clock; the same Config always yields the same event sequence.
package gen

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/topology"
)

// Topic names of generated records: the default input topics of package
// topology.
const (
	TopicUsage    = topology.DefaultUsage
	TopicOutages  = topology.DefaultOutages
	TopicClaims   = topology.DefaultClaims
	TopicProfiles = topology.DefaultProfiles
	// Outcome inputs (Config.Outcomes).
	TopicOfferResponses = topology.DefaultOfferResponses
	TopicContractEvents = topology.DefaultContractEvents
)

// Plans written in profiles.
const (
	PlanBasicSIM   = "BASIC_SIM"
	PlanSDWAN      = "SD_WAN"
	PlanPremiumSLA = "PREMIUM_SLA"
)

// Kinds of deliberately bad records (Record.Bad).
const (
	BadSIRENLetters         = "invalid_siren_letters"  // a digit replaced by a letter
	BadSIRENLength          = "invalid_siren_length"   // 8 or 10 digits
	BadSIRENLuhn            = "invalid_siren_luhn"     // 9 digits, Luhn check fails
	BadNegativeBytes        = "negative_bytes"         // usage with bytes_up < 0
	BadResolvedWithoutStart = "resolved_without_start" // RESOLVED, no started_at, unknown outage_id
)

// Config parameterises a generation run. Zero fields take defaults.
type Config struct {
	SIRENs  int       // number of companies; default 2000
	Days    int       // length of the run in days; default 120
	Start   time.Time // first day (truncated to its UTC day); default 2026-01-01 UTC
	Seed    int64     // default 1 (0 means default)
	BadRate float64   // fraction of extra, deliberately bad records (0 ≤ BadRate < 1); default 0
	// Outcomes, when set, is a planted-effects cohort (offer responses and
	// contract events, see Cohort) generated before the history; it must
	// end before Start. nil: none.
	Outcomes *OutcomeConfig
}

// Record is one generated input record. Generate reuses it between calls.
type Record struct {
	Topic string
	Event engine.Event
	Bad   string // "" for a good record, else one of the Bad* kinds
}

const (
	dayMs  = int64(24 * time.Hour / time.Millisecond)
	hourMs = int64(time.Hour / time.Millisecond)
	minMs  = int64(time.Minute / time.Millisecond)

	maxDays = 3660
)

// Salts naming independent random streams.
const (
	saltArchetype uint64 = iota + 1
	saltPlan
	saltUsage
	saltBad
)

func (c *Config) defaults() {
	if c.SIRENs == 0 {
		c.SIRENs = 2000
	}
	if c.Days == 0 {
		c.Days = 120
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	c.Start = c.Start.UTC().Truncate(24 * time.Hour)
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate fills in defaults and checks the config.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.SIRENs < 0 || c.SIRENs > maxSIRENs:
		return fmt.Errorf("gen: sirens must be in [1, %d], got %d", maxSIRENs, c.SIRENs)
	case c.Days < 0 || c.Days > maxDays:
		return fmt.Errorf("gen: days must be in [1, %d], got %d", maxDays, c.Days)
	case math.IsNaN(c.BadRate) || c.BadRate < 0 || c.BadRate >= 1:
		return fmt.Errorf("gen: bad rate must be in [0, 1), got %v", c.BadRate)
	case c.Start.Year() < 1971 || c.Start.Year() > 9000:
		return fmt.Errorf("gen: start %v out of range", c.Start)
	}
	if o := c.Outcomes; o != nil {
		o.defaults()
		if o.FirstSIREN < c.SIRENs || o.endMs() > c.Start.UnixMilli() {
			return fmt.Errorf("gen: the outcome cohort must follow the population's SIRENs and end before the start (use Cohort)")
		}
	}
	return nil
}

// ErrStop may be returned by emit to end Generate early without error.
var ErrStop = errors.New("gen: stop")

// site is one line/site of a firm.
type site struct {
	id     string
	postal string
	weight float64 // share of the firm's traffic (un-normalised)
}

// firm is the precomputed plan of one SIREN.
type firm struct {
	idx   int
	siren string
	arch  Archetype
	sites []site

	firstDay, quietDay int     // usage on days [firstDay, quietDay)
	dailyBytes         float64 // mean bytes per day (all sites) before growth
	weekend            float64 // weekend traffic factor
	upShare            float64 // share of bytes that are bytes_up
	growth             float64 // monthly growth (multiplicative), from growthStart
	growthStart        int
	drift              float64 // monthly drift (steady firms)

	sims    int32 // active SIM count reported in usage, when hasSims
	hasSims bool
}

// pending is a non-usage event scheduled on a day at plan time.
type pending struct {
	topic string
	firm  int32
	ev    engine.Event
}

// item is one record of a day, sorted by (t, kind, firm, seq, bad).
type item struct {
	t    int64
	kind engine.Kind
	firm int32
	seq  int32 // usage: site index; others: index in the firm's events of that kind
	bad  uint8 // 0 good; else 1 + index in badKinds
	pend int32 // index into the day's pending slice, or -1 for usage
}

var badKinds = [...]string{BadSIRENLetters, BadSIRENLength, BadSIRENLuhn, BadNegativeBytes, BadResolvedWithoutStart}

func cmpItem(a, b item) int {
	switch {
	case a.t != b.t:
		return cmp(a.t, b.t)
	case a.kind != b.kind:
		return cmp(a.kind, b.kind)
	case a.firm != b.firm:
		return cmp(a.firm, b.firm)
	case a.seq != b.seq:
		return cmp(a.seq, b.seq)
	default:
		return cmp(a.bad, b.bad)
	}
}

func cmp[T int64 | int32 | uint8 | engine.Kind](a, b T) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// Generate produces the whole run, calling emit for each record in
// non-decreasing event_time order (day by day; within a day by time, then
// topic order profiles, outages, claims, usage, then SIREN index). emit must
// not keep r: it is reused. An error from emit stops generation and is
// returned, except ErrStop which ends it with a nil error.
func Generate(cfg Config, emit func(r *Record) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Outcomes != nil {
		// Entirely before Start (Validate): event-time order holds.
		if err := OutcomeHistory(*cfg.Outcomes, emit); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	g := newGenerator(cfg)
	err := g.run(emit)
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

type generator struct {
	cfg     Config
	startMs int64
	endMs   int64
	firms   []firm
	pend    [][]pending // by day
	dates   []string    // "20260101" per day
	weekend []bool      // per day
	buf     []byte
}

func newGenerator(cfg Config) *generator {
	g := &generator{
		cfg:     cfg,
		startMs: cfg.Start.UnixMilli(),
		pend:    make([][]pending, cfg.Days),
		dates:   make([]string, cfg.Days),
		weekend: make([]bool, cfg.Days),
		firms:   make([]firm, cfg.SIRENs),
	}
	g.endMs = g.startMs + int64(cfg.Days)*dayMs
	for d := range cfg.Days {
		t := cfg.Start.AddDate(0, 0, d)
		g.dates[d] = t.Format("20060102")
		wd := t.Weekday()
		g.weekend[d] = wd == time.Saturday || wd == time.Sunday
	}
	for i := range g.firms {
		g.plan(i)
	}
	return g
}

func (g *generator) dayOf(ms int64) int { return int((ms - g.startMs) / dayMs) }

// schedule queues a non-usage event on its day; events after the run are dropped.
func (g *generator) schedule(fi int, topic string, ev engine.Event) {
	if ev.EventTime < g.startMs || ev.EventTime >= g.endMs {
		return
	}
	d := g.dayOf(ev.EventTime)
	g.pend[d] = append(g.pend[d], pending{topic: topic, firm: int32(fi), ev: ev})
}

func (g *generator) run(emit func(r *Record) error) error {
	var (
		items []item
		rec   Record
	)
	for d := 0; d < g.cfg.Days; d++ {
		items = items[:0]
		dayStart := g.startMs + int64(d)*dayMs
		for fi := range g.firms {
			f := &g.firms[fi]
			if d < f.firstDay || d >= f.quietDay {
				continue
			}
			for s := range f.sites {
				r := newRNG(g.cfg.Seed, saltUsage, uint64(fi), uint64(s), uint64(d))
				// Usage is a daily aggregate reported at some time of the
				// day, after the first 5 minutes (reserved for profiles).
				t := dayStart + 5*minMs + int64(r.next()%uint64(dayMs-5*minMs))
				items = append(items, item{t: t, kind: engine.KindUsage, firm: int32(fi), seq: int32(s), pend: -1})
			}
		}
		for pi := range g.pend[d] {
			p := &g.pend[d][pi]
			items = append(items, item{t: p.ev.EventTime, kind: p.ev.Kind, firm: p.firm, seq: int32(pi), pend: int32(pi)})
		}
		if g.cfg.BadRate > 0 {
			n := len(items)
			for k := 0; k < n; k++ {
				it := items[k]
				r := newRNG(g.cfg.Seed, saltBad, uint64(it.firm), uint64(d)<<8|uint64(it.kind), uint64(it.seq))
				if !r.chance(g.cfg.BadRate) {
					continue
				}
				bad := uint8(r.next() % 3) // invalid SIREN variants
				switch {
				case it.kind == engine.KindUsage && r.chance(0.4):
					bad = 3
				case it.kind == engine.KindOutage && g.pend[d][it.pend].ev.Status == engine.OutageResolved && r.chance(0.6):
					bad = 4
				}
				it.bad = bad + 1
				items = append(items, it)
			}
		}
		slices.SortFunc(items, cmpItem)
		for k := range items {
			it := &items[k]
			if it.pend < 0 {
				g.usage(&rec, it, d)
			} else {
				p := &g.pend[d][it.pend]
				rec.Topic = p.topic
				rec.Event = p.ev
			}
			rec.Bad = ""
			if it.bad != 0 {
				g.spoil(&rec, it)
			}
			if err := emit(&rec); err != nil {
				return err
			}
		}
		g.pend[d] = nil // free memory as we go
	}
	return nil
}

func (g *generator) usage(rec *Record, it *item, d int) {
	f := &g.firms[it.firm]
	s := &f.sites[it.seq]
	r := newRNG(g.cfg.Seed, saltUsage, uint64(it.firm), uint64(it.seq), uint64(d))
	r.next() // the time draw (see run)
	total := 0.0
	for k := range f.sites {
		total += f.sites[k].weight
	}
	mean := f.dailyBytes * s.weight / total
	months := float64(d) / 30
	mean *= math.Pow(1+f.drift, months)
	if f.growth != 0 && d > f.growthStart {
		mean *= math.Pow(1+f.growth, float64(d-f.growthStart)/30)
	}
	// Weekly seasonality, normalised so that the weekly mean is `mean`.
	norm := 7 / (5 + 2*f.weekend)
	if g.weekend[d] {
		mean *= f.weekend * norm
	} else {
		mean *= norm
	}
	const sigma = 0.18
	bytes := mean * math.Exp(sigma*r.norm()-sigma*sigma/2)
	if bytes < 1e6 {
		bytes = 1e6
	}
	up := clamp(f.upShare+0.03*r.norm(), 0.02, 0.6)
	bu := int64(bytes * up)
	bd := int64(bytes) - bu

	b := append(g.buf[:0], "u-"...)
	b = append(b, s.id...)
	b = append(b, '-')
	b = append(b, g.dates[d]...)
	g.buf = b

	rec.Topic = TopicUsage
	rec.Event = engine.Event{
		Kind:       engine.KindUsage,
		EventID:    string(b),
		SIREN:      f.siren,
		EventTime:  it.t,
		SiteID:     s.id,
		PostalCode: s.postal,
		BytesUp:    bu,
		BytesDown:  bd,
	}
	if f.hasSims {
		sims := f.sims
		if sims > 3 && r.chance(0.1) {
			sims-- // a SIM idle that day
		}
		rec.Event.ActiveSIMs = sims
		rec.Event.HasActiveSIMs = true
	}
}

// spoil turns rec into the bad variant it.bad of itself, with an event_id
// distinct from the good record's.
func (g *generator) spoil(rec *Record, it *item) {
	kind := badKinds[it.bad-1]
	rec.Bad = kind
	ev := &rec.Event
	ev.EventID = "x-" + ev.EventID
	switch kind {
	case BadSIRENLetters:
		b := []byte(ev.SIREN)
		b[int(it.seq)%9] = 'A' + byte(it.firm%26)
		ev.SIREN = string(b)
	case BadSIRENLength:
		if it.firm%2 == 0 {
			ev.SIREN = ev.SIREN[:8]
		} else {
			ev.SIREN += strconv.Itoa(int(it.seq % 10))
		}
	case BadSIRENLuhn:
		b := []byte(ev.SIREN)
		b[8] = '0' + (b[8]-'0'+1+byte(it.firm%9))%10
		ev.SIREN = string(b)
	case BadNegativeBytes:
		ev.BytesUp = -1 - ev.BytesUp
	case BadResolvedWithoutStart:
		ev.OutageID = "x-" + ev.OutageID
		ev.StartedAt = 0
		ev.HasStartedAt = false
	}
}
