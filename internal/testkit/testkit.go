// Package testkit holds the helpers of sirenstream's end-to-end tests: a real
// Kafka-protocol broker (kfake) in-process, Avro-encoded producers, topic
// readers and a processor harness. Real parts, no mocks.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// Cluster starts an in-process kfake broker and returns its addresses.
func Cluster(t testing.TB, partitions int, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.GroupMinSessionTimeout(time.Second)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// CreateTopics creates the processor's topics with n partitions.
func CreateTopics(t testing.TB, brokers []string, n int, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := processor.EnsureTopics(ctx, processor.Kafka{Brokers: brokers}, processor.Topics{}, n, 1, nil, extra...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
}

// Encode frames ev with the project's codec (Confluent wire format, fixed id).
func Encode(t testing.TB, ev engine.Event) []byte {
	t.Helper()
	c, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatalf("encode %+v: %v", ev, err)
	}
	return b
}

// TopicOf returns the default input topic of an event kind.
func TopicOf(k engine.Kind) string {
	return topology.Defaults().Input(k)
}

// Msg builds the Kafka message a producer would send for ev.
func Msg(t testing.TB, ev engine.Event) kafka.Message {
	return kafka.Message{Topic: TopicOf(ev.Kind), Key: []byte(ev.SIREN), Value: Encode(t, ev), Time: time.UnixMilli(ev.EventTime)}
}

// Produce writes msgs with murmur2 partitioning and acks=all.
func Produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	w := load.Writer(brokers, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 10000)
		batch := msgs[:n]
		// A topic just created may not be in every metadata answer yet
		// ("topic partition not found"): the messages that failed are
		// sent again, a few times.
		for attempt := 0; ; attempt++ {
			err := w.WriteMessages(ctx, batch...)
			if err == nil {
				break
			}
			if attempt < 5 && errors.Is(err, kafka.UnknownTopicOrPartition) {
				// The whole request refused, not message by message.
				time.Sleep(500 * time.Millisecond)
				continue
			}
			var we kafka.WriteErrors
			if attempt == 5 || !errors.As(err, &we) {
				t.Fatalf("produce: %.2000s", err.Error())
			}
			var failed []kafka.Message
			for i, e := range we {
				if e != nil {
					failed = append(failed, batch[i])
				}
			}
			batch = failed
			time.Sleep(500 * time.Millisecond)
		}
		msgs = msgs[n:]
	}
}

// ReadAll reads a whole topic (up to its end offsets now).
func ReadAll(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	return readAll(t, brokers, nil, topic)
}

// Changes decodes segment-change messages.
func Changes(t testing.TB, msgs []kafka.Message) []*schemas.SegmentChange {
	t.Helper()
	out := make([]*schemas.SegmentChange, 0, len(msgs))
	for _, m := range msgs {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatalf("decode segment change %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		if string(m.Key) != sc.SIREN {
			t.Fatalf("segment change key %q != siren %q", m.Key, sc.SIREN)
		}
		out = append(out, sc)
	}
	return out
}

// Latest returns each SIREN's segment change with the highest seq.
func Latest(changes []*schemas.SegmentChange) map[string]*schemas.SegmentChange {
	m := map[string]*schemas.SegmentChange{}
	for _, c := range changes {
		if cur, ok := m[c.SIREN]; !ok || c.Seq > cur.Seq {
			m[c.SIREN] = c
		}
	}
	return m
}

// Dedup keeps the first message per event_id (the consumer contract), in
// per-SIREN seq order.
func Dedup(changes []*schemas.SegmentChange) []*schemas.SegmentChange {
	seen := map[string]bool{}
	var out []*schemas.SegmentChange
	for _, c := range changes {
		if !seen[c.EventID] {
			seen[c.EventID] = true
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].SIREN != out[j].SIREN {
			return out[i].SIREN < out[j].SIREN
		}
		return out[i].Seq < out[j].Seq
	})
	return out
}

// Harness runs a processor in the background.
type Harness struct {
	P      *processor.Processor
	Store  *state.Store
	cancel context.CancelFunc
	errc   chan error
}

// Group is the consumer group of Config: its changelog is
// topology.ChangelogName(Group).
const Group = "sirenstream-test"

// Config returns a processor config for tests with a Badger store in dir.
func Config(t testing.TB, brokers []string, dir string) processor.Config {
	t.Helper()
	store, err := processor.OpenStore(state.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return processor.Config{
		Kafka:          processor.Kafka{Brokers: brokers},
		Group:          Group,
		Logger:         zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Codec:          codec,
		Store:          store,
		CommitInterval: 50 * time.Millisecond,
	}
}

// Start runs cfg's processor (consumer group mode) until Stop.
func Start(t testing.TB, cfg processor.Config) *Harness {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Harness{P: p, Store: cfg.Store, cancel: cancel, errc: make(chan error, 1)}
	go func() { h.errc <- p.Run(ctx) }()
	return h
}

// WaitConsumed polls until the processor consumed total records and every
// owned task is caught up, or fails the test after timeout.
func (h *Harness) WaitConsumed(t testing.TB, total int64, partitions int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var consumed int64
		caught := 0
		prog := h.P.Progress()
		for _, tp := range prog {
			consumed += tp.Consumed
			if tp.CaughtUp {
				caught++
			}
		}
		if consumed >= total && caught == len(prog) && len(prog) == partitions {
			return
		}
		select {
		case err := <-h.errc:
			t.Fatalf("processor stopped early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeout: consumed %d of %d records; progress %+v", consumed, total, prog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop cancels the processor and waits for its clean shutdown; it closes
// the store.
func (h *Harness) Stop(t testing.TB) {
	t.Helper()
	h.cancel()
	var err error
	select {
	case err = <-h.errc:
	case <-time.After(60 * time.Second):
		err = errors.New("processor did not stop within 60s")
	}
	if cerr := h.Store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// Sum returns records consumed/processed/dead-lettered across partitions.
func Sum(prog []processor.TaskProgress) (consumed, processed, dead int64) {
	for _, tp := range prog {
		consumed += tp.Consumed
		processed += tp.Processed
		dead += tp.DeadLettered
	}
	return
}
