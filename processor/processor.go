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
	writer := newOutputWriter(p.cfg.Kafka, p.log, limits.output)
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
		tw := newWriter(p.cfg.Kafka, p.log, limits.output, smallBatchSize)
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
