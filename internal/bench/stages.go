package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/handoff"
	"github.com/sirenstream/sirenstream/internal/merge"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

var debugReaders = os.Getenv("BENCH_DEBUG_READERS") != ""

// offsetRange is [first, end) of one topic-partition.
type offsetRange struct{ first, end int64 }

// listRanges returns the offset ranges of every partition of topics.
func listRanges(ctx context.Context, brokers []string, topics []string, partitions int) (map[string][]offsetRange, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range topics {
		for p := 0; p < partitions; p++ {
			req.Topics[t] = append(req.Topics[t], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[string][]offsetRange{}
	for _, t := range topics {
		out[t] = make([]offsetRange, partitions)
		for _, po := range resp.Topics[t] {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", t, po.Partition, po.Error)
			}
			out[t][po.Partition] = offsetRange{po.FirstOffset, po.LastOffset}
		}
	}
	return out, nil
}

// stageInputs returns what a reading stage needs: the input topics (in
// engine.Kind order), their offset ranges and a codec.
func stageInputs(ctx context.Context, cfg Config, in *Input) ([topology.NumInputs]string, map[string][]offsetRange, *schemas.Codec, error) {
	inputs := in.Topics.Inputs()
	ranges, err := listRanges(ctx, cfg.Brokers, inputs[:], in.Partitions)
	if err != nil {
		return inputs, nil, nil, err
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	return inputs, ranges, codec, err
}

// newReader is a partition reader configured like the processor's
// (processor.ReaderConfig).
func newReader(brokers []string, topic string, partition int) *kafka.Reader {
	var errorf func(string, ...any)
	if debugReaders {
		errorf = func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "reader %s/%d: "+f+"\n", append([]any{topic, partition}, a...)...)
		}
	}
	k := processor.Kafka{Brokers: brokers, ClientID: "sirenstream-bench"}
	return kafka.NewReader(processor.ReaderConfig(k, topic, int32(partition), errorf))
}

// readRange fetches [r.first, r.end) of topic/partition and calls fn for each
// message in offset order.
func readRange(ctx context.Context, brokers []string, topic string, partition int, r offsetRange, fn func(*kafka.Message) error) error {
	if r.end <= r.first {
		return nil
	}
	rd := newReader(brokers, topic, partition)
	defer rd.Close()
	if err := rd.SetOffset(r.first); err != nil {
		return err
	}
	for {
		msg, err := rd.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
		}
		if err := fn(&msg); err != nil {
			return err
		}
		if msg.Offset+1 >= r.end {
			return nil
		}
	}
}

// perRecordFunc gives a reader goroutine of consumeEach (its topic, kind and
// partition) the function it calls per record and the cleanup it runs at
// the end.
type perRecordFunc func(topic string, kind engine.Kind, p int) (func(*kafka.Message) error, func())

// consumeEach starts in g one reader goroutine per partition of each input
// topic, reading its whole range and counting its records into n. With
// perRecord, each goroutine calls it once for its per-record function.
func consumeEach(ctx context.Context, g *errgroup.Group, cfg Config, inputs [topology.NumInputs]string, ranges map[string][]offsetRange, partitions int,
	n *atomic.Int64, perRecord perRecordFunc) {
	for i, topic := range inputs {
		kind := engine.Kind(i)
		for p := 0; p < partitions; p++ {
			g.Go(func() error {
				var fn func(*kafka.Message) error
				if perRecord != nil {
					var done func()
					fn, done = perRecord(topic, kind, p)
					defer done()
				}
				var local int64
				err := readRange(ctx, cfg.Brokers, topic, p, ranges[topic][p], func(msg *kafka.Message) error {
					local++
					if fn != nil {
						return fn(msg)
					}
					return nil
				})
				n.Add(local)
				return err
			})
		}
	}
}

