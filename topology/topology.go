package topology

import "github.com/sirenstream/sirenstream/engine"

// Default topic names (spec §2–§3).
const (
	DefaultProfiles       = "profiles"
	DefaultOutages        = "outages"
	DefaultClaims         = "claims"
	DefaultUsage          = "usage"
	DefaultSegmentChanges = "segment-changes"
	DefaultChurnAlerts    = "churn-alerts"
	DefaultDLQ            = "sirenstream-dlq"
	// Outcomes (spec §8).
	DefaultOfferResponses = "offer-responses"
	DefaultContractEvents = "contract-events"
	// DefaultTicks: the clock ticks of quiet partitions (written by run).
	DefaultTicks         = "sirenstream-ticks"
	DefaultOfferOutcomes = "offer-outcomes"
	DefaultUplift        = "uplift"
	DefaultSirenDaily    = "siren-daily"
	// DefaultChangelog is the changelog of DefaultGroup; every group has its
	// own (ChangelogName).
	DefaultChangelog = DefaultGroup + changelogSuffix
)

// DefaultGroup is the consumer group id when none is given. A group is one
// application: its members share partitions and state, and nothing else
// does (spec §8, "Isolation").
const DefaultGroup = "sirenstream"

const changelogSuffix = "-changelog"

// upliftRepartitionSuffix names the internal topic that carries each task's
// closed outcomes, keyed by offer, to the task that aggregates that offer
// (design.md "Global aggregates go through Kafka"): "<group>-uplift-repartition".
const upliftRepartitionSuffix = "-uplift-repartition"

// UpliftRepartitionName is the default uplift repartition topic of group
// ("" is DefaultGroup).
func UpliftRepartitionName(group string) string {
	if group == "" {
		group = DefaultGroup
	}
	return group + upliftRepartitionSuffix
}

// ChangelogName is the default changelog topic of consumer group group
// ("" is DefaultGroup): "<group>-changelog", so that two groups on one
// cluster never restore each other's state (Kafka Streams names its
// changelogs after the application id for the same reason).
func ChangelogName(group string) string {
	if group == "" {
		group = DefaultGroup
	}
	return group + changelogSuffix
}

// ChangelogOff as Topics.Changelog disables the changelog (single-instance
// deployments that never move partitions).
const ChangelogOff = "-"

// NumInputs is the number of input topics, one per engine.Kind.
const NumInputs = 7

// NumOutputs is the number of output topics of a live run.
const NumOutputs = 7

// Role is a topic's place in the graph.
type Role uint8

const (
	// RoleInput topics are read and merged. They must be co-partitioned
	// (same partition count, key = SIREN, murmur2 partitioner).
	RoleInput Role = iota + 1
	// RoleOutput topics are written by the tasks and acknowledged before
	// the state they follow from is committed.
	RoleOutput
	// RoleChangelog is the compacted state changelog: partition p holds the
	// states and checkpoints of task p, so it must have one partition per
	// input partition.
	RoleChangelog
	// RoleRepartition is an internal topic the tasks write and read again
	// (keyed by something other than the SIREN): created with the inputs'
	// partition count, partition p read by the owner of task p.
	RoleRepartition
)

func (r Role) String() string {
	switch r {
	case RoleInput:
		return "input"
	case RoleOutput:
		return "output"
	case RoleChangelog:
		return "changelog"
	case RoleRepartition:
		return "repartition"
	}
	return "unknown"
}

// Topic declares one topic: its role, its default name and the command-line
// flag that renames it.
type Topic struct {
	Role  Role
	Field string // the Topics field holding its name, e.g. "Usage"
	// Default is its name when Topics leaves it empty; "" for the
	// changelog, whose default depends on the group (DefaultName).
	Default string
	Flag    string // the flag that renames it, e.g. "topic-usage"
	Help    string // that flag's help text
	// SchemaID is the fixed Confluent schema id of its values (schemas.ID*);
	// 0 for raw copies (DLQ) and internal bytes (changelog).
	SchemaID int

	name func(*Topics) *string
}

// Name returns the topic's name in t (empty when t leaves it to defaults).
func (d Topic) Name(t Topics) string { return *d.name(&t) }

