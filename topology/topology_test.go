package topology_test

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

func TestInputsAreInKindOrder(t *testing.T) {
	for i, in := range topology.Define().Inputs {
		if int(in.Kind) != i {
			t.Errorf("input %d (%s) has kind %d: the input index is the kind", i, in.Default, in.Kind)
		}
		if in.Role != topology.RoleInput {
			t.Errorf("input %s has role %s", in.Default, in.Role)
		}
	}
	// The merge tie-break order of the spec.
	want := [topology.NumInputs]string{"profiles", "outages", "claims", "usage", "offer-responses", "contract-events", "sirenstream-ticks"}
	if got := topology.Defaults().Inputs(); got != want {
		t.Errorf("Defaults().Inputs() = %v, want %v", got, want)
	}
	for k := engine.KindProfile; k <= engine.KindUsage; k++ {
		if got := topology.Defaults().Input(k); got != want[k] {
			t.Errorf("Input(%d) = %q, want %q", k, got, want[k])
		}
	}
}

func TestSchemaIDsAreTheCodecs(t *testing.T) {
	g := topology.Define()
	for _, in := range g.Inputs {
		if want := schemas.IDForKind(in.Kind); in.SchemaID != want {
			t.Errorf("input %s: schema id %d, schemas.IDForKind says %d", in.Default, in.SchemaID, want)
		}
		if k, ok := schemas.KindForID(in.SchemaID); !ok || k != in.Kind {
			t.Errorf("input %s: schemas.KindForID(%d) = %d, %v", in.Default, in.SchemaID, k, ok)
		}
	}
	for _, out := range g.Outputs {
		if out.SchemaID == 0 {
			continue // raw copies
		}
		if _, isInput := schemas.KindForID(out.SchemaID); isInput || out.SchemaID < schemas.IDSegmentChange {
			t.Errorf("output %s: schema id %d is not an output schema", out.Default, out.SchemaID)
		}
		if _, ok := schemas.Schema(out.SchemaID); !ok {
			t.Errorf("output %s: no embedded schema %d", out.Default, out.SchemaID)
		}
	}
}

