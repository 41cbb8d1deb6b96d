package processor

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
)

// Quiet partitions. A partition that receives no record never moves its
// stream time, so its day changes (segments decaying) and its outage timers
// would wait for its next record. The ticker of a run writes a clock tick
// (schemas/tick.avsc) to the ticks topic, partition p, when partition p of
// this instance has consumed everything and its stream time stays more
// than IdleTickLag behind the most advanced partition of the instance; the
// task reads the tick like an input record and moves its stream time to the
// tick's event_time (handler.tick). The tick itself is data: a replay reads
// it at its place in event-time order and gives the live run's output.
//
// Wall-clock time only decides when a tick is written, never its effect.
// A tick is written at most once per IdleTickInterval per partition, at
// the most advanced stream time minus IdleTickLag, and only for a
// partition that has started (a partition with no record at all has no
// SIRENs to decay and no data to place a tick against). Partitions owned
// by other instances are not seen: each instance ticks its own partitions
// against its own most advanced one.

// ticker writes the clock ticks of an instance's quiet partitions.
type ticker struct {
	interval, lag time.Duration
	topic         string
	progress      func() []TaskProgress
	writer        *kafka.Writer
	log           *zap.Logger
	// last is each partition's stream time at the previous look: a
	// partition is idle when it did not move for a whole interval.
	last map[int32]int64
}

// partitionBalancer writes a message to its Partition field (a tick goes to
// the partition it is for).
type partitionBalancer struct{}

func (partitionBalancer) Balance(msg kafka.Message, partitions ...int) int { return msg.Partition }

// run writes ticks until ctx ends.
func (tk *ticker) run(ctx context.Context) {
	t := time.NewTicker(tk.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs := tk.due()
		if len(msgs) == 0 {
			continue
		}
		if err := tk.writer.WriteMessages(ctx, msgs...); err != nil {
			if ctx.Err() == nil {
				tk.log.Warn("clock ticks not written (retried at the next interval)", zap.Error(err))
			}
			continue
		}
		for _, m := range msgs {
			tk.log.Info("clock tick written for a quiet partition", zap.Int("partition", m.Partition),
				zap.Time("stream_time", time.UnixMilli(tickTime(m)).UTC()))
		}
	}
}

// due returns the ticks to write now.
func (tk *ticker) due() []kafka.Message {
	prog := tk.progress()
	var front int64
	for _, tp := range prog {
		front = max(front, tp.StreamTime)
	}
	at := front - tk.lag.Milliseconds()
	var msgs []kafka.Message
	for _, tp := range prog {
		prev, seen := tk.last[tp.Partition]
		tk.last[tp.Partition] = tp.StreamTime
		if !seen || prev != tp.StreamTime || !tp.CaughtUp || !tp.Loaded || tp.StreamTime == 0 || tp.StreamTime >= at {
			continue
		}
		ev := engine.Event{Kind: engine.KindTick, EventTime: at}
		val, err := schemas.AppendEvent(nil, &ev)
		if err != nil {
			continue
		}
		msgs = append(msgs, kafka.Message{Topic: tk.topic, Partition: int(tp.Partition), Value: val, Time: time.UnixMilli(at)})
	}
	return msgs
}

func tickTime(m kafka.Message) int64 { return m.Time.UnixMilli() }
