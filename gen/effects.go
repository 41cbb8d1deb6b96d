package gen

import (
	"fmt"
	"slices"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/topology"
)

// Planted outcome effects (spec §8): a history whose true uplift is known,
// to prove the measurement. Every SIREN becomes eligible for MULTISITE_VPN
// on its start day (usage at two postal codes: MULTI_SITE), and every other
// one also for GOLDEN_HOUR_REPAIR (a 6-hour outage: RECOVERY_EXPOSED). Then,
// inside the conversion window, it moves to the offer's product with the
// planted probability of its holdout group, and it terminates with the
// planted churn probability. Offer responses are written for treated
// SIRENs (what an NBO engine would do); they count for nothing.

// Effect is the planted conversion and churn rates of one offer per group.
type Effect struct {
	Offer                        string
	Product                      string // the plan a conversion moves to
	ControlRate, TreatmentRate   float64
	ControlChurn, TreatmentChurn float64
}

// Lift is the planted absolute conversion lift.
func (e Effect) Lift() float64 { return e.TreatmentRate - e.ControlRate }

// DefaultEffects: MULTISITE_VPN converts 15 points more when treated,
// GOLDEN_HOUR_REPAIR the same in both groups (no effect) but churns less.
func DefaultEffects() []Effect {
	return []Effect{
		{Offer: engine.OfferMultisiteVPN, Product: "MULTISITE_VPN", ControlRate: 0.10, TreatmentRate: 0.25, ControlChurn: 0.05, TreatmentChurn: 0.05},
		{Offer: engine.OfferGoldenHourRepair, Product: "PREMIUM_SLA", ControlRate: 0.10, TreatmentRate: 0.10, ControlChurn: 0.10, TreatmentChurn: 0.05},
	}
}

// OutcomeConfig is a planted-effects history.
type OutcomeConfig struct {
	SIRENs  int            // default 4000
	StartMs int64          // first day (UTC midnight); default 2026-01-01
	Days    int            // days over which eligibilities start; default 10
	Window  int            // conversion and churn window in days the draws fall in; default 20
	Tail    int            // extra days of clock events after the last window (lateness); default Window+10
	Seed    int64          // default 1
	Holdout engine.Holdout // the groups the effects follow
	Effects []Effect       // default DefaultEffects()
	// FirstSIREN is the index (SIREN(i)) of the first SIREN: a cohort
	// beside a Config's population starts after it (default 0).
	FirstSIREN int
	// NoClock leaves out the clock SIRENs that move stream time past every
	// window: for a cohort followed by a history that moves it (Cohort).
	NoClock bool
}

// Cohort is the planted-effects cohort that Config.Outcomes puts before a
// history of sirens SIRENs starting at startMs, for a processor with the
// given conversion and churn windows and allowed lateness (ms): its
// eligibilities start early enough that they all close at the history's
// first day change, so the uplift table counts exactly the planted
// outcomes — the history's own eligibilities close only after the longer
// window plus the lateness (187 days at the defaults), without planted
// conversions. Its SIRENs follow the history's (SIREN(sirens) on).
func Cohort(size, sirens int, startMs, convMs, churnMs, latenessMs int64, h engine.Holdout, seed int64) OutcomeConfig {
	c := OutcomeConfig{SIRENs: size, FirstSIREN: sirens, Holdout: h.WithDefaults(), Seed: seed, NoClock: true}
	c.defaults()
	c.Window = int(min(convMs, churnMs) / dayMs)
	span := (max(convMs, churnMs) + latenessMs + dayMs - 1) / dayMs
	c.StartMs = startMs - (int64(c.Days)+span+1)*dayMs
	return c
}

// endMs bounds the event times of the history (exclusive).
func (c *OutcomeConfig) endMs() int64 {
	return c.StartMs + int64(c.Days+c.Window+1)*dayMs
}

