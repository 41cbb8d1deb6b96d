package gen

import (
	"math"
	"slices"
	"strconv"

	"github.com/sirenstream/sirenstream/engine"
)

// plan draws firm i's whole life up front: archetype, sites, traffic model,
// profiles, outages and claims. Usage is drawn per day in run.
func (g *generator) plan(i int) {
	days := g.cfg.Days
	r := newRNG(g.cfg.Seed, saltPlan, uint64(i), 0, 0)
	f := &g.firms[i]
	f.idx = i
	f.siren = SIREN(i)
	f.arch = g.cfg.ArchetypeOf(i)
	f.quietDay = days
	f.weekend = r.uniform(0.3, 0.9)
	f.upShare = r.uniform(0.12, 0.35)

	var (
		workforce float64
		hasWF     = true
		intensity float64 // GB per employee (or per SIM) per 30 days
		nSites    = 1
		distinct  = false
		plan      = pickPlan(&r, 0.60, 0.25)
	)
	switch f.arch {
	case Steady:
		workforce = clamp(r.logNormal(12, 1.1), 1, 500)
		intensity = r.logNormal(1.2, 0.6)
		f.drift = r.uniform(-0.04, 0.06)
		if r.chance(0.12) { // a client that joins during the run
			f.firstDay = r.between(1, days/2)
		}
		switch {
		case r.chance(0.08):
			nSites = 2 // two lines at one address
		case r.chance(0.05):
			nSites, distinct = 2, true
		}
	case HiddenGrowth:
		workforce = clamp(r.logNormal(12, 0.7), 2, 120)
		intensity = r.logNormal(0.5, 0.4)
		f.growth = r.uniform(0.25, 0.45)
		f.growthStart = r.between(0, min(20, days/6))
	case Scaling:
		workforce = clamp(r.logNormal(20, 0.7), 3, 300)
		intensity = r.logNormal(0.8, 0.4)
		f.growth = r.uniform(0.25, 0.45)
		f.growthStart = r.between(0, min(20, days/6))
	case DataHeavy:
		workforce = clamp(r.logNormal(6, 0.7), 1, 60)
		intensity = r.logNormal(18, 0.5)
		plan = pickPlan(&r, 0.55, 0.30)
		if r.chance(0.2) {
			nSites = 2
		}
	case MultiSite:
		workforce = clamp(r.logNormal(40, 0.9), 4, 500)
		intensity = r.logNormal(1.2, 0.6)
		nSites, distinct = r.between(2, 4), true
		plan = pickPlan(&r, 0.30, 0.50)
	case MultiLine:
		workforce = clamp(r.logNormal(15, 0.8), 2, 300)
		intensity = r.logNormal(1.5, 0.6)
		nSites = r.between(2, 5)
	case OutageExposed:
		workforce = clamp(r.logNormal(15, 1.0), 1, 500)
		intensity = r.logNormal(1.2, 0.6)
	case SLAClaimant:
		workforce = clamp(r.logNormal(10, 0.8), 1, 300)
		intensity = r.logNormal(1.5, 0.6)
		plan = pickPlan(&r, 0.40, 0.25)
	case GoingQuiet:
		workforce = clamp(r.logNormal(8, 0.8), 1, 100)
		intensity = r.logNormal(10, 0.5)
		f.quietDay = r.between(days*35/100, days*75/100)
		if r.chance(0.4) {
			nSites, distinct = 2, true
		}
	case NoWorkforce:
		hasWF = false
		f.sims = int32(clamp(math.Round(r.logNormal(8, 0.8)), 1, 60))
		f.hasSims = !r.chance(0.2)
		intensity = r.logNormal(2, 0.7)
	}
	wf := int32(math.Round(workforce))
	if hasWF && r.chance(0.5) {
		f.sims = int32(max(1, math.Round(workforce*r.uniform(0.5, 1.2))))
		f.hasSims = true
	}
	base := float64(wf)
	if !hasWF {
		base = float64(f.sims)
	}
	monthlyGB := max(base*intensity, 3) // at least ~100 MB a day
	f.dailyBytes = monthlyGB * 1e9 / 30

	// Sites.
	f.sites = make([]site, nSites)
	var postals []string
	for s := range f.sites {
		p := ""
		if s == 0 || distinct {
			for p == "" || slices.Contains(postals, p) {
				p = postalCode(&r)
			}
			postals = append(postals, p)
		} else {
			p = postals[0]
		}
		w := 1.0
		if s > 0 {
			w = r.uniform(0.3, 1)
		}
		f.sites[s] = site{id: f.siren + "-" + twoDigits(s+1), postal: p, weight: w}
	}

	// Profiles: one at the first day, then headcount / plan changes.
	np := 0
	profile := func(day int, at int64) {
		ev := engine.Event{
			Kind:      engine.KindProfile,
			EventID:   "p-" + f.siren + "-" + strconv.Itoa(np),
			SIREN:     f.siren,
			EventTime: g.startMs + int64(day)*dayMs + at,
			Plan:      plan,
		}
		if hasWF {
			ev.Workforce, ev.HasWorkforce = wf, true
		}
		np++
		g.schedule(i, TopicProfiles, ev)
	}
	profile(f.firstDay, int64(r.between(0, int(5*minMs-1))))
	anytime := func() int64 { return int64(r.between(6*60*60, 20*60*60)) * 1000 }
	switch f.arch {
	case Scaling: // headcount follows traffic: not flat
		for d := f.growthStart + r.between(15, 30); d < days; d += r.between(25, 40) {
			wf = max(wf+2, int32(math.Round(float64(wf)*(1+r.uniform(0.10, 0.25)))))
			profile(d, anytime())
		}
	case HiddenGrowth: // a tiny change (≤ 5 %) keeps the headcount flat
		if wf >= 25 && r.chance(0.25) {
			wf++
			profile(r.between(1, days-1), anytime())
		}
	case Steady:
		if r.chance(0.05) {
			wf = max(1, int32(math.Round(float64(wf)*(1+r.uniform(-0.2, 0.2)))))
			profile(r.between(f.firstDay+1, days-1), anytime())
		}
	case DataHeavy:
		if plan == PlanBasicSIM && r.chance(0.1) { // took the SD-WAN offer
			plan = PlanSDWAN
			profile(r.between(days/2, days-1), anytime())
		}
	}

	// Outages and claims.
	no, nc := 0, 0
	lo, hi := max(f.firstDay, days/5), min(f.quietDay, days)-1
	outage := func(dur int64, claimProb float64) {
		if hi < lo {
			return
		}
		d := r.between(lo, hi)
		start := g.startMs + int64(d)*dayMs + int64(r.between(0, 86399))*1000
		s := &f.sites[r.between(0, len(f.sites)-1)]
		oid := "o-" + f.siren + "-" + strconv.Itoa(no)
		no++
		ev := engine.Event{
			Kind: engine.KindOutage, EventID: oid + "-s", OutageID: oid, SIREN: f.siren,
			SiteID: s.id, PostalCode: s.postal, Status: engine.OutageStarted, EventTime: start,
		}
		g.schedule(i, TopicOutages, ev)
		dur = dur / 1000 * 1000
		ev.EventID, ev.Status, ev.EventTime = oid+"-r", engine.OutageResolved, start+dur
		ev.StartedAt, ev.HasStartedAt = start, true
		g.schedule(i, TopicOutages, ev)
		if r.chance(claimProb) {
			g.claim(i, &r, &nc, oid, start+dur+int64(r.between(1, 5))*dayMs+int64(r.between(0, 10*3600))*1000)
		}
	}
	short := func() int64 { return int64(r.uniform(0.5, 3) * float64(hourMs)) }
	long := func() int64 { return int64(clamp(r.logNormal(6, 0.35), 3, 12) * float64(hourMs)) }
	multiDay := func() int64 { return int64(r.uniform(24, 96) * float64(hourMs)) }
	switch f.arch {
	case OutageExposed:
		n := r.between(1, 3)
		for k := range n {
			switch u := r.float(); {
			case u < 0.2:
				outage(multiDay(), 0)
			case u < 0.45 && k > 0:
				outage(short(), 0)
			default:
				outage(long(), 0)
			}
		}
	case SLAClaimant:
		hi = min(hi, days-7) // leave time for the claim
		longRecovery := r.chance(0.5)
		n := r.between(1, 3)
		for k := range n {
			p := 0.5
			if k == 0 {
				p = 1
			}
			if longRecovery && k == 0 {
				outage(long(), p)
			} else {
				outage(short(), p)
			}
		}
	case DataHeavy:
		if r.chance(0.15) {
			outage(long(), 0)
		}
	}
	if f.arch != GoingQuiet && r.chance(0.2) { // background: a short outage
		outage(short(), 0.08)
	}
	if r.chance(0.03) { // a claim about something else (no outage_id)
		g.claim(i, &r, &nc, "", g.startMs+int64(r.between(f.firstDay, days-1))*dayMs+anytime())
	}
}

