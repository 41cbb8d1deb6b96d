package engine

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Threshold is a hysteresis pair on one metric: a segment enters when the
// metric is >= Enter and, once held, stays while the metric is >= Exit (it
// leaves when the metric is < Exit). Exit must be <= Enter.
type Threshold struct {
	Enter float64 `yaml:"enter"`
	Exit  float64 `yaml:"exit"`
	// Stability of the segment (rules default-2; zero = v1 meaning).
	Stability `yaml:",inline"`
	// Metric is the metric the thresholds apply to; "" is the segment's spec
	// metric. Only sla_sensitive has a choice (claims_365d,
	// claims_per_outage_365d, claim_hours_ratio_365d); Validate stores the
	// spec metric as "".
	Metric string `yaml:"metric,omitempty"`
}

// HiddenGrowthRule configures HIDDEN_GROWTH (spec §6).
type HiddenGrowthRule struct {
	// Velocity thresholds on traffic_velocity (default enter 0.20, exit 0.15).
	Velocity Threshold `yaml:"velocity"`
	// WorkforceFlatTolerance is the largest (max-min)/min of the workforce
	// values in effect during the window that still counts as flat
	// (default 0.05).
	WorkforceFlatTolerance float64 `yaml:"workforce_flat_tolerance"`
	// WorkforceWindowDays is the flat-test window, days D-(N-1)..D (default 60).
	WorkforceWindowDays int `yaml:"workforce_window_days"`
	// Stability of HIDDEN_GROWTH (default-2: sustained 7, dwell 7).
	Stability `yaml:",inline"`
}

// OfferRules are the settings of the offers (spec §6).
type OfferRules struct {
	// SDWanUpsellPlan is the plan that makes a DATA_HUNGRY SIREN eligible for
	// SD_WAN_UPSELL (default "BASIC_SIM").
	SDWanUpsellPlan string `yaml:"sd_wan_upsell_plan"`
	// VIPBackupMaxWorkforce: LOGICAL_VIP_BACKUP needs a known workforce
	// strictly below this (default 50).
	VIPBackupMaxWorkforce int32 `yaml:"vip_backup_max_workforce"`
	// GoldenHourMinBreaches: GOLDEN_HOUR_REPAIR is also offered (besides
	// RECOVERY_EXPOSED) when golden_hour_breaches_90d is at least this; 0
	// turns it off (default 1: an outage open for an hour is an offer, at
	// the hour, by its timer).
	GoldenHourMinBreaches int32 `yaml:"golden_hour_repair_min_breaches"`
	// Priority lists every offer, most important first: the order of
	// `offers`, `offers_added` and `offers_removed` in the output. Empty:
	// label order.
	Priority []string `yaml:"priority"`
	// Products maps an offer to the product (plan) it sells: an offer whose
	// product is the SIREN's plan is never made, and a contract change to it
	// is the offer's conversion. An offer left out has no product.
	Products map[string]string `yaml:"products"`
}

// offerOrder returns the indexes of offerNames in priority order (label
// order when Priority is not valid: Validate refuses it).
func (r *Rules) offerOrder() []int {
	o, err := priorityOrder(r.Offers.Priority)
	if err != nil {
		o, _ = priorityOrder(nil)
	}
	return o
}

// priorityOrder returns the indexes of offerNames in the order of priority
// (empty: label order), or an error naming a bad or missing offer.
func priorityOrder(priority []string) ([]int, error) {
	order := make([]int, 0, len(offerNames))
	if len(priority) == 0 {
		for i := range offerNames {
			order = append(order, i)
		}
		return order, nil
	}
	var seen offerSet
	for _, name := range priority {
		i := slices.Index(offerNames[:], name)
		if i < 0 {
			return nil, fmt.Errorf("unknown offer %q (offers: %s)", name, strings.Join(offerNames[:], ", "))
		}
		if seen&(1<<i) != 0 {
			return nil, fmt.Errorf("offer %q listed twice", name)
		}
		seen |= 1 << i
		order = append(order, i)
	}
	if seen != allOffers {
		for i, n := range offerNames {
			if seen&(1<<i) == 0 {
				return nil, fmt.Errorf("offer %q missing: list every offer", n)
			}
		}
	}
	return order, nil
}

// offersOfProduct is the set of offers whose product is plan.
func (r *Rules) offersOfProduct(plan string) offerSet {
	var o offerSet
	for i, n := range offerNames {
		if p, ok := r.Offers.Products[n]; ok && p == plan {
			o |= 1 << i
		}
	}
	return o
}

// Product returns the product of offer (Rules.Offers.Products).
func (r *Rules) Product(offer string) (string, bool) {
	p, ok := r.Offers.Products[offer]
	return p, ok
}

// ControlGroupRule configures the universal holdout.
type ControlGroupRule struct {
	// Percent of SIRENs in the control group, 0..100, resolution 0.01
	// (default 5).
	Percent float64 `yaml:"percent"`
	// Salt mixed into the hash; changing it reshuffles the group
	// (default "sirenstream").
	Salt string `yaml:"salt"`
}