func (c *OutcomeConfig) defaults() {
	if c.SIRENs == 0 {
		c.SIRENs = 4000
	}
	if c.StartMs == 0 {
		c.StartMs = 1767225600000 // 2026-01-01
	}
	if c.Days == 0 {
		c.Days = 10
	}
	if c.Window == 0 {
		c.Window = 20
	}
	if c.Tail == 0 {
		c.Tail = c.Window + 10
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Effects == nil {
		c.Effects = DefaultEffects()
	}
}

const clockSIRENs = 32

// OutcomeHistory emits a planted-effects history in event-time order, each
// record with its input topic's default name (topology).
func OutcomeHistory(cfg OutcomeConfig, emit func(r *Record) error) error {
	cfg.defaults()
	r := newRNG(cfg.Seed, 0x0c7c0e, 0, 0, 0)
	var recs []Record
	add := func(ev engine.Event) {
		ev.EventID = fmt.Sprintf("o-%d", len(recs))
		recs = append(recs, Record{Topic: topology.Defaults().Input(ev.Kind), Event: ev})
	}
	for i := 0; i < cfg.SIRENs; i++ {
		s := SIREN(cfg.FirstSIREN + i)
		d0 := cfg.StartMs + int64(i%cfg.Days)*dayMs
		// No workforce (nor active SIMs): the cohort has no digital
		// intensity, so it neither enters DATA_HUNGRY (SD_WAN_UPSELL
		// eligibilities without planted effects) nor weighs on the
		// percentiles of a population beside it.
		add(engine.Event{Kind: engine.KindProfile, SIREN: s, EventTime: d0 + hourMs, Plan: "BASIC_SIM"})
		add(engine.Event{Kind: engine.KindContractEvent, SIREN: s, EventTime: d0 + hourMs, ContractType: engine.ContractRenewal, Plan: "BASIC_SIM", HasPlan: true, MRRCents: 10_000})
		add(engine.Event{Kind: engine.KindUsage, SIREN: s, EventTime: d0 + 2*hourMs, SiteID: "a", PostalCode: "75001", BytesUp: 1e6})
		add(engine.Event{Kind: engine.KindUsage, SIREN: s, EventTime: d0 + 3*hourMs, SiteID: "b", PostalCode: "69001", BytesUp: 1e6})
		eligibleAt := map[string]int64{engine.OfferMultisiteVPN: d0 + 3*hourMs}
		if i%2 == 0 {
			add(engine.Event{Kind: engine.KindOutage, SIREN: s, EventTime: d0 + 4*hourMs, OutageID: "out-" + s, SiteID: "a", PostalCode: "75001", Status: engine.OutageStarted})
			add(engine.Event{Kind: engine.KindOutage, SIREN: s, EventTime: d0 + 10*hourMs, OutageID: "out-" + s, SiteID: "a", PostalCode: "75001",
				Status: engine.OutageResolved, StartedAt: d0 + 4*hourMs, HasStartedAt: true})
			eligibleAt[engine.OfferGoldenHourRepair] = d0 + 10*hourMs // exposure reaches 4 h at the resolution
		}
		control := cfg.Holdout.InControl(s)
		churned := false
		for _, e := range cfg.Effects {
			at, ok := eligibleAt[e.Offer]
			if !ok {
				continue
			}
			rate, churn := e.TreatmentRate, e.TreatmentChurn
			if control {
				rate, churn = e.ControlRate, e.ControlChurn
			}
			if !control {
				add(engine.Event{Kind: engine.KindOfferResponse, SIREN: s, Offer: e.Offer, EventTime: at + dayMs,
					Channel: engine.ChannelTelesales, ResponseStatus: engine.ResponsePresented})
			}
			// Draws inside the window (a day margin on each side).
			inWindow := at + dayMs + int64(r.float()*float64(cfg.Window-2))*dayMs
			if r.float() < rate {
				add(engine.Event{Kind: engine.KindContractEvent, SIREN: s, EventTime: inWindow, ContractType: engine.ContractPlanChange,
					Plan: e.Product, HasPlan: true, MRRCents: 15_000})
			}
			if !churned && r.float() < churn {
				churned = true
				add(engine.Event{Kind: engine.KindContractEvent, SIREN: s, EventTime: inWindow + hourMs, ContractType: engine.ContractTermination})
			}
		}
	}
	// Clock SIRENs move stream time day by day past every window, in every
	// partition (stream time is per partition task): 32 of them, so that
	// any partition count up to a few dozen has one.
	for c := 0; c < clockSIRENs && !cfg.NoClock; c++ {
		clock := SIREN(cfg.FirstSIREN + cfg.SIRENs + c)
		for d := 0; d < cfg.Days+cfg.Window+cfg.Tail; d++ {
			add(engine.Event{Kind: engine.KindUsage, SIREN: clock, EventTime: cfg.StartMs + int64(d)*dayMs + 12*hourMs, SiteID: "c", PostalCode: "13001", BytesUp: 1})
		}
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return cmp(a.Event.EventTime, b.Event.EventTime) })
	for i := range recs {
		if err := emit(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}
