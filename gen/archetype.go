package gen

// Archetype is the kind of company a synthetic SIREN behaves like. Each one is
// aimed at one or more segments of spec §6 (see the README table).
type Archetype uint8

const (
	// Steady: ordinary firm, flat traffic (±5 %/month drift), one site
	// (a few have two lines at one address or two sites), rare short outages.
	Steady Archetype = iota
	// HiddenGrowth: small firm, flat headcount, traffic +25–45 %/month.
	HiddenGrowth
	// Scaling: traffic grows like HiddenGrowth but headcount grows too
	// (profile updates), so the workforce is not flat: not HIDDEN_GROWTH.
	Scaling
	// DataHeavy: few employees, tens of GB per employee per month; 55 % on
	// BASIC_SIM (SD_WAN_UPSELL); some hit by a long outage (CHURN_RISK).
	DataHeavy
	// MultiSite: 2–4 sites in distinct postal codes.
	MultiSite
	// MultiLine: 2–5 lines (sites) at ONE postal code: not multi-site.
	MultiLine
	// OutageExposed: 1–3 outages with long recoveries (3–12 h, some open for
	// days), no claims.
	OutageExposed
	// SLAClaimant: outages followed 1–5 days later by claims with outage_id;
	// about half with long recoveries (CHURN_RISK).
	SLAClaimant
	// GoingQuiet: data-heavy (some multi-site) firm whose traffic stops for
	// good between 35 % and 75 % of the run: its segments decay.
	GoingQuiet
	// NoWorkforce: profile workforce null; usage carries active_sims (the
	// intensity fallback), 20 % of them without active_sims either.
	NoWorkforce

	NumArchetypes
)

var archetypeNames = [NumArchetypes]string{
	"steady", "hidden_growth", "scaling", "data_heavy", "multi_site",
	"multi_line", "outage_exposed", "sla_claimant", "going_quiet", "no_workforce",
}

// ArchetypeWeights are the shares of SIRENs drawn for each archetype.
var ArchetypeWeights = [NumArchetypes]float64{
	Steady:        0.33,
	HiddenGrowth:  0.12,
	Scaling:       0.04,
	DataHeavy:     0.12,
	MultiSite:     0.10,
	MultiLine:     0.06,
	OutageExposed: 0.08,
	SLAClaimant:   0.07,
	GoingQuiet:    0.04,
	NoWorkforce:   0.04,
}

func (a Archetype) String() string {
	if a < NumArchetypes {
		return archetypeNames[a]
	}
	return "unknown"
}

// ArchetypeOf returns the archetype of the i-th SIREN of a generation run
// with this config (for tests and demos).
func (c Config) ArchetypeOf(i int) Archetype {
	c.defaults()
	r := newRNG(c.Seed, saltArchetype, uint64(i), 0, 0)
	u := r.float()
	acc := 0.0
	for a := Archetype(0); a < NumArchetypes; a++ {
		acc += ArchetypeWeights[a]
		if u < acc {
			return a
		}
	}
	return Steady
}
