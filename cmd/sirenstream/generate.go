package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
)

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("generate", `Produce realistic synthetic events (profiles, usage, outages, claims) for N
companies over N days, in event-time order, Confluent-framed Avro with the fixed
schema ids, key = SIREN, murmur2 partitioning. Deterministic for a given --seed.
Missing topics are created (--partitions).`, stdout)
	var kf kafkaFlags
	kf.register(fs)
	fs.String("config", "", "YAML config file; keys are these flag names")
	sirens := fs.Int("sirens", 2000, "number of companies (SIRENs)")
	days := fs.Int("days", 120, "days of history")
	start := fs.String("start", "2026-01-01", "first day (YYYY-MM-DD, UTC)")
	seed := fs.Int64("seed", 1, "random seed")
	bad := fs.Float64("bad-rate", 0, "fraction of deliberately bad records (invalid SIRENs, negative bytes, ...)")
	partitions := fs.Int("partitions", 0, "partition count for created topics (default: as existing, else 6)")
	registry := fs.String("schema-registry", "", "register the schemas with this Confluent schema registry (subjects <topic>-value) and frame records with the ids it assigns; needed when the processor runs with --schema-registry")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := kf.build()
	if err != nil {
		return err
	}
	day, err := time.Parse("2006-01-02", *start)
	if err != nil {
		return usageErr("--start %q: %v", *start, err)
	}
	cfg := gen.Config{SIRENs: *sirens, Days: *days, Start: day, Seed: *seed, BadRate: *bad}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	n, err := processor.EnsureTopics(ctx, k, processor.Topics{}, *partitions, 1, nil)
	if err != nil {
		return err
	}
	w := load.Writer(k.Brokers, processor.Transport(k))
	defer func() { err = errors.Join(err, w.Close()) }()
	var opts load.Options
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
	fmt.Fprintf(stdout, "produced %d records (%d deliberately bad) to %d partitions in %s (%.0f records/s): %v\n",
		st.Records, st.Bad, n, st.Elapsed.Round(time.Millisecond), float64(st.Records)/st.Elapsed.Seconds(), st.ByTopic)
	return nil
}
