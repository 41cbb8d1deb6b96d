package engine

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestDefaultRulesAreTheSpecDefaults: the embedded default_rules.yaml
// parses, validates and holds exactly the spec §6 values (the Go literal
// DefaultRules used to return); parsed as a rules file it gives the same.
func TestDefaultRulesAreTheSpecDefaults(t *testing.T) {
	spec := &Rules{
		Version:              DefaultRulesVersion,
		MinPopulation:        100,
		MinPrevBytes:         1_000_000_000,
		VelocityWindow:       VelocityCompletedDays,
		MinHistoryDays:       30,
		PercentilePopulation: PopulationWithTraffic,
		DataHungry:           Threshold{Enter: 80, Exit: 75, Stability: Stability{MinDwellDays: 7}},
		HiddenGrowth: HiddenGrowthRule{Velocity: Threshold{Enter: 0.20, Exit: 0.15}, WorkforceFlatTolerance: 0.05, WorkforceWindowDays: 60,
			Stability: Stability{SustainedDays: 7, MinDwellDays: 7}},
		SLASensitive:    Threshold{Enter: 1, Exit: 1},
		RecoveryExposed: Threshold{Enter: 4, Exit: 2},
		MultiSite:       Threshold{Enter: 2, Exit: 2},
		Offers: OfferRules{SDWanUpsellPlan: "BASIC_SIM", VIPBackupMaxWorkforce: 50, GoldenHourMinBreaches: 1,
			Priority: []string{"GOLDEN_HOUR_REPAIR", "LOGICAL_VIP_BACKUP", "SD_WAN_UPSELL", "MULTISITE_VPN", "GROWTH_PARTNERSHIP"},
			Products: map[string]string{"SD_WAN_UPSELL": "SD_WAN", "LOGICAL_VIP_BACKUP": "BACKUP_4G5G",
				"GOLDEN_HOUR_REPAIR": "PREMIUM_SLA", "MULTISITE_VPN": "MULTISITE_VPN", "GROWTH_PARTNERSHIP": "SD_WAN"}},
		ControlGroup: ControlGroupRule{Percent: 5, Salt: "sirenstream"},
	}
	if _, err := defaultRules(); err != nil {
		t.Fatalf("embedded default_rules.yaml: %v", err)
	}
	if err := spec.Validate(); err != nil { // sets the cached offer order
		t.Fatal(err)
	}
	if !reflect.DeepEqual(DefaultRules(), spec) {
		t.Fatalf("DefaultRules() = %+v\nspec = %+v", DefaultRules(), spec)
	}
	// Every key is in the file: decoded over zero rules it needs no default.
	var bare Rules
	err := decodeRules(&bare, bytes.NewReader(DefaultRulesYAML()))
	if err == nil {
		err = bare.Validate()
	}
	if err != nil || !reflect.DeepEqual(&bare, spec) {
		t.Fatalf("default_rules.yaml over zero rules = %+v (%v)", bare, err)
	}
	r, err := ParseRules(bytes.NewReader(DefaultRulesYAML()))
	if err != nil || !reflect.DeepEqual(r, spec) {
		t.Fatalf("ParseRules(DefaultRulesYAML()) = %+v (%v)", r, err)
	}
	// Each call returns a new value, and the bytes a copy.
	a := DefaultRules()
	a.MinPopulation = 1
	DefaultRulesYAML()[0] = 'x'
	if DefaultRules().MinPopulation != 100 || DefaultRulesYAML()[0] != '#' {
		t.Fatal("DefaultRules or DefaultRulesYAML shares its value")
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; "" = ok
		check   func(*Rules) bool
	}{
		{"missing keys take defaults (v1 meaning for the keys of default-2)", "version: v7\ndata_hungry: {enter: 90}\n", "", func(r *Rules) bool {
			want := RulesV1()
			want.Version = "v7"
			want.DataHungry.Enter = 90
			return reflect.DeepEqual(r, want)
		}},
		{"version is required", "min_population: 10\n", "version", nil},
		{"empty document needs a version", "", "version", nil},
		{"unknown top-level key is rejected", "version: x\ndata_hungy: {enter: 1}\n", "data_hungy", nil},
		{"unknown nested key is rejected", "version: x\nmulti_site: {entr: 3}\n", "entr", nil},
		{"exit above enter is named", "version: x\nrecovery_exposed: {enter: 4, exit: 5}\n", "recovery_exposed.exit", nil},
		{"percentile above 100 is named", "version: x\ndata_hungry: {enter: 101, exit: 75}\n", "data_hungry.enter", nil},
		{"min_population 0 is named", "version: x\nmin_population: 0\n", "min_population", nil},
		{"control percent above 100 is named", "version: x\ncontrol_group: {percent: 101}\n", "control_group.percent", nil},
		{"empty plan is named", "version: x\noffers: {sd_wan_upsell_plan: \"\"}\n", "offers.sd_wan_upsell_plan", nil},
		{"window 0 is named", "version: x\nhidden_growth: {workforce_window_days: 0}\n", "hidden_growth.workforce_window_days", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRules(strings.NewReader(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(r) {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestControlGroupIsStableAndAboutFivePercent(t *testing.T) {
	r := DefaultRules()
	in := 0
	const n = 100_000
	for i := 0; i < n; i++ {
		s := mkSIREN(i)
		a := r.InControlGroup(s)
		if a != r.InControlGroup(s) {
			t.Fatal("not stable")
		}
		if a {
			in++
		}
	}
	if in < n*45/1000 || in > n*55/1000 {
		t.Fatalf("control group = %d of %d, want ~5%%", in, n)
	}
	// Documented formula: FNV-1a-64(salt ":" siren) % 10000 < percent*100.
	s := mkSIREN(42)
	if got, want := r.InControlGroup(s), fnv64aString("sirenstream:"+s)%10000 < 500; got != want {
		t.Fatalf("formula mismatch")
	}
	r0 := DefaultRules()
	r0.ControlGroup.Percent = 0
	r100 := DefaultRules()
	r100.ControlGroup.Percent = 100
	salted := DefaultRules()
	salted.ControlGroup.Salt = "other"
	diff := 0
	for i := 0; i < 1000; i++ {
		s := mkSIREN(i)
		if r0.InControlGroup(s) || !r100.InControlGroup(s) {
			t.Fatal("0% / 100% bounds")
		}
		if salted.InControlGroup(s) != r.InControlGroup(s) {
			diff++
		}
	}
	if diff == 0 {
		t.Fatal("salt does not change the group")
	}
	if a := testing.AllocsPerRun(100, func() { r.InControlGroup(s) }); a != 0 {
		t.Fatalf("InControlGroup allocates %v", a)
	}
}

func TestValidSIREN(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"732829320", true}, // Luhn valid
		{"542107651", true},
		{"732829321", false}, // Luhn fails
		{"73282932", false},  // 8 digits
		{"7328293200", false},
		{"73282932a", false},
		{" 73282932", false},
		{"", false},
		{"000000000", true},
		{"٠١٢٣٤٥٦٧٨", false}, // non-ASCII digits
	}
	for _, tt := range tests {
		if got := ValidSIREN(tt.s); got != tt.want {
			t.Errorf("ValidSIREN(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestSegmentNamesSortedAndParse(t *testing.T) {
	all := AllSegments.Names()
	want := []string{"CHURN_RISK", "DATA_HUNGRY", "HIDDEN_GROWTH", "MULTI_SITE", "RECOVERY_EXPOSED", "SLA_SENSITIVE"}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("names = %v", all)
	}
	for _, n := range want {
		s, ok := ParseSegment(n)
		if !ok || s.Names()[0] != n {
			t.Fatalf("ParseSegment(%q)", n)
		}
	}
	if _, ok := ParseSegment("data_hungry"); ok {
		t.Fatal("labels are exact")
	}
	if got := (SLASensitive | ChurnRisk).AppendNames(nil); !reflect.DeepEqual(got, []string{"CHURN_RISK", "SLA_SENSITIVE"}) {
		t.Fatal(got)
	}
	if Segments(0).Names() == nil || len(Segments(0).Names()) != 0 {
		t.Fatal("empty set must be an empty, non-nil slice")
	}
}

func TestDLQReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: x", ErrInvalidSIREN), "invalid_siren"},
		{fmt.Errorf("topic/0@5: %w", fmt.Errorf("%w: x", ErrLate)), "late"},
		{ErrInvalidEvent, "invalid_event"},
		{ErrDuplicate, "duplicate"},
		{ErrFuture, "future"},
		{fmt.Errorf("x: %w", ErrKeyMismatch), "key_mismatch"},
		{&keyMismatchError{msg: "k"}, "key_mismatch"},
		{errors.New("boom"), "error"},
		{nil, ""},
		{fmt.Errorf("x: %w", reasonless{}), ""},
	}
	for _, tt := range tests {
		if got := DLQReason(tt.err); got != tt.want {
			t.Errorf("DLQReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// reasonless is an error that is not the record's fault (like
// schemas.ErrRegistry).
type reasonless struct{}

func (reasonless) Error() string            { return "registry down" }
func (reasonless) DeadLetterReason() string { return "" }

func TestDay(t *testing.T) {
	if Day(0) != 0 || Day(DayMs-1) != 0 || Day(DayMs) != 1 || Day(-1) != -1 || Day(at(d0, 23)) != d0 {
		t.Fatal("Day")
	}
}
