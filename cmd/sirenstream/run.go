package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/ops"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// procFlags are the flags shared by run and replay.
type procFlags struct {
	// beforeStore, when set, runs before a new state directory is created,
	// after an existing one is opened (run waits for the brokers there: an
	// unreachable cluster leaves no state directory behind).
	beforeStore func(*zap.Logger, processor.Kafka) error

	kafka          kafkaFlags
	config         string
	stateDir       string
	rules          string
	registry       string
	registryUser   string
	registryPass   string
	partitions     int
	logFormat      string
	logLevel       string
	commitInterval time.Duration
	catchUpCommit  time.Duration
	catchUpRecords int
	futureSkew     time.Duration
	lateness       time.Duration
	usageDays      int
	cacheSIRENs    int
	heap           heapFlags
	stateVersion   int
	topics         processor.Topics
	outcomes       outcomeFlags
}

func (f *procFlags) register(fs *flag.FlagSet, defaultLog string) {
	f.kafka.register(fs)
	fs.StringVar(&f.config, "config", "", "YAML config file; keys are these flag names")
	fs.StringVar(&f.stateDir, "state-dir", "", "Badger state directory (required; locked: one process per directory)")
	fs.StringVar(&f.rules, "rules", "", "segment rules YAML file (default: the built-in rules of the spec)")
	fs.StringVar(&f.registry, "schema-registry", "", "Confluent schema registry URL; without it only the fixed schema ids 1-4 are accepted")
	fs.StringVar(&f.registryUser, "schema-registry-username", "", "schema registry basic-auth user")
	fs.StringVar(&f.registryPass, "schema-registry-password", "", "schema registry basic-auth password (prefer the env variable)")
	fs.IntVar(&f.partitions, "partitions", 0, "partition count for topics created at start (default: as the existing inputs, else 6)")
	fs.StringVar(&f.logFormat, "log-format", defaultLog, "log format: json or console")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.commitInterval, "commit-interval", processor.DefaultCommitInterval, "max time between commits (outputs flushed, then state+offsets); bounds output latency")
	fs.DurationVar(&f.catchUpCommit, "catchup-commit-interval", processor.DefaultCatchUpCommitInterval, "max time between commits while a partition is behind by 20,000 records or more (replay, catching up): bigger batches write each SIREN's state once for more records")
	fs.IntVar(&f.catchUpRecords, "catchup-commit-records", processor.DefaultCatchUpCommitRecords, "max records per commit while a partition is behind by 20,000 records or more (below 20,000 a commit holds at most 20,000)")
	fs.DurationVar(&f.futureSkew, "max-future-skew", processor.DefaultMaxFutureSkew, "dead-letter events whose event_time is later than their Kafka record timestamp plus this")
	fs.DurationVar(&f.lateness, "allowed-lateness", time.Duration(engine.DefaultAllowedLatenessMs)*time.Millisecond, "records older than stream time minus this are late (dead-lettered)")
	fs.IntVar(&f.usageDays, "usage-days", engine.DefaultUsageDays, "days of daily usage buckets kept per SIREN")
	fs.IntVar(&f.cacheSIRENs, "cache-sirens", processor.DefaultCacheSIRENs, "decoded SIREN states kept in memory per partition")
	f.heap.register(fs)
	fs.IntVar(&f.stateVersion, "state-version", engine.StateVersion, fmt.Sprintf("version of the SIREN states written: %d, or %d while a group is upgraded one instance at a time from a build that writes version %d (it cannot read version %d); restart every instance without this flag once all run this build (README: Upgrades)", engine.StateVersion, engine.MinWriteVersion, engine.MinWriteVersion, engine.StateVersion))
	for _, d := range topology.Define().All() {
		fs.StringVar(d.Ptr(&f.topics), d.Flag, d.Default, d.Help)
	}
	f.outcomes.register(fs)
}

// components are what run and replay build from procFlags, closed in reverse.
type components struct {
	log   *zap.Logger
	rules *engine.Rules
	codec *schemas.Codec
	store *state.Store
	cfg   processor.Config

	// status (run only) logs caught-up partitions, the status line and
	// dead-letter spikes.
	status *processor.Status
}

func (c *components) Close() error {
	var err error
	if c.store != nil {
		err = c.store.Close()
	}
	if c.log != nil {
		_ = c.log.Sync()
	}
	return err
}