// Ptr returns the address of the topic's name in t, for flag registration.
func (d Topic) Ptr(t *Topics) *string { return d.name(t) }

// DefaultName returns the topic's name when Topics leaves it empty in
// consumer group group: Default, or ChangelogName(group) for the changelog.
func (d Topic) DefaultName(group string) string {
	switch d.Role {
	case RoleChangelog:
		return ChangelogName(group)
	case RoleRepartition:
		return UpliftRepartitionName(group)
	}
	return d.Default
}

// Input declares an input topic.
type Input struct {
	Topic
	// Kind is the event kind its records decode to. Its numeric value is
	// the input's index everywhere and its rank when event times tie.
	Kind engine.Kind
}

// Output declares an output topic and what the tasks route to it.
type Output struct {
	Topic
	Routing string
	// Configs are topic-level configs it is created with (none: the
	// broker's defaults).
	Configs []ConfigEntry
}

// ConfigEntry is a topic-level config (Kafka name and value).
type ConfigEntry struct {
	Name, Value string
}

// Changelog declares the state changelog and the configs it is created with.
type Changelog struct {
	Topic
	Configs []ConfigEntry
}

// Graph is the whole processing graph.
type Graph struct {
	Inputs    [NumInputs]Input // in engine.Kind order: the merge tie-break order
	Outputs   [NumOutputs]Output
	Changelog Changelog
}

