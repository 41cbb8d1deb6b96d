package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("demo", `Everything on one machine: starts the embedded Kafka-protocol broker, produces
synthetic events for --sirens companies over --days days, runs the processor
until it has consumed them all, and prints what a sales analyst wants to know:
companies per segment, examples with their reasons and offers, events/s.`, stdout)
	fs.String("config", "", "YAML config file; keys are these flag names")
	sirens := fs.Int("sirens", 2000, "number of companies")
	days := fs.Int("days", 120, "days of history (≥ 90 lets every metric warm up)")
	partitions := fs.Int("partitions", 4, "partitions of the input topics")
	seed := fs.Int64("seed", 1, "random seed of the generator")
	badRate := fs.Float64("bad-rate", 0.001, "fraction of deliberately bad records (they go to the dead-letter topic)")
	stateDir := fs.String("state-dir", "", "Badger directory (default: a temporary directory, removed at exit)")
	logLevel := fs.String("log-level", "warn", "log level of the processor")
	outcomes := fs.Int("outcome-sirens", 3000, "companies of the planted-effects cohort written before the history (offer responses and contract events, see generate --outcomes); 0: none")
	var heap heapFlags
	heap.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if _, err := heap.apply(); err != nil {
		return usageErr("%v", err)
	}
	log, err := newLogger("console", *logLevel, stderr)
	if err != nil {
		return err
	}
	dir := *stateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sirenstream-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(*partitions), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	say("▶ embedded Kafka broker on %s (%d partitions)", strings.Join(brokers, ","), *partitions)

	k := processor.Kafka{Brokers: brokers}
	if _, err := processor.EnsureTopics(ctx, k, processor.Topics{}, *partitions, 1, log); err != nil {
		return err
	}
	w := load.Writer(brokers, processor.Transport(k))
	gcfg := gen.Config{SIRENs: *sirens, Days: *days, Seed: *seed, BadRate: *badRate}
	if err := gcfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if *outcomes < 0 {
		return usageErr("--outcome-sirens must be ≥ 0")
	}
	if *outcomes > 0 {
		// The processor's defaults: holdout, windows, lateness.
		c := gen.Cohort(*outcomes, *sirens, gcfg.Start.UnixMilli(), engine.DefaultConversionWindowMs, engine.DefaultChurnWindowMs,
			engine.DefaultAllowedLatenessMs, engine.Holdout{}, *seed)
		gcfg.Outcomes = &c
	}
	pst, err := load.Produce(ctx, w, gcfg, nil, 0)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	say("▶ produced %d events for %d companies over %d days in %s (%d deliberately bad)",
		pst.Records, *sirens, *days, pst.Elapsed.Round(time.Millisecond), pst.Bad)
	if *outcomes > 0 {
		say("  and, before them, %d companies with offer responses and contract events whose effects are planted", *outcomes)
	}

	codec, err := schemas.NewCodec(schemas.Config{Logger: log})
	if err != nil {
		return err
	}
	store, err := processor.OpenStore(state.Options{Dir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	p, err := processor.New(processor.Config{
		Kafka: k, Group: "sirenstream-demo", Logger: log, Codec: codec, Store: store,
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- p.Run(runCtx) }()

	var consumed, processed, dead int64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Now()
wait:
	for {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("processor stopped before consuming the input")
			}
			return err
		case <-ctx.Done():
			stop()
			return errors.Join(ctx.Err(), <-errc)
		case <-tick.C:
			consumed, processed, dead = 0, 0, 0
			caught := 0
			prog := p.Progress()
			for _, tp := range prog {
				consumed += tp.Consumed
				processed += tp.Processed
				dead += tp.DeadLettered
				if tp.CaughtUp {
					caught++
				}
			}
			if time.Since(lastPrint) >= 2*time.Second {
				lastPrint = time.Now()
				say("  … %d/%d events processed (%.0f events/s)", consumed, pst.Records, float64(consumed)/time.Since(start).Seconds())
			}
			if consumed >= pst.Records && caught == len(prog) && len(prog) == *partitions {
				break wait
			}
		}
	}
	elapsed := time.Since(start)
	if *outcomes > 0 {
		awaitUplift(ctx, p)
	}
	stop()
	if err := <-errc; err != nil {
		return err
	}
	say("▶ processed %d events in %s: %.0f events/s (%d processed, %d dead-lettered)",
		consumed, elapsed.Round(time.Millisecond), float64(consumed)/elapsed.Seconds(), processed, dead)

	msgs, err := load.ReadAll(ctx, brokers, processor.Transport(k), nil, topology.DefaultSegmentChanges)
	if err != nil {
		return err
	}
	latest := map[string]*schemas.SegmentChange{}
	for _, m := range msgs {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			return fmt.Errorf("decode segment change at %d: %w", m.Offset, err)
		}
		if cur, ok := latest[sc.SIREN]; !ok || sc.Seq > cur.Seq {
			latest[sc.SIREN] = sc
		}
	}
	printSummary(stdout, msgs, latest, *sirens)
	if *outcomes > 0 {
		printUplift(stdout, p.Uplift(), gen.DefaultEffects())
	}
	return nil
}

// awaitUplift waits (at most 10 s) until the uplift aggregators have
// published rows and they stopped changing: they fold the repartition
// topic behind the tasks.
func awaitUplift(ctx context.Context, p *processor.Processor) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	var last []schemas.UpliftRow
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-tick.C:
			rows := p.Uplift()
			if len(rows) > 0 && reflect.DeepEqual(rows, last) {
				return
			}
			last = rows
		}
	}
}

