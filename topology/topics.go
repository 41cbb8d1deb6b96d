package topology

import (
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// Topics names every topic of the graph (spec §2–§3, §8). Zero values take
// the defaults of Define (WithDefaults).
type Topics struct {
	Usage          string // default "usage"
	Outages        string // default "outages"
	Claims         string // default "claims"
	Profiles       string // default "profiles"
	SegmentChanges string // default "segment-changes"
	ChurnAlerts    string // default "churn-alerts"
	DLQ            string // default "sirenstream-dlq"
	// Outcomes (spec §8).
	OfferResponses string // default "offer-responses"
	ContractEvents string // default "contract-events"
	// Ticks carries the clock ticks of quiet partitions (default
	// "sirenstream-ticks"): an input that run also writes.
	Ticks         string
	OfferOutcomes string // default "offer-outcomes"
	SirenDaily    string // default "siren-daily"
	Uplift        string // default "uplift"
	// UpliftRepartition is internal (default "<group>-uplift-repartition").
	UpliftRepartition string
	// Changelog is the compacted state changelog (default
	// "<group>-changelog", ChangelogName); "-" (ChangelogOff) disables it
	// (single-instance deployments that never move partitions).
	Changelog string
}

// Defaults returns every topic under its default name in DefaultGroup.
func Defaults() Topics {
	return Topics{}.WithDefaults(DefaultGroup)
}

// WithDefaults returns t with each empty name replaced by its default in
// consumer group group ("" is DefaultGroup): only the changelog's depends
// on the group.
func (t Topics) WithDefaults(group string) Topics {
	for _, d := range Define().All() {
		if p := d.Ptr(&t); *p == "" {
			*p = d.DefaultName(group)
		}
	}
	return t
}

// Inputs returns the input topics in engine.Kind order, which is the merge
// tie-break order: profiles, outages, claims, usage, offer responses,
// contract events.
func (t Topics) Inputs() [NumInputs]string {
	var names [NumInputs]string
	for i, in := range Define().Inputs {
		names[i] = in.Name(t)
	}
	return names
}

// Input returns the input topic of kind k, which must be a valid kind.
func (t Topics) Input(k engine.Kind) string {
	return Define().Inputs[k].Name(t)
}

// Outputs returns the output topics of a live run: segment changes, churn
// alerts, dead letters, offer outcomes, SIREN daily snapshots, uplift and
// the uplift repartition topic.
func (t Topics) Outputs() [NumOutputs]string {
	var names [NumOutputs]string
	for i, out := range Define().Outputs {
		names[i] = out.Name(t)
	}
	return names
}

// ChangelogEnabled reports whether t has a changelog (not ChangelogOff).
func (t Topics) ChangelogEnabled() bool {
	return t.Changelog != ChangelogOff
}

// Validate reports two inputs or outputs sharing a name, naming both fields.
// Call it on t.WithDefaults(group).
func (t Topics) Validate() error {
	g := Define()
	seen := make(map[string]string, NumInputs+NumOutputs)
	check := func(d Topic) error {
		name := d.Name(t)
		if other, ok := seen[name]; ok {
			return fmt.Errorf("Topics.%s and Topics.%s are both %q", d.Field, other, name)
		}
		seen[name] = d.Field
		return nil
	}
	for _, in := range g.Inputs {
		if err := check(in.Topic); err != nil {
			return err
		}
	}
	for _, out := range g.Outputs {
		if err := check(out.Topic); err != nil {
			return err
		}
	}
	return nil
}

// CheckName reports a name Kafka refuses as a topic name: empty, "." or
// "..", longer than 249 bytes, or with a byte other than ASCII letters,
// digits, '.', '_' and '-'. A changelog named after a group
// (ChangelogName) is only as legal as the group id.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("topic name %q: empty, \".\", \"..\" or longer than 249 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return fmt.Errorf("topic name %q: byte %q is not a letter, digit, '.', '_' or '-'", name, b)
		}
	}
	return nil
}

// NewTopic is one entry of the creation plan: a topic made when missing.
type NewTopic struct {
	Name    string
	Role    Role
	Configs []ConfigEntry // nil: the broker's defaults
}

// Compacted reports whether the topic is created with cleanup.policy=compact.
func (n NewTopic) Compacted() bool {
	for _, c := range n.Configs {
		if c.Name == "cleanup.policy" && c.Value == "compact" {
			return true
		}
	}
	return false
}

// CreatePlan returns the topics that must exist before a task starts, in
// creation order: the inputs (engine.Kind order), the outputs, extra (a
// replay's own outputs, created as outputs), then the changelog unless it is
// off. Every topic is created with the inputs' partition count; the inputs
// must be co-partitioned and the changelog must have one partition per input
// partition. Call it on t.WithDefaults(group).
func (t Topics) CreatePlan(extra ...string) []NewTopic {
	g := Define()
	plan := make([]NewTopic, 0, NumInputs+NumOutputs+len(extra)+1)
	for _, in := range g.Inputs {
		plan = append(plan, NewTopic{Name: in.Name(t), Role: RoleInput})
	}
	for _, out := range g.Outputs {
		plan = append(plan, NewTopic{Name: out.Name(t), Role: out.Role, Configs: append([]ConfigEntry(nil), out.Configs...)})
	}
	for _, name := range extra {
		plan = append(plan, NewTopic{Name: name, Role: RoleOutput})
	}
	if t.ChangelogEnabled() {
		cl := g.Changelog
		plan = append(plan, NewTopic{Name: cl.Name(t), Role: RoleChangelog, Configs: append([]ConfigEntry(nil), cl.Configs...)})
	}
	return plan
}
