package processor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// Topics names every topic of the topology; zero values take the defaults
// declared in package topology.
type Topics = topology.Topics

// Kafka holds connection settings shared by the consumer group, the partition
// readers, the writer and the admin client. TLS and SASL are applied to both
// the Dialer and the Transport (kafka-go needs them twice).
type Kafka struct {
	Brokers  []string
	ClientID string         // default "sirenstream"
	TLS      *tls.Config    // nil: plaintext
	SASL     sasl.Mechanism // nil: no SASL
}

// Config configures a Processor. Zero values take documented defaults;
// Validate names the bad field.
type Config struct {
	Kafka  Kafka
	Topics Topics
	// Group is the consumer group id (default "sirenstream"). Only used by
	// Run. It names the default changelog (Topics.Changelog empty:
	// "<group>-changelog") and the state a Run may use: a changelog or a
	// state directory written by another group is refused (ErrOtherGroup).
	Group string
	// Partitions is the partition count used when creating missing topics
	// (default: the count of existing input topics, else 6).
	Partitions int
	// ReplicationFactor for created topics (default 1).
	ReplicationFactor int

	Rules  *engine.Rules // default engine.DefaultRules()
	Engine engine.Config

	// MaxFutureSkew: an event whose event_time is later than its Kafka record
	// timestamp plus this skew is dead-lettered with reason "future"
	// (deterministic on replay: both times are in the record). Default 24h.
	MaxFutureSkew time.Duration

	// CommitInterval bounds how long processed records wait before their
	// outputs are flushed and their state+offsets committed (default 100ms:
	// this is also the output latency floor). CommitRecords bounds the records
	// per commit (default 20000).
	CommitInterval time.Duration
	CommitRecords  int
	// CatchUpCommitInterval replaces CommitInterval while a task is behind
	// by at least CommitRecords records (a replay, a restart after downtime,
	// a burst): latency is then set by the backlog anyway, and a longer
	// batch writes each SIREN's state once for more records (default 1s;
	// never below CommitInterval).
	CatchUpCommitInterval time.Duration
	// CatchUpCommitRecords replaces CommitRecords as the bound of records
	// per commit while a task is behind by CommitRecords or more (default
	// 250000, or CommitRecords when that is set; never below CommitRecords):
	// with a backlog, more records per commit means fewer state writes per
	// record. Badger's transaction limit and CatchUpCommitInterval still end
	// a batch earlier.
	CatchUpCommitRecords int
	// GroupCommitInterval: how often durable offsets are also committed to the
	// consumer group for lag tools (default 1s). Restart trusts Badger, not these.
	GroupCommitInterval time.Duration
	// SessionTimeout of the consumer group (default 10s): how long a crashed
	// instance keeps its partitions before they move.
	SessionTimeout time.Duration
	// FaultDeadline bounds how long Run retries a transient broker or network
	// fault (a broker restart, a leader change, a partial error in a
	// multi-partition answer, an ended generation) that keeps one part of
	// the run — the group membership, a partition's task, the output
	// writes — from working: past it, Run returns an error wrapping
	// ErrFaultDeadline. Default 10m; negative: retry forever. Until then
	// the task that met the fault is restarted from its last commit, with
	// backoff and a WARN line, and the others go on.
	FaultDeadline time.Duration
	// CacheSIRENs bounds decoded SIREN states kept in memory per partition
	// (default 50000).
	CacheSIRENs int
	// CacheBytes also bounds them per partition, by encoded size (decoded
	// states take about three times that in memory: 387 MB of heap for 128
	// MiB of encoded states at 1M SIRENs): a count alone lets a few large
	// states (event-id filters) or a million companies take the heap
	// (default DefaultCacheBytes, 10 MiB: what keeps a 4-partition instance
	// at 1M SIRENs under 1 GiB, BENCHMARKS.md round 10; negative: no byte
	// bound).
	CacheBytes int64
	// NoSirenDaily turns off the siren-daily output (one record per SIREN
	// per stream day: as many records a day as the population; the topic is
	// still created). Outcomes and uplift do not depend on it.
	NoSirenDaily bool
	// StateVersion is the version of the states this processor writes
	// (engine.CheckWriteVersion): 0 or engine.StateVersion, or
	// engine.MinWriteVersion while a group is upgraded one instance at a
	// time from a build that reads no later version (README: Upgrades).
	StateVersion int

	Logger *zap.Logger
	Codec  *schemas.Codec // required
	Store  *state.Store   // required
	// Metrics receives counters; default a no-op.
	Metrics Metrics

	// OnDayChange, when set, is called by a partition's task after each
	// day-change sweep (both passes) with what it did. It runs on the task's
	// goroutine: keep it short. For benchmarks and tools; nil by default.
	OnDayChange func(DayChange)

	// beforeStateCommit, set by tests only, runs after a batch's outputs and
	// changelog records were written and before its Badger transaction: an
	// error there is a crash at the worst moment of the commit protocol.
	beforeStateCommit func(partition int32) error
	// spillOutputs, set by tests only, replaces defaultSpillOutputs.
	spillOutputs int
	// HTTPAdvertise is this instance's HTTP base URL (e.g.
	// "http://10.0.0.7:8080"), published to the other consumer-group members
	// in the JoinGroup user data so that a query for a SIREN owned elsewhere
	// can name the owner's URL (Processor.Members). "" publishes nothing.
	HTTPAdvertise string
	// RepairDir is where a repair builds its scratch store (default: the
	// system's temporary directory). A repair of a partition needs about
	// the space of that partition's state.
	RepairDir string
	// MaxTaskIdle is how long a live task holds a day change for an input
	// that has nothing buffered and has not reached that day yet (a lagging
	// feed), before it lets stream time pass it (Kafka Streams'
	// max.task.idle.ms, applied where order decides results: day changes).
	// Default DefaultMaxTaskIdle; negative: never hold. Records arriving
	// after a day change they belong before are repaired either way.
	MaxTaskIdle time.Duration
	// IdleTickInterval is how often run looks for quiet partitions to tick
	// (ticker.go): a partition that has consumed everything and whose stream
	// time did not move for a whole interval while it is more than
	// IdleTickLag behind the instance's most advanced partition gets a clock
	// tick. Default DefaultIdleTickInterval; negative: no ticks.
	IdleTickInterval time.Duration
	// IdleTickLag is how far behind the most advanced partition a quiet one
	// is ticked to (default DefaultIdleTickLag): its day changes and timers
	// run at most this late in stream time; a record that arrives for it
	// afterwards, older than the tick, is repaired like any record behind a
	// closed day.
	IdleTickLag time.Duration

	// legacyWarn makes the WARN about changelog records without a group
	// once per Processor (set by setDefaults; shared by its tasks).
	legacyWarn *sync.Once
}

