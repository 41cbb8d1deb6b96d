// Package processor is sirenstream's runtime: a kafka-go consumer group whose
// members own partition numbers of the co-partitioned inputs, one task per
// partition merging usage, outages, claims and profiles in event-time order,
// the engine applied to each record, and the commit protocol that makes state
// exactly-once.
//
// The graph is declared in package topology (topic names, kinds, schemas,
// creation configs, a diagram with the commit steps); a task runs it in this
// order, each step of a commit only after the previous one is durable:
//
//	inputs     profiles, outages, claims, usage, offer-responses, contract-events, ticks   (co-partitioned, key = SIREN)
//	   │ task p: decode, merge by (event_time, input order, offset)
//	   ▼
//	engine     check (bad → DLQ) → sweep on day change → step → decision
//	   │       (changed states stay in the task's cache until committed)
//	   ▼
//	outputs    merge plan saved (Badger), then segment-changes, churn-alerts
//	   │       (when CHURN_RISK is added), sirenstream-dlq written and acked
//	   ▼
//	changelog  <group>-changelog (compacted): dirty states + checkpoint
//	   │
//	   ▼
//	state      Badger: one txn with dirty states + offsets + meta of p
//	   │
//	   ▼
//	group      consumer group offsets (lag tools only)
package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

// Processor runs partition tasks. Construct with New; Run (live, consumer
// group) or Replay (bounded backfill). Constructors start no goroutines.
type Processor struct {
	cfg    Config
	log    *zap.Logger
	client *kafka.Client

	mu         sync.Mutex
	partitions int // input partition count, known after EnsureTopics
	tasks      map[int32]*task
	owned      []int32
	final      map[int32]TaskProgress // progress of finished tasks

	// uplift is the latest uplift table of this instance's aggregators
	// (aggregator.go), keyed by (rules version, holdout, offer).
	upliftMu sync.Mutex
	uplift   map[upliftKey]schemas.UpliftRow
}

// New validates cfg and builds a Processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Processor{
		cfg: cfg,
		log: cfg.Logger,
		client: &kafka.Client{
			Addr:      kafka.TCP(cfg.Kafka.Brokers...),
			Timeout:   15 * time.Second,
			Transport: cfg.Kafka.transport(),
		},
		tasks: map[int32]*task{},
		final: map[int32]TaskProgress{},
	}, nil
}