func (g *generator) claim(i int, r *rng, nc *int, outageID string, at int64) {
	f := &g.firms[i]
	cid := "c-" + f.siren + "-" + strconv.Itoa(*nc)
	*nc++
	ev := engine.Event{
		Kind: engine.KindClaim, EventID: cid + "-e", ClaimID: cid, SIREN: f.siren,
		EventTime: at, AmountCents: int64(r.between(50, 3000)) * 100,
	}
	if outageID != "" {
		ev.OutageID, ev.HasOutageID = outageID, true
	}
	g.schedule(i, TopicClaims, ev)
}

// pickPlan returns BASIC_SIM with probability pBasic, SD_WAN with pSDWAN,
// else PREMIUM_SLA.
func pickPlan(r *rng, pBasic, pSDWAN float64) string {
	u := r.float()
	switch {
	case u < pBasic:
		return PlanBasicSIM
	case u < pBasic+pSDWAN:
		return PlanSDWAN
	default:
		return PlanPremiumSLA
	}
}

// postalCode draws a French-looking postal code: a metropolitan department
// (01–95, not 20) and a commune code ending in 0.
func postalCode(r *rng) string {
	dept := r.between(1, 94)
	if dept >= 20 {
		dept++
	}
	code := dept*1000 + r.between(0, 99)*10
	var b [5]byte
	for k := 4; k >= 0; k-- {
		b[k] = byte('0' + code%10)
		code /= 10
	}
	return string(b[:])
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}