// Defaults of Config: what a zero field means (the CLI's flag defaults are
// these values).
const (
	DefaultGroup                 = topology.DefaultGroup
	DefaultClientID              = "sirenstream"
	DefaultMaxFutureSkew         = 24 * time.Hour
	DefaultCommitInterval        = 100 * time.Millisecond
	DefaultCommitRecords         = 20000
	DefaultCatchUpCommitInterval = time.Second
	DefaultCatchUpCommitRecords  = 250000
	DefaultGroupCommitInterval   = time.Second
	DefaultSessionTimeout        = 10 * time.Second
	DefaultFaultDeadline         = 10 * time.Minute
	DefaultCacheSIRENs           = 50000
	DefaultCacheBytes            = 10 << 20
	DefaultMaxTaskIdle           = time.Second
	DefaultIdleTickInterval      = time.Minute
	DefaultIdleTickLag           = 6 * time.Hour
)

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	c.Topics = c.Topics.WithDefaults(c.Group)
	if c.Kafka.ClientID == "" {
		c.Kafka.ClientID = DefaultClientID
	}
	if c.legacyWarn == nil {
		c.legacyWarn = new(sync.Once)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Rules == nil {
		c.Rules = engine.DefaultRules()
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.CatchUpCommitRecords == 0 {
		// An explicit CommitRecords bounds catch-up batches too.
		c.CatchUpCommitRecords = c.CommitRecords
		if c.CommitRecords == 0 {
			c.CatchUpCommitRecords = DefaultCatchUpCommitRecords
		}
	}
	if c.CommitRecords == 0 {
		c.CommitRecords = DefaultCommitRecords
	}
	c.CatchUpCommitRecords = max(c.CatchUpCommitRecords, c.CommitRecords)
	if c.CatchUpCommitInterval == 0 {
		c.CatchUpCommitInterval = DefaultCatchUpCommitInterval
	}
	c.CatchUpCommitInterval = max(c.CatchUpCommitInterval, c.CommitInterval)
	if c.GroupCommitInterval == 0 {
		c.GroupCommitInterval = DefaultGroupCommitInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.FaultDeadline == 0 {
		c.FaultDeadline = DefaultFaultDeadline
	}
	if c.MaxTaskIdle == 0 {
		c.MaxTaskIdle = DefaultMaxTaskIdle
	}
	if c.IdleTickInterval == 0 {
		c.IdleTickInterval = DefaultIdleTickInterval
	}
	if c.IdleTickLag == 0 {
		c.IdleTickLag = DefaultIdleTickLag
	}
	if c.CacheSIRENs == 0 {
		c.CacheSIRENs = DefaultCacheSIRENs
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.StateVersion == 0 {
		c.StateVersion = engine.StateVersion
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if len(c.Kafka.Brokers) == 0 {
		return errors.New("processor: Kafka.Brokers is empty")
	}
	if c.Codec == nil {
		return errors.New("processor: Codec is nil")
	}
	if c.Store == nil {
		return errors.New("processor: Store is nil")
	}
	if c.Partitions < 0 {
		return fmt.Errorf("processor: Partitions %d < 0", c.Partitions)
	}
	if c.StateVersion != 0 {
		if err := engine.CheckWriteVersion(c.StateVersion); err != nil {
			return fmt.Errorf("processor: StateVersion: %w", err)
		}
	}
	if c.CommitRecords < 0 || c.CommitInterval < 0 || c.CatchUpCommitRecords < 0 {
		return errors.New("processor: CommitRecords, CatchUpCommitRecords and CommitInterval must be >= 0")
	}
	if err := c.Rules.Validate(); err != nil {
		return fmt.Errorf("processor: Rules: %w", err)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	if c.Topics.ChangelogEnabled() {
		if err := topology.CheckName(c.Topics.Changelog); err != nil {
			return fmt.Errorf("processor: Topics.Changelog (default \"<Group>-changelog\", Group %q): %w", c.Group, err)
		}
	}
	return nil
}

func (k Kafka) dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      k.ClientID,
		Timeout:       10 * time.Second,
		DualStack:     true,
		TLS:           k.TLS,
		SASLMechanism: k.SASL,
	}
}

func (k Kafka) transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    k.ClientID,
		TLS:         k.TLS,
		SASL:        k.SASL,
		DialTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 10 * time.Second,
	}
}

// Transport returns a kafka-go Transport with k's TLS and SASL settings.
func Transport(k Kafka) *kafka.Transport {
	if k.ClientID == "" {
		k.ClientID = "sirenstream"
	}
	return k.transport()
}

// DayChange describes one day-change sweep of a partition (Config.OnDayChange).
type DayChange struct {
	Partition int32
	Day       time.Time // the new stream day (UTC midnight)
	Start     time.Time
	Duration  time.Duration
	// Pass1 is where the percentile snapshot's intensities came from:
	// "cache" (the partition fits in memory), "kept set" (maintained since
	// the previous day change, no read of the store) or "store" (a scan).
	Pass1   string
	Scored  int   // SIRENs with an intensity (snapshot population)
	Changes int64 // segment changes the sweep emitted
}
