package processor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/uplift"
	"github.com/sirenstream/sirenstream/schemas"
)

// The uplift aggregator (design.md "Global aggregates go through Kafka",
// a Kafka Streams groupBy(offer).aggregate()): every task writes each
// closed outcome to the uplift repartition topic keyed by offer; the owner
// of partition p of the inputs also owns partition p of that topic and
// folds it into counts per (rules version, holdout, offer), which are global
// because all outcomes of an offer land in one partition. Each time it has
// caught up with the topic it writes the rows that changed to the uplift
// topic (key = offer) and publishes them to GET /v1/uplift.
//
// Its state is a fold of the repartition topic, which is its log: a task
// (re)starting reads its partition from the beginning and rebuilds the
// counts before writing anything. Records a restarted source task writes
// again (at-least-once) are dropped by position: per source partition,
// outcomes are written in strictly increasing (sweep day, SIREN, index).

// upliftKey identifies one uplift row.
type upliftKey struct {
	rules, holdout, offer string
}

type groupCounts struct {
	eligible, converted, churned, revenue int64
}

type upliftCounts struct {
	treatment, control groupCounts
	day                int32 // latest sweep day counted
}

// aggregator is the fold of one repartition partition.
type aggregator struct {
	share  float64 // the configured control share, for the log check
	counts map[upliftKey]*upliftCounts
	last   map[int32]*repartitionRecord // per source partition
	dirty  map[upliftKey]bool
	dups   int64
}

func newAggregator(share float64) *aggregator {
	return &aggregator{share: share, counts: map[upliftKey]*upliftCounts{}, last: map[int32]*repartitionRecord{}, dirty: map[upliftKey]bool{}}
}

// apply folds one repartition value; false when it is a duplicate.
func (a *aggregator) apply(value []byte) (bool, error) {
	var r repartitionRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return false, fmt.Errorf("uplift repartition record: %w", err)
	}
	if prev := a.last[r.Source]; prev != nil && !r.after(prev) {
		a.dups++
		return false, nil
	}
	a.last[r.Source] = &r
	k := upliftKey{rules: r.Rules, holdout: r.Holdout, offer: r.Offer}
	c := a.counts[k]
	if c == nil {
		c = &upliftCounts{}
		a.counts[k] = c
	}
	g := &c.treatment
	if r.Control {
		g = &c.control
	}
	g.eligible++
	if r.Converted {
		g.converted++
		g.revenue += r.MRRDelta
	}
	if r.Churned {
		g.churned++
	}
	c.day = max(c.day, r.Day)
	a.dirty[k] = true
	return true, nil
}

// takeDirty returns the rows changed since the last call, in key order.
func (a *aggregator) takeDirty() []schemas.UpliftRow {
	keys := slices.SortedFunc(maps.Keys(a.dirty), compareKeys)
	clear(a.dirty)
	rows := make([]schemas.UpliftRow, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, upliftRow(k, a.counts[k]))
	}
	return rows
}

func compareKeys(x, y upliftKey) int {
	return cmp.Or(cmp.Compare(x.rules, y.rules), cmp.Compare(x.holdout, y.holdout), cmp.Compare(x.offer, y.offer))
}

// upliftRow computes the figures of one row: lifts are treatment − control
// with Newcombe's 95 % interval (internal/uplift).
func upliftRow(k upliftKey, c *upliftCounts) schemas.UpliftRow {
	t, ctl := c.treatment, c.control
	conv := uplift.Newcombe(uplift.Rate{K: t.converted, N: t.eligible}, uplift.Rate{K: ctl.converted, N: ctl.eligible}, uplift.Z95)
	churn := uplift.Newcombe(uplift.Rate{K: t.churned, N: t.eligible}, uplift.Rate{K: ctl.churned, N: ctl.eligible}, uplift.Z95)
	r := schemas.UpliftRow{
		Day: schemas.Date(int64(c.day) * engine.DayMs), RulesVersion: k.rules, HoldoutID: k.holdout, Offer: k.offer,
		TreatmentEligible: t.eligible, TreatmentConverted: t.converted, TreatmentChurned: t.churned, TreatmentRevenueCents: t.revenue,
		ControlEligible: ctl.eligible, ControlConverted: ctl.converted, ControlChurned: ctl.churned, ControlRevenueCents: ctl.revenue,
		ConversionLift: conv.Lift, ConversionLiftLow: conv.Low, ConversionLiftHigh: conv.High,
		ChurnLift: churn.Lift, ChurnLiftLow: churn.Low, ChurnLiftHigh: churn.High,
	}
	if rel, ok := uplift.Relative(uplift.Rate{K: t.converted, N: t.eligible}, uplift.Rate{K: ctl.converted, N: ctl.eligible}); ok {
		r.RelativeLift = &rel
	}
	if n := t.eligible + ctl.eligible; n > 0 {
		r.ControlShare = float64(ctl.eligible) / float64(n)
	}
	return r
}