// runConsume is the raw baseline (decode false) or the decode-only stage: one
// reader goroutine per topic-partition, decoding in that goroutine like the
// processor's readers.
func runConsume(ctx context.Context, cfg Config, in *Input, decode bool) (StageResult, error) {
	if !decode {
		return consumeStage(ctx, cfg, in, StageRaw, nil)
	}
	return consumeStage(ctx, cfg, in, StageDecode, func(ctx context.Context, codec *schemas.Codec) perRecordFunc {
		return func(_ string, kind engine.Kind, _ int) (func(*kafka.Message) error, func()) {
			var ev engine.Event
			return func(msg *kafka.Message) error {
				_ = codec.Decode(ctx, kind, msg.Value, &ev) // a bad record costs its decoding, no more
				return nil
			}, func() {}
		}
	})
}

// consumeStage measures one reading stage: the inputs consumed by one reader
// goroutine per topic-partition (consumeEach) with the per-record functions
// perRecord makes from the stage's context and codec (nil: count only).
func consumeStage(ctx context.Context, cfg Config, in *Input, name string, perRecord func(context.Context, *schemas.Codec) perRecordFunc) (StageResult, error) {
	inputs, ranges, codec, err := stageInputs(ctx, cfg, in)
	if err != nil {
		return StageResult{}, err
	}
	var n atomic.Int64
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	g, gctx := errgroup.WithContext(ctx)
	var fn perRecordFunc
	if perRecord != nil {
		fn = perRecord(gctx, codec)
	}
	consumeEach(gctx, g, cfg, inputs, ranges, in.Partitions, &n, fn)
	err = g.Wait()
	return m.stop(name, n.Load()), err
}

// engineItem is one fetched record on its way to the merge.
type engineItem struct {
	msg kafka.Message
	ev  engine.Event
	err error
}

func engineKey(it *engineItem) int64 {
	if it.err != nil {
		return -1 << 63
	}
	return it.ev.EventTime
}

// engineInputs are one partition's rings for merge.Pick: an input with
// nothing buffered is waited for until all its records were merged.
type engineInputs struct {
	rings      [topology.NumInputs]*handoff.Ring[engineItem]
	done, ends [topology.NumInputs]int64 // records merged, records to merge per input
}

func (e *engineInputs) Len() int { return len(e.rings) }
func (e *engineInputs) Head(i int) *engineItem {
	if e.rings[i].Len() == 0 {
		return nil
	}
	return e.rings[i].Front()
}
func (e *engineInputs) Wait(i int) bool { return e.done[i] < e.ends[i] }

func (e *engineInputs) finished() bool {
	for i := range e.done {
		if e.done[i] < e.ends[i] {
			return false
		}
	}
	return true
}

// runEngine is decode + engine with in-memory state: per partition, four
// reader goroutines decode into rings (the processor's hand-off) and one
// task goroutine merges them with the processor's merge (internal/merge)
// into engine.Memory, the engine's in-memory driver (checks, the day change
// in SIREN order, steps); changes are Avro-encoded and dropped.
func runEngine(ctx context.Context, cfg Config, in *Input) (StageResult, error) {
	inputs, ranges, codec, err := stageInputs(ctx, cfg, in)
	if err != nil {
		return StageResult{}, err
	}
	var n, changes atomic.Int64
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	g, gctx := errgroup.WithContext(ctx)
	for p := 0; p < in.Partitions; p++ {
		// The processor's hand-off: each reader decodes into its input's
		// ring, the task merges from the slots in place.
		wake := handoff.NewWakeup()
		ei := &engineInputs{}
		for i, topic := range inputs {
			r := ranges[topic][p]
			ei.ends[i] = r.end - r.first
			ei.rings[i] = handoff.NewRing[engineItem](2048)
			ring := ei.rings[i]
			g.Go(func() error {
				kind := engine.Kind(i)
				return readRange(gctx, cfg.Brokers, topic, p, r, func(msg *kafka.Message) error {
					it := ring.Slot(gctx)
					if it == nil {
						return gctx.Err()
					}
					it.msg = *msg
					it.ev = engine.Event{}
					it.err = codec.Decode(gctx, kind, msg.Value, &it.ev)
					ring.Publish(wake)
					return nil
				})
			})
		}
		g.Go(func() error {
			mem := engine.NewMemory(nil, engine.Config{})
			var buf []byte
			var records, emitted int64
			mem.OnDecision = func(d *engine.Decision) {
				buf = schemas.AppendSegmentChange(buf[:0], d)
				emitted++
			}
			for {
				if best := merge.Pick[engineItem](ei, engineKey); best >= 0 {
					it := ei.rings[best].Front()
					records++
					if it.err == nil {
						_ = mem.Apply(&it.ev, engine.Record{Key: it.msg.Key}) // an error is a dead letter: dropped here
					}
					ei.rings[best].Pop()
					ei.done[best]++
					continue
				}
				if ei.finished() {
					n.Add(records)
					changes.Add(emitted)
					return nil
				}
				wake.Sleeping(true)
				if merge.Pick[engineItem](ei, engineKey) >= 0 {
					wake.Sleeping(false)
					continue
				}
				select {
				case <-wake.C():
				case <-gctx.Done():
					wake.Sleeping(false)
					return gctx.Err()
				}
				wake.Sleeping(false)
			}
		})
	}
	err = g.Wait()
	st := m.stop(StageEngine, n.Load())
	st.Changes = changes.Load()
	return st, err
}

