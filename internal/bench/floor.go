package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// Floor stages of the warm test: raw consumption of the day's topics plus the
// least a record-at-a-time processor must do per record when its SIREN's
// state is not in memory. They change nothing (reads only) and write no
// output, so they bound from above what the full pipeline can reach on this
// machine with a Badger read per record.
const (
	// StageFloorRead: raw + one Snapshot.Get of the record's state (the
	// state key's look-up, the header key's when the partition has header
	// keys, the value's read and a copy).
	StageFloorRead = "floor-read"
	// StageFloorDecode: StageFloorRead + decoding the state
	// (engine.UnmarshalState).
	StageFloorDecode = "floor-read-decode"
)

// runFloor consumes the rig's day of traffic like runConsume (one reader
// goroutine per topic-partition) and, per record, reads the state of its
// key from the store (a snapshot per goroutine: the store does not change
// meanwhile) and, with decode, decodes it. Every record's SIREN must have a
// state: a missing one is an error (the floor would otherwise measure
// misses, which are cheaper).
func runFloor(ctx context.Context, cfg Config, in *Input, store *state.Store, decode bool) (StageResult, error) {
	name := StageFloorRead
	if decode {
		name = StageFloorDecode
	}
	return consumeStage(ctx, cfg, in, name, func(context.Context, *schemas.Codec) perRecordFunc {
		return func(topic string, _ engine.Kind, p int) (func(*kafka.Message) error, func()) {
			sn := store.Snapshot()
			return func(msg *kafka.Message) error {
				siren := string(msg.Key)
				val, err := sn.Get(int32(p), siren)
				if err != nil {
					return err
				}
				if val == nil {
					return fmt.Errorf("floor: %s/%d offset %d: no state for SIREN %q", topic, p, msg.Offset, siren)
				}
				if decode {
					if _, err := engine.UnmarshalState(siren, val); err != nil {
						return fmt.Errorf("floor: %s/%d offset %d: %w", topic, p, msg.Offset, err)
					}
				}
				return nil
			}, sn.Close
		}
	})
}

// Floor stages that count the output side: the inputs consumed raw while
// the outputs the full stage wrote in the same run are written again, with
// nothing computed in between. Any processor that writes those outputs
// (siren-daily alone is one record per SIREN per day change) does at least
// this much.
const (
	// StageFloorIO: raw consumption of the inputs and, at the same time, the
	// full stage's outputs written again (same keys and values, one writer per
	// partition configured like a task's large-batch writer, writes of
	// floorIOChunk messages).
	StageFloorIO = "floor-io"
	// StageFloorDay (warm test): StageFloorIO plus, at the same time, a scan
	// of every stored state (the value read, not decoded): the least a day
	// change must read to write a siren-daily record per SIREN.
	StageFloorDay = "floor-day"
)

// floorIOChunk is the messages per write: a spill's outputs
// (processor's defaultSpillOutputs).
const floorIOChunk = 8192

// replayOutputTopics are the topics a replay with ro writes (siren-daily
// only when it is on).
func replayOutputTopics(ro processor.ReplayOptions, sirenDaily bool) []string {
	outcomes, daily, repartition, uplift := processor.ReplayOutcomeTopics(ro.OutputTopic)
	ts := []string{ro.OutputTopic, ro.DLQTopic, outcomes, repartition, uplift}
	if sirenDaily {
		ts = append(ts, daily)
	}
	if ro.ChurnTopic != "" {
		ts = append(ts, ro.ChurnTopic)
	}
	return ts
}

// outputMark is the end offset of every partition of a stage's output
// topics, taken before the stage runs.
type outputMark map[string][]offsetRange

func markOutputs(ctx context.Context, cfg Config, topics []string, partitions int) (outputMark, error) {
	return listRanges(ctx, cfg.Brokers, topics, partitions)
}

// loadOutputs reads what was written to the marked topics since the mark,
// grouped by partition (a task's outputs: every output topic is keyed by
// SIREN or written by the task of the same partition), with their sizes.
func loadOutputs(ctx context.Context, cfg Config, mark outputMark, partitions int) ([][]kafka.Message, int64, error) {
	topics := make([]string, 0, len(mark))
	for t := range mark {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	now, err := listRanges(ctx, cfg.Brokers, topics, partitions)
	if err != nil {
		return nil, 0, err
	}
	out := make([][]kafka.Message, partitions)
	var bytes int64
	for _, t := range topics {
		for p := 0; p < partitions; p++ {
			r := offsetRange{first: mark[t][p].end, end: now[t][p].end}
			err := readRange(ctx, cfg.Brokers, t, p, r, func(msg *kafka.Message) error {
				out[p] = append(out[p], kafka.Message{Topic: t, Key: msg.Key, Value: msg.Value, Headers: msg.Headers})
				bytes += int64(len(msg.Key) + len(msg.Value))
				return nil
			})
			if err != nil {
				return nil, 0, err
			}
		}
	}
	return out, bytes, nil
}

// runFloorIO consumes the inputs raw while writing outs again, per
// partition through a writer like a task's (acks=all, murmur2 keys, 2 ms
// linger, batches of 2,048), and, with store, scans every stored state of
// every partition: all at once, so the floor is the most a pipeline could
// overlap (a real one must consume a day before its day change reads the
// states and writes siren-daily).
func runFloorIO(ctx context.Context, cfg Config, in *Input, outs [][]kafka.Message, store *state.Store) (StageResult, error) {
	inputs, ranges, _, err := stageInputs(ctx, cfg, in)
	if err != nil {
		return StageResult{}, err
	}
	name := StageFloorIO
	if store != nil {
		name = StageFloorDay
	}
	var parts []int32
	if store != nil {
		if parts, err = store.Partitions(); err != nil {
			return StageResult{}, err
		}
	}
	k := processor.Kafka{Brokers: cfg.Brokers, ClientID: "sirenstream-bench"}
	writers := make([]*kafka.Writer, len(outs))
	for p := range writers {
		writers[p] = &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Balancer: &kafka.Murmur2Balancer{Consistent: true},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 2048, BatchBytes: 1 << 20,
			Transport: processor.Transport(k)}
	}
	defer func() {
		for _, w := range writers {
			w.Close()
		}
	}()
	var n, scanned atomic.Int64
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	g, gctx := errgroup.WithContext(ctx)
	consumeEach(gctx, g, cfg, inputs, ranges, in.Partitions, &n, nil)
	for p, msgs := range outs {
		g.Go(func() error {
			for len(msgs) > 0 {
				c := min(len(msgs), floorIOChunk)
				if err := writers[p].WriteMessages(gctx, msgs[:c]...); err != nil {
					return fmt.Errorf("floor: write partition %d: %w", p, err)
				}
				msgs = msgs[c:]
			}
			return nil
		})
	}
	for _, p := range parts {
		g.Go(func() error {
			var local int64
			err := store.Scan(p, func(string, []byte) error {
				local++
				return gctx.Err()
			})
			scanned.Add(local)
			return err
		})
	}
	err = g.Wait()
	st := m.stop(name, n.Load())
	st.Outputs = int64(countMessages(outs))
	if err == nil && store != nil && scanned.Load() == 0 {
		err = errors.New("floor: the store holds no state to scan")
	}
	return st, err
}

func countMessages(outs [][]kafka.Message) int {
	n := 0
	for _, o := range outs {
		n += len(o)
	}
	return n
}