// runAggregator folds partition part of the repartition topic of rt and
// writes uplift rows until ctx ends, or, bounded, until the end offset
// taken at its start.
func (p *Processor) runAggregator(ctx context.Context, part int32, rt routes, writer MessageWriter, bounded bool) error {
	if rt.repartition == "" {
		return nil
	}
	log := p.log.With(zap.Int32("partition", part), zap.String("topic", rt.repartition))
	_, last, err := listOffsets(ctx, p.client, []string{rt.repartition}, part)
	if err != nil {
		return err
	}
	end := last[0]
	a := newAggregator(p.cfg.Engine.Holdout.WithDefaults().Share)
	r := kafka.NewReader(ReaderConfig(p.cfg.Kafka, rt.repartition, part, log.Sugar().Debugf))
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return err
	}
	caughtUp := end == 0
	for {
		if bounded && (end == 0 || r.Offset() >= end) {
			return p.flushUplift(ctx, a, rt, writer, log)
		}
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("uplift aggregator %s/%d: %w", rt.repartition, part, err)
		}
		if _, err := a.apply(m.Value); err != nil {
			log.Warn("skipping an unreadable uplift repartition record", zap.Int64("offset", m.Offset), zap.Error(err))
		}
		if m.Offset+1 >= end {
			caughtUp = true
		}
		if !bounded && caughtUp && m.Offset+1 >= m.HighWaterMark {
			if err := p.flushUplift(ctx, a, rt, writer, log); err != nil {
				return err
			}
		}
	}
}

// flushUplift writes the changed rows and publishes them to /v1/uplift.
func (p *Processor) flushUplift(ctx context.Context, a *aggregator, rt routes, writer MessageWriter, log *zap.Logger) error {
	rows := a.takeDirty()
	if len(rows) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(rows))
	p.upliftMu.Lock()
	if p.uplift == nil {
		p.uplift = map[upliftKey]schemas.UpliftRow{}
	}
	for i := range rows {
		r := &rows[i]
		p.uplift[upliftKey{rules: r.RulesVersion, holdout: r.HoldoutID, offer: r.Offer}] = *r
		if rt.uplift != "" {
			msgs = append(msgs, kafka.Message{Topic: rt.uplift, Key: []byte(r.Offer), Value: framed(schemas.AppendUplift(nil, r), rt.upliftID)})
		}
		if n := r.TreatmentEligible + r.ControlEligible; n >= 1000 && abs(r.ControlShare-a.share) > 0.02 {
			log.Warn("uplift: the control share differs from the holdout setting", zap.String("offer", r.Offer),
				zap.Float64("control_share", r.ControlShare), zap.Float64("holdout_share", a.share), zap.Int64("eligible", n))
		}
	}
	p.upliftMu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	return writer.WriteMessages(ctx, msgs...)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// Uplift returns the latest uplift rows this instance aggregated, sorted by
// rules version, holdout and offer (GET /v1/uplift). With several
// instances each serves the offers of the partitions it owns.
func (p *Processor) Uplift() []schemas.UpliftRow {
	p.upliftMu.Lock()
	defer p.upliftMu.Unlock()
	keys := slices.SortedFunc(maps.Keys(p.uplift), compareKeys)
	rows := make([]schemas.UpliftRow, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, p.uplift[k])
	}
	return rows
}