// Rules are the versioned thresholds of spec §6, loaded from YAML
// (ParseRules; default_rules.yaml, see DefaultRulesYAML, has every key).
// Keys left out of a file take the DefaultRules value; unknown keys are an
// error; `version` is required. A *Rules is read-only once handed to a Task.
type Rules struct {
	// Version is copied into every decision's rules_version. Required.
	Version string `yaml:"version"`
	// MinPopulation is the least number of scored SIRENs in a task's
	// snapshot for intensity_percentile to be non-null (default 100).
	MinPopulation int `yaml:"min_population"`
	// MinPrevBytes is the least traffic_prev_30d_bytes for traffic_velocity
	// to be non-null (default 1e9).
	MinPrevBytes int64 `yaml:"min_prev_bytes"`
	// VelocityWindow places the traffic windows (stability.go):
	// VelocityCurrentDay ("" too: the v1 meaning, D-29..D against
	// D-59..D-30) or VelocityCompletedDays (default-2: D-30..D-1 against
	// D-60..D-31).
	VelocityWindow string `yaml:"velocity_window,omitempty"`
	// MinHistoryDays: intensity_percentile is null until the task has this
	// many days of stream time (default-2: 30; v1: 0).
	MinHistoryDays int `yaml:"min_history_days,omitempty"`
	// PercentilePopulation: PopulationAll ("" too: v1, every SIREN with a
	// digital_intensity is scored) or PopulationWithTraffic (default-2: a
	// SIREN without traffic in the 30-day window is not scored).
	PercentilePopulation string `yaml:"percentile_population,omitempty"`

	DataHungry      Threshold        `yaml:"data_hungry"`      // on intensity_percentile (80 / 75)
	HiddenGrowth    HiddenGrowthRule `yaml:"hidden_growth"`    // on traffic_velocity + flat workforce
	SLASensitive    Threshold        `yaml:"sla_sensitive"`    // on claims_365d (1 / 1: leaves at 0)
	RecoveryExposed Threshold        `yaml:"recovery_exposed"` // on recovery_exposure_hours_90d (4 / 2)
	MultiSite       Threshold        `yaml:"multi_site"`       // on distinct_postal_codes_90d (2 / 2)

	Offers       OfferRules       `yaml:"offers"`
	ControlGroup ControlGroupRule `yaml:"control_group"`
}

// DefaultRulesVersion is the Version of DefaultRules.
const DefaultRulesVersion = "default-2"

// RulesV1Version is the Version of RulesV1: the built-in rules before
// stable segments (and the rules a task meta of version 1 was written
// under).
const RulesV1Version = "default-1"

// defaultRulesYAML is the spec §6 defaults, every key set.
//
//go:embed default_rules.yaml
var defaultRulesYAML []byte

// defaultRules parses defaultRulesYAML once (over zero Rules: the file sets
// every key, a test proves it equals the spec).
var defaultRules = sync.OnceValues(func() (Rules, error) {
	var r Rules
	if err := decodeRules(&r, bytes.NewReader(defaultRulesYAML)); err != nil {
		return Rules{}, err
	}
	return r, r.Validate()
})

// DefaultRulesYAML returns the default rules file (default_rules.yaml,
// embedded): every key with its spec §6 value and a comment. Each call
// returns a new copy.
func DefaultRulesYAML() []byte { return bytes.Clone(defaultRulesYAML) }

// DefaultRules returns the spec §6 defaults, parsed once from
// DefaultRulesYAML. Each call returns a new value. It never fails: the
// embedded file is tested to parse and validate (were it not, the result
// would be empty rules, which fail Validate).
func DefaultRules() *Rules {
	r, err := defaultRules()
	if err != nil {
		return &Rules{}
	}
	r.Offers.Products = maps.Clone(r.Offers.Products)
	r.Offers.Priority = slices.Clone(r.Offers.Priority)
	return &r
}

// RulesV1 returns the built-in rules of version default-1: DefaultRules
// with every stable-segments key at its v1 meaning (velocity_window
// current_day, no sustained_days, no min_dwell_days, no min_history_days,
// every SIREN with an intensity scored, SLA_SENSITIVE on claims_365d). Its
// fingerprint is that of the default-1 rules. Each call returns a new value.
func RulesV1() *Rules {
	r := DefaultRules()
	r.Version = RulesV1Version
	r.setV1Stability()
	return r
}

// setV1Stability sets every key of rules default-2 to its v1 meaning (the
// zero value).
func (r *Rules) setV1Stability() {
	r.VelocityWindow, r.MinHistoryDays, r.PercentilePopulation = "", 0, ""
	for _, th := range []*Threshold{&r.DataHungry, &r.HiddenGrowth.Velocity, &r.SLASensitive, &r.RecoveryExposed, &r.MultiSite} {
		th.Stability, th.Metric = Stability{}, ""
	}
	r.HiddenGrowth.Stability = Stability{}
}

