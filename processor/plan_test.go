package processor

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// TestInterruptedLiveBatchReEmitsIdenticalBytes: live arrival decided the
// merge order (an outage produced after two usage records, with an earlier
// event time, is processed after them). The batch's outputs are written, then
// the commit fails before its Badger transaction — a crash at the worst
// moment. The restart finds all input present, where the event-time merge
// alone would order the outage first and emit a different seq 1; the stored
// merge plan makes it re-emit the same event_id with the same bytes.
func TestInterruptedLiveBatchReEmitsIdenticalBytes(t *testing.T) {
	brokers, codec := testBroker(t)
	ctx := context.Background()
	const siren = "732829320"
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli()
	msg := func(topic string, ev engine.Event) kafka.Message {
		b, err := codec.EncodeEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Topic: topic, Key: []byte(siren), Value: b, Time: time.UnixMilli(ev.EventTime)}
	}
	produce := func(ms ...kafka.Message) {
		w := load.Writer(brokers, nil)
		defer w.Close()
		if err := w.WriteMessages(ctx, ms...); err != nil {
			t.Fatal(err)
		}
	}
	hour := int64(time.Hour / time.Millisecond)
	dir := t.TempDir()

	newCfg := func(interval time.Duration, hook func(int32) error) (Config, *state.Store) {
		store, err := OpenStore(state.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return Config{
			Kafka: Kafka{Brokers: brokers}, Group: "plan", Codec: codec, Store: store,
			// Without the changelog the restart must re-process the batch
			// (with it, the batch's checkpoint record would be restored).
			Topics:         Topics{Changelog: "-"},
			Logger:         zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			CommitInterval: interval, CommitRecords: 1 << 20,
			beforeStateCommit: hook,
		}, store
	}
	consumed := func(p *Processor) int64 {
		var n int64
		for _, tp := range p.Progress() {
			n += tp.Consumed
		}
		return n
	}
	waitConsumed := func(p *Processor, n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for consumed(p) < n {
			if time.Now().After(deadline) {
				t.Fatalf("consumed %d of %d", consumed(p), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Run 1: commits only at shutdown, and that commit "crashes" after the
	// outputs are written.
	crash := errors.New("simulated crash before the state transaction")
	cfg, store := newCfg(time.Hour, func(int32) error { return crash })
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(runCtx) }()
	produce(
		msg("usage", engine.Event{Kind: engine.KindUsage, EventID: "u1", SIREN: siren, EventTime: t0, SiteID: "a", PostalCode: "75001", BytesUp: 1, BytesDown: 1}),
		msg("usage", engine.Event{Kind: engine.KindUsage, EventID: "u2", SIREN: siren, EventTime: t0 + 2*hour, SiteID: "b", PostalCode: "69001", BytesUp: 1, BytesDown: 1}),
	)
	waitConsumed(p, 2)
	// Arrives later, happened earlier: live order differs from event order.
	produce(msg("outages", engine.Event{Kind: engine.KindOutage, EventID: "o1", SIREN: siren, EventTime: t0 + hour, OutageID: "x", SiteID: "a", PostalCode: "75001", Status: engine.OutageStarted}))
	waitConsumed(p, 3)
	cancel()
	if err := <-errc; !errors.Is(err, crash) {
		t.Fatalf("run 1 should fail with the simulated crash, got %v", err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	// The shutdown flush retries a failed batch once, so the change may be
	// written more than once already: every copy must carry the same bytes.
	first := readTopic(t, brokers, "segment-changes")
	if len(first) == 0 {
		t.Fatal("run 1 wrote no segment change before crashing")
	}

	// Run 2: all input is present now; the plan must win over event time.
	cfg, store = newCfg(50*time.Millisecond, nil)
	p, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel = context.WithCancel(ctx)
	go func() { errc <- p.Run(runCtx) }()
	waitConsumed(p, 3)
	deadline := time.Now().Add(30 * time.Second)
	var all []kafka.Message
	for time.Now().Before(deadline) {
		if all = readTopic(t, brokers, "segment-changes"); len(all) > len(first) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if len(all) != len(first)+1 {
		t.Fatalf("want the interrupted change re-emitted once by run 2, got %d records after %d", len(all), len(first))
	}
	for _, m := range all[1:] {
		if !bytes.Equal(all[0].Value, m.Value) {
			a, _ := schemas.DecodeSegmentChange(all[0].Value)
			b, _ := schemas.DecodeSegmentChange(m.Value)
			t.Fatalf("re-emitted segment change differs from the first copy:\nfirst  %+v\nagain  %+v", a, b)
		}
	}
}

func readTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := load.ReadAll(ctx, brokers, nil, nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestSpilledReplayBatchReEmitsIdenticalBytes: a replay whose batches write
// their outputs ahead of their commit every 4 outputs (committer.spill)
// crashes before the state transaction of a batch that spilled. The next
// replay, from the same state directory, writes exactly the outputs written
// since the last durable commit again, byte for byte and in the same order:
// segment changes and dead letters (an in-memory replay writes no
// siren-daily). One partition: the order of the outputs is the task's.
func TestSpilledReplayBatchReEmitsIdenticalBytes(t *testing.T) {
	brokers, codec := testBroker(t)
	ctx := context.Background()
	var in []kafka.Message
	if err := gen.Generate(gen.Config{SIRENs: 100, Days: 60, Seed: 9, BadRate: 0.01}, func(r *gen.Record) error {
		v, err := codec.EncodeEvent(nil, &r.Event)
		if err != nil {
			v = []byte("not avro") // a bad record the encoder refuses: dead-lettered all the same
		}
		in = append(in, kafka.Message{Topic: r.Topic, Key: []byte(r.Event.SIREN), Value: v, Time: time.UnixMilli(r.Event.EventTime)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w := load.Writer(brokers, nil)
	if err := w.WriteMessages(ctx, in...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	dir := t.TempDir()
	crash := errors.New("simulated crash before the state transaction")
	replay := func(out *memWriter, hook func(int32) error) error {
		store, err := OpenStore(state.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		p, err := New(Config{
			Kafka: Kafka{Brokers: brokers}, Codec: codec, Store: store, Topics: Topics{Changelog: "-"},
			Logger:         zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
			CommitInterval: time.Hour, CatchUpCommitInterval: time.Hour,
			CommitRecords: 1 << 20, CatchUpCommitRecords: 1 << 20,
			beforeStateCommit: hook, spillOutputs: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p.Replay(ctx, ReplayOptions{OutputTopic: "out", Output: out})
	}
	first := &memWriter{}
	// The first commits succeed; the first one after 100 outputs crashes (on
	// this data: the last, whose batch spans the 50 last days).
	// The hook runs once its batch's outputs are all written.
	var durable, crashAt, writesAtDurable, writesAtCrash int
	err := replay(first, func(int32) error {
		writes, msgs := first.snapshot()
		if len(msgs) < 100 {
			durable, writesAtDurable = len(msgs), writes
			return nil
		}
		crashAt, writesAtCrash = len(msgs), writes
		return crash
	})
	if !errors.Is(err, crash) {
		t.Fatalf("replay 1 should fail with the simulated crash, got %v", err)
	}
	_, out1 := first.snapshot()
	if crashAt-durable < 48 || writesAtCrash-writesAtDurable < 3 {
		t.Fatalf("the crashed batch wrote %d outputs in %d writes: it did not spill", crashAt-durable, writesAtCrash-writesAtDurable)
	}
	second := &memWriter{}
	if err := replay(second, nil); err != nil {
		t.Fatal(err)
	}
	_, out2 := second.snapshot()
	want := out1[durable:crashAt]
	if len(out2) < len(want) {
		t.Fatalf("replay 2 wrote %d outputs, replay 1 %d since its last commit", len(out2), len(want))
	}
	topics := map[string]int{}
	for i, a := range want {
		b := out2[i]
		if a.Topic != b.Topic || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) {
			t.Fatalf("output %d since the last commit differs: %s/%s then %s/%s", i, a.Topic, a.Key, b.Topic, b.Key)
		}
		topics[a.Topic]++
	}
	if len(topics) < 2 {
		t.Fatalf("outputs re-emitted only on %v: want segment changes and dead letters", topics)
	}
}

// testBroker starts a one-partition kfake broker for the test, with the
// processor's default topics, and returns its address and a codec.
func testBroker(t *testing.T) ([]string, *schemas.Codec) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	if _, err := EnsureTopics(context.Background(), Kafka{Brokers: brokers}, Topics{}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return brokers, codec
}
