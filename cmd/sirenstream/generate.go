package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
)

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("generate", `Produce realistic synthetic events (profiles, usage, outages, claims) for N
companies over N days, Confluent-framed Avro with the fixed schema ids,
key = SIREN, murmur2 partitioning, record timestamp = event time. Deterministic
for a given --seed.

Arrival order: like live producers, the four topics are written interleaved in
event-time order, in chunks of at most one hour of event time, each chunk
acknowledged before the next: no record reaches the broker after one more than
an hour ahead of it, whatever its topic or partition. --rate N trickles the
records live at N per second (in event-time order); --by-topic instead loads
whole topics one after another (usage, profiles, outages, claims), as a
historical load would, to test order independence.

Partitions: existing input topics are used as they are (--partitions, if
given, must match them or generate fails); missing topics are created with
--partitions, else the broker's default for new topics (num.partitions, e.g.
sirenstream broker --partitions), else 6.

Outcomes: by default a cohort of --outcome-sirens more companies is written
before --start with offer responses and contract events whose effects are
planted (gen.DefaultEffects: MULTISITE_VPN converts 10 % in control and 25 %
when treated, GOLDEN_HOUR_REPAIR 10 % in both), timed so that a processor
with the same --holdout-salt, --holdout-share, --conversion-window,
--churn-window and --allowed-lateness closes every cohort eligibility at the
first day change of the history: its uplift table then measures exactly the
planted lifts. --outcomes=false leaves it out.`, stdout)
	var kf kafkaFlags
	kf.register(fs)
	fs.String("config", "", "YAML config file; keys are these flag names")
	sirens := fs.Int("sirens", 2000, "number of companies (SIRENs)")
	days := fs.Int("days", 120, "days of history")
	start := fs.String("start", "2026-01-01", "first day (YYYY-MM-DD, UTC)")
	seed := fs.Int64("seed", 1, "random seed")
	bad := fs.Float64("bad-rate", 0, "fraction of deliberately bad records (invalid SIRENs, negative bytes, ...)")
	partitions := fs.Int("partitions", 0, "partition count of the input topics (default: as existing, else the broker's default, else 6); fails if it differs from existing topics")
	rate := fs.Float64("rate", 0, "records per second, trickled live in event-time order (0: as fast as the broker acknowledges)")
	byTopic := fs.Bool("by-topic", false, "load whole topics one after another (usage, profiles, outages, claims) instead of interleaved in event-time order")
	var plant plantFlags
	plant.register(fs)
	registry := fs.String("schema-registry", "", "register the schemas with this Confluent schema registry (subjects <topic>-value) and frame records with the ids it assigns; needed when the processor runs with --schema-registry")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	k, err := kf.build()
	if err != nil {
		return err
	}
	day, err := parseTimeFlag(*start)
	if err != nil {
		return usageErr("--start: %v", err)
	}
	day = day.UTC().Truncate(24 * time.Hour)
	cfg := gen.Config{SIRENs: *sirens, Days: *days, Start: day, Seed: *seed, BadRate: *bad}
	if err := plant.apply(&cfg); err != nil {
		return usageErr("%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if *partitions < 0 {
		return usageErr("--partitions must be ≥ 1")
	}
	if *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0) {
		return usageErr("--rate must be a number ≥ 0, got %v", *rate)
	}
	// A transport of its own: the writer's must not cache the metadata from
	// before the topics exist. Replication factor 1, as EnsureTopics below.
	ptr := processor.Transport(k)
	pc, err := load.Partitions(ctx, k.Brokers, ptr, load.ByTopicOrder[:], *partitions, 1)
	ptr.CloseIdleConnections()
	if errors.Is(err, load.ErrPartitionMismatch) {
		return usageErr("--partitions %d: %v; omit --partitions to use the existing count, or delete the topics first", *partitions, err)
	}
	if err != nil {
		return err
	}
	if _, err := processor.EnsureTopics(ctx, k, processor.Topics{}, pc.N, 1, nil); err != nil {
		return err
	}
	w := load.Writer(k.Brokers, processor.Transport(k))
	defer func() { err = errors.Join(err, w.Close()) }()
	opts := load.Options{Rate: *rate, ByTopic: *byTopic}
	if *registry != "" {
		if opts.SchemaIDs, err = load.Register(ctx, *registry, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered schemas with %s: ids %v (profile, outage, claim, usage kinds)\n", *registry, opts.SchemaIDs)
	}
	st, err := load.ProduceWith(ctx, w, cfg, opts)
	if err != nil {
		return err
	}
	order := "interleaved in event-time order"
	if *byTopic {
		order = "topic after topic"
	}
	fmt.Fprintf(stdout, "produced %d records (%d deliberately bad) to %d partitions (%s), %s, in %s (%.0f records/s, %d acknowledged writes): %v\n",
		st.Records, st.Bad, pc.N, pc.From, order, st.Elapsed.Round(time.Millisecond), float64(st.Records)/st.Elapsed.Seconds(), st.Writes, st.ByTopic)
	return nil
}

// plantFlags are the settings of the planted-effects cohort (gen.Cohort):
// the holdout and windows must be the processor's for the cohort's outcomes
// to close where the planted lifts are measured.
type plantFlags struct {
	on          bool
	size        int
	salt        string
	share       float64
	conv, churn dayDuration
	lateness    time.Duration
}

func (f *plantFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "outcomes", true, "also write a planted-effects cohort (offer responses, contract events) before --start; --outcomes=false leaves it out")
	fs.IntVar(&f.size, "outcome-sirens", 3000, "companies of the planted-effects cohort (after the --sirens ones)")
	fs.StringVar(&f.salt, "holdout-salt", engine.DefaultHoldoutSalt, "the processor's --holdout-salt: the cohort's groups follow it")
	fs.Float64Var(&f.share, "holdout-share", engine.DefaultHoldoutShare, "the processor's --holdout-share")
	f.conv, f.churn = dayDuration(engine.DefaultConversionWindowMs), dayDuration(engine.DefaultChurnWindowMs)
	fs.Var(&f.conv, "conversion-window", "the processor's --conversion-window: planted conversions fall inside it")
	fs.Var(&f.churn, "churn-window", "the processor's --churn-window")
	fs.DurationVar(&f.lateness, "allowed-lateness", time.Duration(engine.DefaultAllowedLatenessMs)*time.Millisecond, "the processor's --allowed-lateness: the cohort ends early enough that its eligibilities close")
}

// apply sets cfg.Outcomes (cfg's defaults filled in first).
func (f *plantFlags) apply(cfg *gen.Config) error {
	if !f.on || f.size == 0 {
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	switch {
	case f.size < 0:
		return fmt.Errorf("--outcome-sirens must be ≥ 0")
	case f.share < 0 || f.share > 1:
		return fmt.Errorf("--holdout-share %v: want 0..1", f.share)
	case int64(f.conv) < 3*dayDurationMs || int64(f.churn) < 3*dayDurationMs:
		return fmt.Errorf("--conversion-window and --churn-window must be at least 3 days for a planted cohort")
	}
	share := f.share
	if share == 0 {
		share = -1 // engine: 0 means the default; negative means none
	}
	c := gen.Cohort(f.size, cfg.SIRENs, cfg.Start.UnixMilli(), int64(f.conv), int64(f.churn), f.lateness.Milliseconds(),
		engine.Holdout{Salt: f.salt, Share: share}, cfg.Seed)
	cfg.Outcomes = &c
	return nil
}