// Run is the live processor: it joins the consumer group, runs a task per
// owned partition, follows rebalances and returns nil when ctx ends (after a
// clean flush) or the first fatal error (storage, configuration).
func (p *Processor) Run(ctx context.Context) error {
	// The state directory is one group's (isolation.go).
	if err := claimStore(p.cfg.Store, p.cfg.Group, p.log); err != nil {
		return err
	}
	if err := claimHoldout(p.cfg.Store, p.cfg.Engine.Holdout); err != nil {
		return err
	}
	n, err := p.EnsureTopics(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	tp := p.cfg.Topics
	rt, err := registerOutputs(ctx, p.cfg.Codec, routes{segments: tp.SegmentChanges, churn: tp.ChurnAlerts, dlq: tp.DLQ,
		outcomes: tp.OfferOutcomes, daily: p.dailyTopic(tp.SirenDaily), repartition: tp.UpliftRepartition, uplift: tp.Uplift})
	if err != nil {
		return err
	}
	changelog := ""
	if p.cfg.Topics.ChangelogEnabled() {
		changelog = p.cfg.Topics.Changelog
	}
	limits := readRecordLimits(ctx, p.client, rt, changelog, p.log)
	writer := newWriter(p.cfg.Kafka, p.log, limits.output)
	defer writer.Close()

	inputs := p.cfg.Topics.Inputs()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.Group,
		Brokers:           p.cfg.Kafka.Brokers,
		Dialer:            p.cfg.Kafka.dialer(),
		Topics:            inputs[:],
		GroupBalancers:    []kafka.GroupBalancer{coPartitionBalancer{advertise: p.cfg.HTTPAdvertise}},
		HeartbeatInterval: time.Second,
		SessionTimeout:    p.cfg.SessionTimeout,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		Logger:            kafka.LoggerFunc(p.log.Sugar().Debugf),
		ErrorLogger:       kafka.LoggerFunc(p.log.Sugar().Infof),
	})
	if err != nil {
		return fmt.Errorf("consumer group %q: %w", p.cfg.Group, err)
	}
	p.log.Info("processor started", zap.String("group", p.cfg.Group), zap.Int("partitions", n),
		zap.Strings("inputs", inputs[:]), zap.String("rules_version", p.cfg.Rules.Version))
	p.logPreviousMembers(ctx)

	if p.cfg.IdleTickInterval > 0 {
		tw := newWriter(p.cfg.Kafka, p.log, limits.output)
		tw.Balancer = partitionBalancer{}
		defer tw.Close()
		tk := &ticker{interval: p.cfg.IdleTickInterval, lag: p.cfg.IdleTickLag, topic: p.cfg.Topics.Ticks,
			progress: p.Progress, writer: tw, log: p.log, last: map[int32]int64{}}
		tickCtx, stopTicks := context.WithCancel(ctx)
		defer stopTicks()
		go tk.run(tickCtx)
	}

	// Transient faults restart the task that met them; one that lasts
	// longer than FaultDeadline stops the run (faults.go).
	faults := newFaultClock(p.cfg.FaultDeadline, cancel)
	output := faultWriter{next: writer, faults: faults}
	var wg sync.WaitGroup
	var taskErrMu sync.Mutex
	var taskErrs []error
	for ctx.Err() == nil {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failing := faults.failed("consumer group", err)
			p.log.Warn("consumer group: waiting for next generation", zap.Duration("failing_for", failing), zap.Error(err))
			sleepCtx(ctx, time.Second)
			continue
		}
		faults.ok("consumer group")
		owned := ownedPartitions(gen.Assignments, inputs[:])
		faults.retain(owned)
		p.setOwned(owned)
		p.log.Info("partitions assigned", zap.Int32("generation", gen.ID), zap.Int32s("partitions", owned))
		for _, part := range owned {
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				// Restart trusts the store's checkpoint, never the group's
				// offsets (state is a function of the whole input history).
				opt := taskOptions{
					partition:   part,
					routes:      rt,
					limits:      limits,
					groupCommit: gen.CommitOffsets,
					changelog:   p.cfg.Topics.ChangelogEnabled(),
					repairs:     true,
				}
				if err := p.superviseTask(ctx, gctx, opt, output, faults); err != nil {
					// Remember it even when the parent context is already
					// done: a failed final flush must fail the run.
					taskErrMu.Lock()
					taskErrs = append(taskErrs, err)
					taskErrMu.Unlock()
					cancel(err)
				}
			})
			// The uplift aggregator of the same partition number
			// (aggregator.go): its state is a fold of its topic, rebuilt
			// by each owner.
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				if err := p.runAggregator(gctx, part, rt, output, false); err != nil && gctx.Err() == nil {
					p.log.Warn("uplift aggregator stopped; it restarts with the next generation", zap.Int32("partition", part), zap.Error(err))
				}
			})
		}
	}
	closeErr := cg.Close()
	wg.Wait()
	taskErrMu.Lock()
	defer taskErrMu.Unlock()
	// What stopped the run first (a fatal task error, the fault deadline),
	// then the errors of tasks that could not flush on the way out.
	var errs []error
	cause := context.Cause(ctx)
	if cause != nil && !errors.Is(cause, context.Canceled) {
		errs = append(errs, cause)
	}
	for _, err := range taskErrs {
		if err != cause {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(append(errs, closeErr)...)
	}
	return nil
}

func (p *Processor) runTask(ctx context.Context, opt taskOptions, writer MessageWriter) error {
	loaded := opt.onLoaded
	opt.onLoaded = func() {
		p.segmentBaseline(opt.partition)
		if loaded != nil {
			loaded()
		}
	}
	t := newTask(&p.cfg, opt, writer)
	p.mu.Lock()
	p.tasks[opt.partition] = t
	p.mu.Unlock()
	err := t.run(ctx, p.client)
	p.mu.Lock()
	delete(p.tasks, opt.partition)
	p.final[opt.partition] = t.progress.snapshot()
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("partition %d: %w", opt.partition, err)
	}
	p.log.Info("task stopped", zap.Int32("partition", opt.partition))
	return nil
}