// ParseRules parses YAML rules over the defaults, rejects unknown keys and
// returns the result of Validate. It decodes the first YAML document of r.
// Keys left out keep their DefaultRules value, except the keys of rules
// default-2 (velocity_window, min_history_days, percentile_population,
// sustained_days, min_dwell_days, metric): left out, they keep their v1
// meaning, so a rules file written for version 1 means what it meant.
func ParseRules(r io.Reader) (*Rules, error) {
	rules := DefaultRules()
	rules.Version = ""
	rules.setV1Stability()
	if err := decodeRules(rules, r); err != nil {
		return nil, err
	}
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	return rules, nil
}

// decodeRules decodes the YAML document of r over dst, rejecting unknown
// keys.
func decodeRules(dst *Rules, r io.Reader) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("rules: empty document: version is required")
		}
		return fmt.Errorf("rules: %w", err)
	}
	return nil
}

// Validate checks every field and names the first bad one.
func (r *Rules) Validate() error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("rules: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if r == nil {
		return errors.New("rules: nil")
	}
	if r.Version == "" {
		return bad("version", "required")
	}
	if r.MinPopulation < 1 {
		return bad("min_population", "must be >= 1, got %d", r.MinPopulation)
	}
	if r.MinPrevBytes < 1 {
		return bad("min_prev_bytes", "must be >= 1, got %d", r.MinPrevBytes)
	}
	if err := r.validateStability(); err != nil {
		return err
	}
	check := func(name string, t Threshold, lo, hi float64) error {
		if !(t.Enter >= lo && t.Enter <= hi) {
			return bad(name+".enter", "must be in [%v, %v], got %v", lo, hi, t.Enter)
		}
		if !(t.Exit >= lo && t.Exit <= hi) {
			return bad(name+".exit", "must be in [%v, %v], got %v", lo, hi, t.Exit)
		}
		if t.Exit > t.Enter {
			return bad(name+".exit", "must be <= enter (%v), got %v", t.Enter, t.Exit)
		}
		return nil
	}
	inf := math.Inf(1)
	if err := check("data_hungry", r.DataHungry, 0, 100); err != nil {
		return err
	}
	if err := check("hidden_growth.velocity", r.HiddenGrowth.Velocity, -1, 1e6); err != nil {
		return err
	}
	if err := check("sla_sensitive", r.SLASensitive, 0, inf); err != nil {
		return err
	}
	if err := check("recovery_exposed", r.RecoveryExposed, 0, inf); err != nil {
		return err
	}
	if err := check("multi_site", r.MultiSite, 0, inf); err != nil {
		return err
	}
	if tol := r.HiddenGrowth.WorkforceFlatTolerance; !(tol >= 0 && tol < inf) {
		return bad("hidden_growth.workforce_flat_tolerance", "must be >= 0, got %v", tol)
	}
	if w := r.HiddenGrowth.WorkforceWindowDays; w < 1 || w > 365 {
		return bad("hidden_growth.workforce_window_days", "must be in [1, 365], got %d", w)
	}
	if r.Offers.SDWanUpsellPlan == "" {
		return bad("offers.sd_wan_upsell_plan", "required")
	}
	if r.Offers.VIPBackupMaxWorkforce < 0 {
		return bad("offers.vip_backup_max_workforce", "must be >= 0, got %d", r.Offers.VIPBackupMaxWorkforce)
	}
	if r.Offers.GoldenHourMinBreaches < 0 {
		return bad("offers.golden_hour_repair_min_breaches", "must be >= 0, got %d", r.Offers.GoldenHourMinBreaches)
	}
	if _, err := priorityOrder(r.Offers.Priority); err != nil {
		return bad("offers.priority", "%v", err)
	}
	for _, offer := range slices.Sorted(maps.Keys(r.Offers.Products)) {
		if !slices.Contains(offerNames[:], offer) {
			return bad("offers.products", "unknown offer %q (offers: %s)", offer, strings.Join(offerNames[:], ", "))
		}
		if r.Offers.Products[offer] == "" {
			return bad("offers.products."+offer, "empty product")
		}
	}
	if p := r.ControlGroup.Percent; !(p >= 0 && p <= 100) {
		return bad("control_group.percent", "must be in [0, 100], got %v", p)
	}
	return nil
}

// InControlGroup reports whether siren is in the universal holdout:
// FNV-1a-64(salt + ":" + siren) % 10000 < round(percent*100). Stable for a
// SIREN as long as salt and percent do not change; allocates nothing.
func (r *Rules) InControlGroup(siren string) bool {
	h := fnv64a(r.ControlGroup.Salt, ":", siren)
	return h%10000 < uint64(math.Round(r.ControlGroup.Percent*100))
}