// runFull is processor.Replay over the input topics with a fresh Badger
// directory, outputs (segment changes, churn alerts, DLQ, outcomes,
// siren-daily) written to Kafka. The mark is where its output topics ended
// before it ran (what floor-io writes again).
func runFull(ctx context.Context, cfg Config, in *Input) (StageResult, outputMark, error) {
	dir, err := os.MkdirTemp(cfg.WorkDir, "sirenstream-bench-badger-")
	if err != nil {
		return StageResult{}, nil, err
	}
	defer os.RemoveAll(dir)
	out := topicsFor(cfg.Prefix + "out-")
	ro := processor.ReplayOptions{OutputTopic: out.SegmentChanges, ChurnTopic: out.ChurnAlerts, DLQTopic: out.DLQ}
	k := processor.Kafka{Brokers: cfg.Brokers}
	// Create the output topics before the clock starts.
	outputs := replayOutputTopics(ro, !cfg.NoSirenDaily)
	if _, err := processor.EnsureTopics(ctx, k, in.Topics, in.Partitions, 1, cfg.Logger, outputs...); err != nil {
		return StageResult{}, nil, err
	}
	mark, err := markOutputs(ctx, cfg, outputs, in.Partitions)
	if err != nil {
		return StageResult{}, nil, err
	}
	res, err := replayOnce(ctx, cfg, in.Topics, dir, ro, StageFull)
	return res, mark, err
}

// replayOnce opens the store in dir, runs one Replay, measures it, closes the
// store and adds the Badger figures.
func replayOnce(ctx context.Context, cfg Config, topics processor.Topics, dir string, ro processor.ReplayOptions, name string) (StageResult, error) {
	store, err := processor.OpenStore(state.Options{Dir: dir, Logger: cfg.Logger})
	if err != nil {
		return StageResult{}, err
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return StageResult{}, errors.Join(err, store.Close())
	}
	p, err := processor.New(processor.Config{
		Kafka:  processor.Kafka{Brokers: cfg.Brokers, ClientID: "sirenstream-bench"},
		Topics: topics, Logger: cfg.Logger, Codec: codec, Store: store, NoSirenDaily: cfg.NoSirenDaily,
	})
	if err != nil {
		return StageResult{}, errors.Join(err, store.Close())
	}
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	err = p.Replay(ctx, ro)
	var consumed, changes int64
	for _, tp := range p.Progress() {
		consumed += tp.Consumed
		changes += tp.Changes
	}
	st := m.stop(name, consumed)
	st.Changes = changes
	st.BadgerSizeLSM, st.BadgerSizeVlog = store.Size()
	parts, perr := store.Partitions()
	for _, part := range parts {
		c, cerr := store.Count(part)
		perr = errors.Join(perr, cerr)
		st.StoredSIRENs += c
	}
	err = errors.Join(err, perr, store.Close())
	st.BadgerDiskBytes, _ = diskUsage(dir)
	if st.StoredSIRENs > 0 {
		st.BadgerBytesPerSIREN = float64(st.BadgerDiskBytes) / float64(st.StoredSIRENs)
	}
	return st, err
}