func (f *procFlags) build(stderr io.Writer) (*components, error) {
	c := &components{}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return nil, err
	}
	c.log = log
	k, err := f.kafka.build()
	if err != nil {
		return nil, err
	}
	if f.stateDir == "" {
		return nil, usageErr("--state-dir is required (or SIRENSTREAM_STATE_DIR)")
	}
	if err := f.outcomes.validate(); err != nil {
		return nil, usageErr("%s", err)
	}
	if err := engine.CheckWriteVersion(f.stateVersion); err != nil {
		return nil, usageErr("--state-version: %v", err)
	}
	c.rules = engine.DefaultRules()
	if f.rules != "" {
		b, err := os.ReadFile(f.rules)
		if err != nil {
			return nil, usageErr("--rules: %v", err)
		}
		if c.rules, err = engine.ParseRules(bytes.NewReader(b)); err != nil {
			return nil, usageErr("--rules %s: %v", f.rules, err)
		}
	}
	c.codec, err = schemas.NewCodec(schemas.Config{
		RegistryURL:       f.registry,
		BasicAuthUser:     f.registryUser,
		BasicAuthPassword: f.registryPass,
		Logger:            log,
	})
	if err != nil {
		return nil, prefixOnce("codec", err)
	}
	// After every flag was checked: a usage error stays one line.
	hs, err := f.heap.apply()
	if err != nil {
		return nil, usageErr("%v", err)
	}
	log.Info("Go heap soft limit (--memory-limit)", zap.Int64("bytes", hs.limit), zap.String("from", hs.limitFrom),
		zap.Int("gc_percent", hs.gcPercent), zap.String("gc_percent_from", hs.gcFrom))
	if f.stateVersion != engine.StateVersion {
		log.Warn("writing SIREN states of an older version for a rolling upgrade (--state-version): restart every instance without it once all run this build",
			zap.Int("state_version", f.stateVersion), zap.Int("current", engine.StateVersion))
	}
	// An existing state directory is opened first (a locked or damaged one
	// fails at once); a new one only after beforeStore succeeded.
	_, statErr := os.Stat(f.stateDir)
	if err := f.runBeforeStore(statErr != nil, log, k); err != nil {
		return nil, err
	}
	c.store, err = processor.OpenStore(state.Options{Dir: f.stateDir, Logger: log})
	if err != nil {
		return nil, prefixOnce("state", err)
	}
	if err := f.runBeforeStore(statErr == nil, log, k); err != nil {
		return nil, errors.Join(err, c.store.Close())
	}
	c.cfg = processor.Config{
		Kafka:                 k,
		Topics:                f.topics,
		Partitions:            f.partitions,
		Rules:                 c.rules,
		Engine:                f.outcomes.apply(engine.Config{UsageDays: f.usageDays, AllowedLatenessMs: f.lateness.Milliseconds()}),
		MaxFutureSkew:         f.futureSkew,
		CommitInterval:        f.commitInterval,
		CatchUpCommitInterval: f.catchUpCommit,
		CatchUpCommitRecords:  f.catchUpRecords,
		CacheSIRENs:           f.cacheSIRENs,
		NoSirenDaily:          !f.outcomes.sirenDaily,
		StateVersion:          f.stateVersion,
		Logger:                log,
		Codec:                 c.codec,
		Store:                 c.store,
	}
	return c, nil
}