// Every declaration names its own Topics field, every field is declared
// once, and defaults, fields and flags are distinct.
func TestDeclarationsCoverTopicsOnce(t *testing.T) {
	all := topology.Define().All()
	typ := reflect.TypeFor[topology.Topics]()
	if len(all) != typ.NumField() {
		t.Fatalf("%d declarations for %d Topics fields", len(all), typ.NumField())
	}
	seen := map[string]map[string]bool{"field": {}, "default": {}, "flag": {}}
	for i, d := range all {
		var probe topology.Topics
		*d.Ptr(&probe) = "x"
		v := reflect.ValueOf(probe)
		for f := range typ.NumField() {
			if set := v.Field(f).String() == "x"; set != (typ.Field(f).Name == d.Field) {
				t.Errorf("declaration %d (%s) writes field %s", i, d.Field, typ.Field(f).Name)
			}
		}
		if d.Name(probe) != "x" {
			t.Errorf("declaration %s: Name does not read what Ptr wrote", d.Field)
		}
		for what, v := range map[string]string{"field": d.Field, "default": d.DefaultName(topology.DefaultGroup), "flag": d.Flag} {
			if v == "" || seen[what][v] {
				t.Errorf("%s %q empty or declared twice", what, v)
			}
			seen[what][v] = true
		}
		if !strings.HasPrefix(d.Flag, "topic-") || d.Help == "" {
			t.Errorf("declaration %s: flag %q, help %q", d.Field, d.Flag, d.Help)
		}
		if d.DefaultName("g") == topology.ChangelogOff {
			t.Errorf("declaration %s defaults to the changelog's off switch", d.Field)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	want := topology.Topics{
		Usage: "usage", Outages: "outages", Claims: "claims", Profiles: "profiles",
		SegmentChanges: "segment-changes", ChurnAlerts: "churn-alerts",
		DLQ: "sirenstream-dlq", Changelog: "sirenstream-changelog",
		OfferResponses: "offer-responses", ContractEvents: "contract-events", Ticks: "sirenstream-ticks",
		OfferOutcomes: "offer-outcomes", SirenDaily: "siren-daily", Uplift: "uplift",
		UpliftRepartition: "sirenstream-uplift-repartition",
	}
	if got := topology.Defaults(); got != want {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
	custom := topology.Topics{Usage: "u", Changelog: "-"}.WithDefaults("other")
	if custom.Usage != "u" || custom.Changelog != "-" || custom.Claims != "claims" {
		t.Errorf("WithDefaults overwrote or missed a name: %+v", custom)
	}
	if custom.ChangelogEnabled() || !topology.Defaults().ChangelogEnabled() {
		t.Error("ChangelogEnabled does not follow the off switch")
	}
	if got := topology.Defaults().Outputs(); got != [topology.NumOutputs]string{"segment-changes", "churn-alerts", "sirenstream-dlq",
		"offer-outcomes", "siren-daily", "uplift", "sirenstream-uplift-repartition"} {
		t.Errorf("Outputs() = %v", got)
	}
}

// Spec §8 (Isolation): the changelog defaults to <group>-changelog, so two
// groups never share state; the default group's name is unchanged; an
// explicit name or the off switch wins over the group.
func TestChangelogDefaultsToGroupChangelog(t *testing.T) {
	tests := []struct {
		name   string
		topics topology.Topics
		group  string
		want   string
	}{
		{"default group keeps sirenstream-changelog", topology.Topics{}, topology.DefaultGroup, "sirenstream-changelog"},
		{"empty group is the default group", topology.Topics{}, "", "sirenstream-changelog"},
		{"another group gets its own", topology.Topics{}, "billing", "billing-changelog"},
		{"an explicit name wins", topology.Topics{Changelog: "sirenstream-changelog"}, "billing", "sirenstream-changelog"},
		{"the off switch wins", topology.Topics{Changelog: topology.ChangelogOff}, "billing", topology.ChangelogOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.topics.WithDefaults(tt.group)
			if got.Changelog != tt.want {
				t.Errorf("Changelog = %q, want %q", got.Changelog, tt.want)
			}
			if got.Usage != "usage" || got.DLQ != "sirenstream-dlq" {
				t.Errorf("the group changed another topic: %+v", got)
			}
		})
	}
	if topology.DefaultChangelog != topology.ChangelogName(topology.DefaultGroup) {
		t.Errorf("DefaultChangelog %q is not the default group's", topology.DefaultChangelog)
	}
	if d := topology.Define().Changelog; d.Default != "" || !strings.Contains(d.Help, "default <group>-changelog") {
		t.Errorf("changelog declaration: fixed default %q, help %q", d.Default, d.Help)
	}
}

func TestValidateNamesBothFields(t *testing.T) {
	if err := topology.Defaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tp := topology.Topics{Usage: "claims"}.WithDefaults("")
	err := tp.Validate()
	if err == nil || err.Error() != `Topics.Usage and Topics.Claims are both "claims"` {
		t.Errorf("Validate() = %v", err)
	}
	// The changelog is not checked against the others (as before).
	if err := (topology.Topics{Changelog: "usage"}.WithDefaults("")).Validate(); err != nil {
		t.Errorf("changelog named like an input: %v", err)
	}
}

func TestCreatePlan(t *testing.T) {
	type entry struct {
		name      string
		role      topology.Role
		compacted bool
	}
	flatten := func(plan []topology.NewTopic) []entry {
		var out []entry
		for _, n := range plan {
			out = append(out, entry{n.Name, n.Role, n.Compacted()})
		}
		return out
	}
	in, o, cl, rp := topology.RoleInput, topology.RoleOutput, topology.RoleChangelog, topology.RoleRepartition
	tests := []struct {
		name   string
		topics topology.Topics
		extra  []string
		want   []entry
	}{
		{
			name:   "defaults: inputs in kind order, outputs, compacted changelog last",
			topics: topology.Defaults(),
			want: []entry{
				{"profiles", in, false}, {"outages", in, false}, {"claims", in, false}, {"usage", in, false},
				{"offer-responses", in, false}, {"contract-events", in, false}, {"sirenstream-ticks", in, false},
				{"segment-changes", o, false}, {"churn-alerts", o, false}, {"sirenstream-dlq", o, false},
				{"offer-outcomes", o, false}, {"siren-daily", o, false}, {"uplift", o, false}, {"sirenstream-uplift-repartition", rp, false},
				{"sirenstream-changelog", cl, true},
			},
		},
		{
			name:   "replay extras are outputs, before the changelog; changelog off",
			topics: topology.Topics{Changelog: "-"}.WithDefaults(""),
			extra:  []string{"backfill", "backfill-dlq"},
			want: []entry{
				{"profiles", in, false}, {"outages", in, false}, {"claims", in, false}, {"usage", in, false},
				{"offer-responses", in, false}, {"contract-events", in, false}, {"sirenstream-ticks", in, false},
				{"segment-changes", o, false}, {"churn-alerts", o, false}, {"sirenstream-dlq", o, false},
				{"offer-outcomes", o, false}, {"siren-daily", o, false}, {"uplift", o, false}, {"sirenstream-uplift-repartition", rp, false},
				{"backfill", o, false}, {"backfill-dlq", o, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flatten(tt.topics.CreatePlan(tt.extra...)); !slices.Equal(got, tt.want) {
				t.Errorf("CreatePlan =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	// The plan's configs are copies: changing them leaves the declaration alone.
	plan := topology.Defaults().CreatePlan()
	plan[len(plan)-1].Configs[0].Value = "delete"
	if !topology.Defaults().CreatePlan()[len(plan)-1].Compacted() {
		t.Error("CreatePlan shares its configs with the declaration")
	}
}

// The package comment's diagram names the declared topics in declared order.
func TestDiagramFollowsDeclaration(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	lines := strings.Split(doc, "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "//\tinputs ") })
	if at < 0 || at+1 >= len(lines) {
		t.Fatal("diagram has no inputs line")
	}
	g := topology.Define()
	want := []string{"//", "inputs"}
	wantKinds := []string{"//"}
	var ids []string
	for _, in := range g.Inputs {
		want = append(want, in.Default)
		wantKinds = append(wantKinds, "kind", strconv.Itoa(int(in.Kind)))
		ids = append(ids, strconv.Itoa(in.SchemaID))
	}
	if got := strings.Fields(lines[at]); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("diagram inputs %q, want %q", got, want)
	}
	if got := strings.Fields(lines[at+1]); len(got) < len(wantKinds) || !slices.Equal(got[:len(wantKinds)], wantKinds) {
		t.Errorf("diagram kinds %q, want %q", got, wantKinds)
	}
	if want := "schema ids " + strings.Join(ids, ", "); !strings.Contains(lines[at+1], want) {
		t.Errorf("diagram does not say %q", want)
	}
	last := 0
	for _, out := range g.Outputs {
		name := out.DefaultName(topology.DefaultGroup)
		i := strings.Index(doc[last:], "//\t        "+name+" ")
		if i < 0 {
			t.Errorf("diagram lists no output %s after the previous one", name)
			continue
		}
		last += i
	}
}

// TestRepartitionTopicIsKeptForever: the uplift aggregator rebuilds its
// counts from the repartition topic's first offset on every assignment, so
// the topic is created with unlimited retention and not compacted (its key
// is the offer).
func TestRepartitionTopicIsKeptForever(t *testing.T) {
	for _, nt := range topology.Defaults().CreatePlan() {
		if nt.Role != topology.RoleRepartition {
			continue
		}
		got := map[string]string{}
		for _, c := range nt.Configs {
			got[c.Name] = c.Value
		}
		if got["retention.ms"] != "-1" || got["retention.bytes"] != "-1" || got["cleanup.policy"] != "delete" || nt.Compacted() {
			t.Fatalf("%s created with %v, want retention.ms=-1, retention.bytes=-1, cleanup.policy=delete", nt.Name, nt.Configs)
		}
		return
	}
	t.Fatal("no repartition topic in the creation plan")
}