// printUplift prints the uplift table (GET /v1/uplift) beside the planted
// effects it should find.
func printUplift(w io.Writer, rows []schemas.UpliftRow, planted []gen.Effect) {
	fmt.Fprintf(w, "\nMeasured uplift (offer outcomes of the planted cohort; every eligible company counts, contacted or not):\n")
	if len(rows) == 0 {
		fmt.Fprintf(w, "  no outcome has closed yet\n")
		return
	}
	plantedLift := map[string]float64{}
	for _, e := range planted {
		plantedLift[e.Offer] = e.Lift()
	}
	pct := func(k, n int64) float64 {
		if n == 0 {
			return 0
		}
		return 100 * float64(k) / float64(n)
	}
	fmt.Fprintf(w, "  %-19s %-21s %-21s %-30s %-8s %s\n", "offer", "treatment conv/elig", "control conv/elig", "conversion lift (95 % CI)", "planted", "control_share")
	for _, r := range rows {
		p := "-"
		if l, ok := plantedLift[r.Offer]; ok {
			p = fmt.Sprintf("%+.1f", 100*l)
		}
		fmt.Fprintf(w, "  %-19s %-21s %-21s %-30s %-8s %.3f\n", r.Offer,
			fmt.Sprintf("%d/%d (%.1f%%)", r.TreatmentConverted, r.TreatmentEligible, pct(r.TreatmentConverted, r.TreatmentEligible)),
			fmt.Sprintf("%d/%d (%.1f%%)", r.ControlConverted, r.ControlEligible, pct(r.ControlConverted, r.ControlEligible)),
			fmt.Sprintf("%+.1f pts [%+.1f, %+.1f]", 100*r.ConversionLift, 100*r.ConversionLiftLow, 100*r.ConversionLiftHigh), p, r.ControlShare)
	}
	fmt.Fprintf(w, "  (lift = treatment rate − control rate; an interval that excludes 0 is a measured effect.\n"+
		"  The history's own eligibilities close after the windows: 90-day conversion, 180-day churn.)\n")
}

func printSummary(w io.Writer, msgs []kafka.Message, latest map[string]*schemas.SegmentChange, total int) {
	fmt.Fprintf(w, "\n%d segment-change events for %d companies (topic %s)\n\n", len(msgs), len(latest), topology.DefaultSegmentChanges)
	counts := map[string]int{}
	offers := map[string]int{}
	control := 0
	sirens := make([]string, 0, len(latest))
	for s, sc := range latest {
		sirens = append(sirens, s)
		for _, seg := range sc.Segments {
			counts[seg]++
		}
		for _, o := range sc.Offers {
			offers[o]++
		}
		if sc.ControlGroup {
			control++
		}
	}
	sort.Strings(sirens)
	explain := map[string]string{
		"DATA_HUNGRY":      "top 20% data use per employee",
		"HIDDEN_GROWTH":    "~20%/month traffic growth, flat headcount",
		"SLA_SENSITIVE":    "filed a claim after an outage",
		"RECOVERY_EXPOSED": "≥4 h of outage recovery in 90 days",
		"MULTI_SITE":       "sites in ≥2 postal codes",
		"CHURN_RISK":       "network-dependent and exposed to outages",
	}
	triggers := map[string]int{}
	timerExposed := 0
	for _, m := range msgs {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			continue
		}
		triggers[sc.Trigger]++
		if sc.Trigger == engine.TriggerTimer && contains(sc.Added, "RECOVERY_EXPOSED") {
			timerExposed++
		}
	}
	fmt.Fprintf(w, "Events by cause: %d input records, %d day changes, %d outage timers", triggers[engine.TriggerInput],
		triggers[engine.TriggerDayChange], triggers[engine.TriggerTimer])
	if n := triggers[engine.TriggerRepair]; n > 0 {
		fmt.Fprintf(w, ", %d repairs", n)
	}
	fmt.Fprintf(w, ".\n  Outage timers act in stream time: %d companies entered RECOVERY_EXPOSED exactly when an open\n"+
		"  outage reached 4 h (not at their next event); golden-hour offers come at start + 1 h.\n\n", timerExposed)
	fmt.Fprintf(w, "Companies per segment now (of %d):\n", total)
	for _, seg := range engine.Segments(0xff).Names() {
		fmt.Fprintf(w, "  %-17s %5d   %s\n", seg, counts[seg], explain[seg])
	}
	fmt.Fprintf(w, "\nOffers to route:\n")
	names := make([]string, 0, len(offers))
	for o := range offers {
		names = append(names, o)
	}
	sort.Strings(names)
	for _, o := range names {
		fmt.Fprintf(w, "  %-19s %5d\n", o, offers[o])
	}
	fmt.Fprintf(w, "  (%d companies are in the control group: NBO engines withhold their offers)\n", control)

	fmt.Fprintf(w, "\nExamples:\n")
	shown := map[string]bool{}
	for _, seg := range []string{"CHURN_RISK", "HIDDEN_GROWTH", "DATA_HUNGRY", "MULTI_SITE"} {
		for _, s := range sirens {
			sc := latest[s]
			if shown[s] || !contains(sc.Segments, seg) {
				continue
			}
			shown[s] = true
			fmt.Fprintf(w, "  SIREN %s  segments %v  offers %v\n", s, sc.Segments, sc.Offers)
			for _, r := range sc.Reasons {
				fmt.Fprintf(w, "      %-17s %s = %.2f (threshold %.2f)\n", r.Segment, r.Metric, r.Value, r.Threshold)
			}
			break
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