func ownedPartitions(as map[string][]kafka.PartitionAssignment, inputs []string) []int32 {
	set := map[int32]bool{}
	for _, topic := range inputs {
		for _, a := range as[topic] {
			set[int32(a.ID)] = true
		}
	}
	out := make([]int32, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (p *Processor) setOwned(owned []int32) {
	p.mu.Lock()
	p.owned = owned
	p.mu.Unlock()
	p.cfg.Metrics.Owned(owned)
}

// Owned returns the partition numbers this instance owns now.
func (p *Processor) Owned() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int32(nil), p.owned...)
}

// Progress returns per-partition accounting of running and finished tasks,
// sorted by partition.
func (p *Processor) Progress() []TaskProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[int32]TaskProgress{}
	for k, v := range p.final {
		m[k] = v
	}
	for k, t := range p.tasks {
		m[k] = t.progress.snapshot()
	}
	out := make([]TaskProgress, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// ReplayOptions bound a replay.
type ReplayOptions struct {
	// OutputTopic receives the segment changes (required; never the live topic
	// unless the caller insists).
	OutputTopic string
	// ChurnTopic: "" writes no churn alerts.
	ChurnTopic string
	// DLQTopic receives the replay's dead letters (default OutputTopic+"-dlq",
	// so a replay never duplicates the live dead-letter topic).
	DLQTopic string
	// From/To bound event time (zero: unbounded). Records outside are skipped
	// and counted: windows start cold at From.
	From, To time.Time
	// EmitFrom, when set, warms the windows on the history before it and
	// writes only what happens from it on: segment changes with event_time
	// >= EmitFrom and dead letters of records with event_time >= EmitFrom,
	// byte for byte as a replay without EmitFrom writes them (same seq and
	// event_id). It must not be before From nor at or after To. See
	// emitfrom.go.
	EmitFrom time.Time
	// Partitions to replay; nil = all.
	Partitions []int32
	// Output, when set, receives every output message (segment changes,
	// churn alerts, dead letters) instead of Kafka: what-if replays write
	// nothing to any topic.
	Output MessageWriter
}

// MessageWriter is what a task needs from its output: write and wait for
// acknowledgement (kafka.Writer with acks=all satisfies it). It must keep
// the order of msgs.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Replay processes every partition from the store's checkpoint (or the
// beginning) up to the end offsets taken at its start, then returns. It uses
// no consumer group, so it never disturbs the live group.
func (p *Processor) Replay(ctx context.Context, ro ReplayOptions) error {
	if ro.OutputTopic == "" {
		return errors.New("replay: OutputTopic is required")
	}
	if ro.DLQTopic == "" {
		ro.DLQTopic = ro.OutputTopic + "-dlq"
	}
	if !ro.EmitFrom.IsZero() && (ro.EmitFrom.Before(ro.From) || (!ro.To.IsZero() && !ro.EmitFrom.Before(ro.To))) {
		return fmt.Errorf("replay: EmitFrom %s must be within [From, To)", ro.EmitFrom.UTC().Format(time.RFC3339))
	}
	extra := []string{ro.OutputTopic, ro.DLQTopic}
	o, d, rp, u := replayOutcomeTopics(ro.OutputTopic)
	extra = append(extra, o, u)
	if d = p.dailyTopic(d); d != "" {
		extra = append(extra, d)
	}
	if ro.ChurnTopic != "" {
		extra = append(extra, ro.ChurnTopic)
	}
	if ro.Output != nil {
		extra = nil
	}
	// A replay writes no changelog, so it creates none.
	topics := p.cfg.Topics
	topics.Changelog = topology.ChangelogOff
	if ro.Output == nil {
		// The replay's repartition topic, created as the live one is
		// (retention: topology).
		topics.UpliftRepartition = rp
	}
	var n int
	var err error
	if ro.Output != nil {
		// In memory (what-if): nothing is written to Kafka, so nothing is
		// created; the inputs are checked.
		n, err = p.checkInputs(ctx, topics)
	} else {
		n, err = p.ensureTopics(ctx, topics, extra...)
	}
	if err != nil {
		return err
	}
	parts := ro.Partitions
	if parts == nil {
		for i := 0; i < n; i++ {
			parts = append(parts, int32(i))
		}
	}
	// The state directory must be this replay's (or new): replayid.go.
	if err := claimReplayState(p.cfg.Store, ro.identity(p.cfg.Rules.ID())); err != nil {
		return err
	}
	if err := claimHoldout(p.cfg.Store, p.cfg.Engine.Holdout); err != nil {
		return err
	}
	p.setOwned(parts)
	rt := routes{segments: ro.OutputTopic, churn: ro.ChurnTopic, dlq: ro.DLQTopic}
	if ro.Output == nil { // to Kafka: framed like run's outputs
		rt.outcomes, rt.daily, rt.repartition, rt.uplift = o, d, rp, u
		var err error
		if rt, err = registerOutputs(ctx, p.cfg.Codec, rt); err != nil {
			return err
		}
	}
	var writer MessageWriter = ro.Output
	limits := recordLimits{}.withDefaults() // what-if: sized as for Kafka's defaults
	if writer == nil {
		limits = readRecordLimits(ctx, p.client, rt, "", p.log)
		kw := newWriter(p.cfg.Kafka, p.log, limits.output)
		defer kw.Close()
		writer = kw
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, part := range parts {
		opt := taskOptions{partition: part, bounded: true, routes: rt, limits: limits}
		if !ro.EmitFrom.IsZero() {
			opt.emitFromMs = ro.EmitFrom.UnixMilli()
		}
		if !ro.From.IsZero() {
			opt.fromMs = ro.From.UnixMilli()
		}
		if !ro.To.IsZero() {
			opt.toMs = ro.To.UnixMilli()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.runTask(ctx, opt, writer); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	for _, tp := range p.Progress() {
		if !tp.Done {
			return fmt.Errorf("replay: partition %d did not complete", tp.Partition)
		}
	}
	// Every task has written its outcomes: fold them (bounded).
	for _, part := range parts {
		if err := p.runAggregator(ctx, part, rt, writer, true); err != nil {
			return err
		}
	}
	return nil
}

// EnsureTopics checks the input topics are co-partitioned, creates the
// missing topics of the topology's creation plan (Topics.CreatePlan: inputs,
// outputs, extra names as outputs, the compacted changelog) with the inputs'
// partition count and returns that count.
func (p *Processor) EnsureTopics(ctx context.Context, extra ...string) (int, error) {
	return p.ensureTopics(ctx, p.cfg.Topics, extra...)
}

func (p *Processor) ensureTopics(ctx context.Context, t Topics, extra ...string) (int, error) {
	n, err := EnsureTopics(ctx, p.cfg.Kafka, t, p.cfg.Partitions, p.cfg.ReplicationFactor, p.log, extra...)
	if err == nil {
		p.mu.Lock()
		p.partitions = n
		p.mu.Unlock()
	}
	return n, err
}

// checkInputs checks t's input topics (co-partitioned) and returns their
// partition count, creating nothing but a missing input.
func (p *Processor) checkInputs(ctx context.Context, t Topics) (int, error) {
	t = t.WithDefaults(DefaultGroup)
	var plan []topology.NewTopic
	for _, nt := range t.CreatePlan() {
		if nt.Role == topology.RoleInput {
			plan = append(plan, nt)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(p.cfg.Kafka.Brokers...), Timeout: 15 * time.Second, Transport: p.cfg.Kafka.transport()}
	n, err := ensureTopics(ctx, client, p.log, plan, p.cfg.Partitions, max(p.cfg.ReplicationFactor, 1))
	if err == nil {
		p.mu.Lock()
		p.partitions = n
		p.mu.Unlock()
	}
	return n, err
}

// Partitions returns the input partition count (0 before Run/Replay started).
func (p *Processor) Partitions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.partitions
}

// EnsureTopics is Processor.EnsureTopics for tools that have no Processor
// (generate, bench). partitions 0 means "as existing, else 6". An empty
// t.Changelog is the default group's (topology.DefaultChangelog).
func EnsureTopics(ctx context.Context, k Kafka, t Topics, partitions, rf int, log *zap.Logger, extra ...string) (int, error) {
	t = t.WithDefaults(DefaultGroup)
	if k.ClientID == "" {
		k.ClientID = "sirenstream"
	}
	if rf == 0 {
		rf = 1
	}
	if log == nil {
		log = zap.NewNop()
	}
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 15 * time.Second, Transport: k.transport()}
	n, err := ensureTopics(ctx, client, log, t.CreatePlan(extra...), partitions, rf)
	if err != nil && k.SASL != nil && !errors.Is(err, kafka.SASLAuthenticationFailed) {
		// Some brokers answer bad credentials by closing the connection: say
		// what to check, never the credentials themselves.
		err = fmt.Errorf("%w (SASL %s is configured: check the username and password if the broker is up)", err, k.SASL.Name())
	}
	return n, err
}

func ensureTopics(ctx context.Context, client *kafka.Client, log *zap.Logger, plan []topology.NewTopic, want, rf int) (int, error) {
	var meta *kafka.MetadataResponse
	var err error
	for attempt := 0; ; attempt++ {
		meta, err = client.Metadata(ctx, &kafka.MetadataRequest{})
		if err == nil {
			break
		}
		if errors.Is(err, kafka.SASLAuthenticationFailed) {
			// Bad credentials do not heal by retrying.
			return 0, fmt.Errorf("kafka metadata from %s: %w (check the SASL mechanism, username and password)", client.Addr, err)
		}
		if ctx.Err() != nil || attempt >= 10 {
			return 0, fmt.Errorf("kafka metadata from %s: %w", client.Addr, err)
		}
		sleepCtx(ctx, backoff(attempt))
	}
	counts := map[string]int{}
	for _, t := range meta.Topics {
		if t.Error == nil {
			counts[t.Name] = len(t.Partitions)
		}
	}
	n := 0
	var have []string
	for _, nt := range plan {
		if nt.Role != topology.RoleInput {
			continue
		}
		t := nt.Name
		if c, ok := counts[t]; ok {
			have = append(have, fmt.Sprintf("%s=%d", t, c))
			if n == 0 {
				n = c
			} else if c != n {
				return 0, fmt.Errorf("input topics are not co-partitioned (%v): usage, outages, claims and profiles must have the same partition count, keyed by SIREN with the murmur2 partitioner", have)
			}
		}
	}
	if n == 0 {
		n = want
		if n == 0 {
			n = 6
		}
	} else if want != 0 && want != n {
		return 0, fmt.Errorf("configured partitions %d differ from the existing input topics (%v)", want, have)
	}
	var create []kafka.TopicConfig
	for _, nt := range plan {
		if _, ok := counts[nt.Name]; !ok {
			tc := kafka.TopicConfig{Topic: nt.Name, NumPartitions: n, ReplicationFactor: rf}
			for _, c := range nt.Configs {
				tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: c.Name, ConfigValue: c.Value})
			}
			create = append(create, tc)
		}
	}
	for _, nt := range plan {
		if cn, ok := counts[nt.Name]; ok && nt.Role == topology.RoleChangelog && cn != n {
			return 0, fmt.Errorf("changelog topic %s has %d partitions, the inputs %d: it must have one partition per input partition", nt.Name, cn, n)
		}
	}
	if len(create) > 0 {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
		if err != nil {
			return 0, fmt.Errorf("create topics: %w", err)
		}
		for name, e := range resp.Errors {
			if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
				return 0, fmt.Errorf("create topic %s: %w", name, e)
			}
		}
		names := make([]string, 0, len(create))
		for _, c := range create {
			names = append(names, c.Topic)
		}
		log.Info("created topics", zap.Strings("topics", names), zap.Int("partitions", n))
		// Wait until the metadata shows them, so readers find leaders.
		for attempt := 0; attempt < 50; attempt++ {
			m, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
			if err == nil {
				ok := true
				for _, t := range m.Topics {
					if t.Error != nil || len(t.Partitions) != n {
						ok = false
					}
				}
				if ok && len(m.Topics) == len(names) {
					break
				}
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
	return n, nil
}

// dailyTopic is topic, or "" when Config.NoSirenDaily turns siren-daily off.
func (p *Processor) dailyTopic(topic string) string {
	if p.cfg.NoSirenDaily {
		return ""
	}
	return topic
}

// replayOutcomeTopics are a replay's outcome outputs, named after its
// output topic T: T-offer-outcomes, T-siren-daily, T-uplift-repartition and
// T-uplift.
func replayOutcomeTopics(output string) (outcomes, daily, repartition, uplift string) {
	return output + "-offer-outcomes", output + "-siren-daily", output + "-uplift-repartition", output + "-uplift"
}