// Define returns the graph (a fresh value on each call; there is no package
// state). It is the one place that names topics, their kinds, schemas,
// flags and creation configs.
func Define() Graph {
	return Graph{
		Inputs: [NumInputs]Input{
			{Kind: engine.KindProfile, Topic: Topic{
				Role: RoleInput, Field: "Profiles", Default: DefaultProfiles, SchemaID: 4,
				Flag: "topic-profiles", Help: "profile input topic",
				name: func(t *Topics) *string { return &t.Profiles },
			}},
			{Kind: engine.KindOutage, Topic: Topic{
				Role: RoleInput, Field: "Outages", Default: DefaultOutages, SchemaID: 2,
				Flag: "topic-outages", Help: "outage input topic",
				name: func(t *Topics) *string { return &t.Outages },
			}},
			{Kind: engine.KindClaim, Topic: Topic{
				Role: RoleInput, Field: "Claims", Default: DefaultClaims, SchemaID: 3,
				Flag: "topic-claims", Help: "claim input topic",
				name: func(t *Topics) *string { return &t.Claims },
			}},
			{Kind: engine.KindUsage, Topic: Topic{
				Role: RoleInput, Field: "Usage", Default: DefaultUsage, SchemaID: 1,
				Flag: "topic-usage", Help: "usage input topic",
				name: func(t *Topics) *string { return &t.Usage },
			}},
			{Kind: engine.KindOfferResponse, Topic: Topic{
				Role: RoleInput, Field: "OfferResponses", Default: DefaultOfferResponses, SchemaID: 5,
				Flag: "topic-offer-responses", Help: "offer response input topic",
				name: func(t *Topics) *string { return &t.OfferResponses },
			}},
			{Kind: engine.KindContractEvent, Topic: Topic{
				Role: RoleInput, Field: "ContractEvents", Default: DefaultContractEvents, SchemaID: 6,
				Flag: "topic-contract-events", Help: "contract event input topic",
				name: func(t *Topics) *string { return &t.ContractEvents },
			}},
			{Kind: engine.KindTick, Topic: Topic{
				Role: RoleInput, Field: "Ticks", Default: DefaultTicks, SchemaID: 7,
				Flag: "topic-ticks", Help: "clock ticks of quiet partitions (written by run, read like an input)",
				name: func(t *Topics) *string { return &t.Ticks },
			}},
		},
		Outputs: [NumOutputs]Output{
			{Routing: "every segment change (key = SIREN), live and sweep alike", Topic: Topic{
				Role: RoleOutput, Field: "SegmentChanges", Default: DefaultSegmentChanges, SchemaID: 101,
				Flag: "topic-segment-changes", Help: "segment change output topic",
				name: func(t *Topics) *string { return &t.SegmentChanges },
			}},
			{Routing: "the same record as segment-changes, only when the change adds CHURN_RISK", Topic: Topic{
				Role: RoleOutput, Field: "ChurnAlerts", Default: DefaultChurnAlerts, SchemaID: 101,
				Flag: "topic-churn-alerts", Help: "churn alert output topic",
				name: func(t *Topics) *string { return &t.ChurnAlerts },
			}},
			{Routing: "a raw copy (key and value) of each rejected input record, with headers " +
				"error, error.detail, source.topic, source.partition, source.offset", Topic: Topic{
				Role: RoleOutput, Field: "DLQ", Default: DefaultDLQ,
				Flag: "topic-dlq", Help: "dead-letter topic",
				name: func(t *Topics) *string { return &t.DLQ },
			}},
			{Routing: "one record per eligibility when its attribution windows close (key = SIREN)", Topic: Topic{
				Role: RoleOutput, Field: "OfferOutcomes", Default: DefaultOfferOutcomes, SchemaID: 102,
				Flag: "topic-offer-outcomes", Help: "offer outcome output topic",
				name: func(t *Topics) *string { return &t.OfferOutcomes },
			}},
			{Routing: "one record per SIREN at each stream-day change (key = SIREN)", Topic: Topic{
				Role: RoleOutput, Field: "SirenDaily", Default: DefaultSirenDaily, SchemaID: 104,
				Flag: "topic-siren-daily", Help: "daily SIREN snapshot output topic",
				name: func(t *Topics) *string { return &t.SirenDaily },
			}},
			{Routing: "global uplift per (rules version, offer), written by the aggregator of the offer's repartition partition (key = offer)", Topic: Topic{
				Role: RoleOutput, Field: "Uplift", Default: DefaultUplift, SchemaID: 103,
				Flag: "topic-uplift", Help: "uplift output topic",
				name: func(t *Topics) *string { return &t.Uplift },
			}},
			{Routing: "internal: every closed outcome again, keyed by offer, for the uplift aggregator (default <group>-uplift-repartition)", Topic: Topic{
				Role: RoleRepartition, Field: "UpliftRepartition",
				Flag: "topic-uplift-repartition", Help: "internal uplift repartition topic (default <group>-uplift-repartition)",
				name: func(t *Topics) *string { return &t.UpliftRepartition },
			}, Configs: RepartitionConfigs()},
		},
		Changelog: Changelog{
			Topic: Topic{
				// No fixed default: it is ChangelogName(group).
				Role: RoleChangelog, Field: "Changelog",
				Flag: "topic-changelog", Help: "compacted state changelog topic (restores moved partitions; default <group>-changelog); - disables it",
				name: func(t *Topics) *string { return &t.Changelog },
			},
			Configs: []ConfigEntry{
				{Name: "cleanup.policy", Value: "compact"},
				// Keeps the records of a commit that did not finish from
				// compacting away older versions before the restarted task
				// rewrites them (see processor/changelog.go).
				{Name: "min.compaction.lag.ms", Value: "3600000"},
			},
		},
	}
}

// RepartitionConfigs are the configs the uplift repartition topic is
// created with: kept forever. The aggregator's state is the fold of this
// topic from its first offset (processor/aggregator.go), rebuilt on every
// assignment, restart and rebalance; a record deleted by retention would
// silently drop its outcome from every table written after. Compaction is
// no alternative: the key is the offer, so it would keep one outcome per
// offer. The topic holds one small record (~250 bytes) per closed
// eligibility: 1M SIRENs with a few eligibilities a quarter is ~1 GB a year.
func RepartitionConfigs() []ConfigEntry {
	return []ConfigEntry{
		{Name: "cleanup.policy", Value: "delete"},
		{Name: "retention.ms", Value: "-1"},
		{Name: "retention.bytes", Value: "-1"},
	}
}

// All returns every topic declaration: inputs, outputs, then the changelog.
func (g Graph) All() []Topic {
	all := make([]Topic, 0, NumInputs+NumOutputs+1)
	for _, in := range g.Inputs {
		all = append(all, in.Topic)
	}
	for _, out := range g.Outputs {
		all = append(all, out.Topic)
	}
	return append(all, g.Changelog.Topic)
}