func (f *procFlags) runBeforeStore(now bool, log *zap.Logger, k processor.Kafka) error {
	if !now || f.beforeStore == nil {
		return nil
	}
	return f.beforeStore(log, k)
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("run", `The long-running processor. Joins consumer group --group on the input topics
(usage, outages, claims, profiles; co-partitioned, key = SIREN), keeps per-SIREN
state in --state-dir and writes segment changes, churn alerts and dead letters.
Missing topics are created. Stops cleanly on SIGTERM/SIGINT: outputs flushed,
state and offsets committed. Restart resumes from the offsets stored with the
state (the group's offsets are committed too, for lag tools).`, stdout)
	var f procFlags
	f.register(fs, "json")
	group := fs.String("group", processor.DefaultGroup, "consumer group id")
	session := fs.Duration("session-timeout", processor.DefaultSessionTimeout, "consumer group session timeout: how long a crashed instance keeps its partitions")
	faultDeadline := fs.Duration("fault-deadline", processor.DefaultFaultDeadline, "how long a transient broker or network fault (broker restart, leader change, ended generation) is retried before run exits 1; the task that met it restarts from its last commit meanwhile; 0: retry forever")
	tickEvery := fs.Duration("idle-tick-interval", processor.DefaultIdleTickInterval, "how often to look for quiet partitions: one that has consumed everything and whose stream time has not moved for this long while it is more than --idle-tick-lag behind this instance's most advanced partition gets a clock tick (topic --topic-ticks), so its day changes and outage timers run without records of its own; the tick is data, so a replay gives the same output; negative: no ticks")
	tickLag := fs.Duration("idle-tick-lag", processor.DefaultIdleTickLag, "how far behind this instance's most advanced partition a quiet partition is ticked to (stream time)")
	maxIdle := fs.Duration("max-task-idle", processor.DefaultMaxTaskIdle, "how long a partition holds a day change for an input that has nothing buffered and has not reached that day (a lagging feed) before it lets stream time pass it; negative: never hold. Records that arrive after a day change they belong before are repaired either way (see README, ordering contract)")
	repairDir := fs.String("repair-dir", "", "directory for the scratch store of a repair (re-processing a partition in event-time order; needs about the space of that partition's state); default: the system's temporary directory")
	statusEvery := fs.Duration("status-interval", processor.DefaultStatusEvery, "time between status log lines (records/s, lag, dead letters/s, partitions caught up; 0: none)")
	var hf httpFlags
	hf.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	f.beforeStore = func(log *zap.Logger, k processor.Kafka) error {
		bi := readBuildInfo()
		log.Info("sirenstream run starting", zap.String("version", bi.Version), zap.String("commit", bi.Commit), zap.String("go", bi.GoVersion))
		deadline := *faultDeadline
		if deadline == 0 {
			deadline = -1 // forever
		}
		if err := processor.WaitForBrokers(ctx, k, deadline, log); err != nil {
			if errors.Is(err, processor.ErrFaultDeadline) {
				err = fmt.Errorf("%w (--fault-deadline sets how long faults are retried; 0 retries forever)", err)
			}
			return err
		}
		return nil
	}
	c, err := f.build(stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	if *statusEvery == 0 {
		*statusEvery = -1 // processor.StatusConfig: negative is "none"
	}
	c.status = processor.NewStatus(processor.StatusConfig{Logger: c.log, Every: *statusEvery, Registry: f.registry != ""})
	c.cfg.Group = *group
	c.cfg.SessionTimeout = *session
	if c.cfg.FaultDeadline = *faultDeadline; *faultDeadline == 0 {
		c.cfg.FaultDeadline = -1 // processor.Config: negative is "forever"
	}
	c.cfg.MaxTaskIdle = *maxIdle
	c.cfg.IdleTickInterval = *tickEvery
	c.cfg.IdleTickLag = *tickLag
	c.cfg.RepairDir = *repairDir
	return runLive(ctx, c, hf)
}

// runLive runs the processor and, with --http, the ops HTTP server beside
// it; when either stops with an error the other is stopped too.
func runLive(ctx context.Context, c *components, hf httpFlags) error {
	ln, advertise, token, err := hf.listen(c.log)
	if err != nil {
		return err
	}
	var metrics *ops.Metrics
	if ln != nil {
		defer ln.Close() // already closed by the server when it ran
		bi := readBuildInfo()
		metrics = ops.NewMetrics(ops.MetricsConfig{StateSize: c.store.Size, Version: bi.Version, Commit: bi.Commit})
		c.cfg.Metrics = metrics
		c.cfg.HTTPAdvertise = advertise
	}
	if c.status != nil {
		c.cfg.Metrics = c.status.Metrics(c.cfg.Metrics)
	}
	p, err := processor.New(c.cfg)
	if err != nil {
		return err
	}
	var srv *ops.Server
	if ln != nil {
		oc := hf.config(ln, token)
		oc.Processor, oc.Metrics, oc.Logger = p, metrics, c.log
		srv, err = ops.New(oc)
		if err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := p.Run(gctx)
		if err == nil {
			c.log.Info("processor stopped cleanly")
		}
		if errors.Is(err, processor.ErrFaultDeadline) {
			err = fmt.Errorf("%w (--fault-deadline sets how long faults are retried; 0 retries forever)", err)
		}
		return err
	})
	if c.status != nil {
		g.Go(func() error { return c.status.Run(gctx, p) })
	}
	if srv != nil {
		c.log.Info("ops http server", zap.String("addr", ln.Addr().String()), zap.String("advertise", advertise), zap.Bool("token", token != ""))
		g.Go(func() error { return srv.Run(gctx) })
	}
	return g.Wait()
}
