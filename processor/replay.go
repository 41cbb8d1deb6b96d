package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/topology"
)

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
	o, d, rp, u := ReplayOutcomeTopics(ro.OutputTopic)
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
		kw := newOutputWriter(p.cfg.Kafka, p.log, limits.output)
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

// dailyTopic is topic, or "" when Config.NoSirenDaily turns siren-daily off.
func (p *Processor) dailyTopic(topic string) string {
	if p.cfg.NoSirenDaily {
		return ""
	}
	return topic
}

// ReplayOutcomeTopics are a replay's outcome outputs, named after its
// output topic T: T-offer-outcomes, T-siren-daily, T-uplift-repartition and
// T-uplift.
func ReplayOutcomeTopics(output string) (outcomes, daily, repartition, uplift string) {
	return output + "-offer-outcomes", output + "-siren-daily", output + "-uplift-repartition", output + "-uplift"
}
