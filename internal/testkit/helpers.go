package testkit

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// InputTopics are the processor's default input topics, in engine.Kind order.
var InputTopics = defaultInputs()

func defaultInputs() []string {
	inputs := topology.Defaults().Inputs()
	return inputs[:]
}

// Generated returns the messages a producer would send for gen's history
// under cfg, in generation order.
func Generated(t testing.TB, cfg gen.Config) []kafka.Message {
	t.Helper()
	var all []kafka.Message
	if err := gen.Generate(cfg, func(r *gen.Record) error {
		all = append(all, Msg(t, r.Event))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// Loaded starts a cluster with the processor's topics in parts partitions
// and produces gen's history under cfg to it; it returns the brokers and
// the messages produced.
func Loaded(t testing.TB, parts int, cfg gen.Config) ([]string, []kafka.Message) {
	t.Helper()
	_, brokers := Cluster(t, parts)
	CreateTopics(t, brokers, parts)
	msgs := Generated(t, cfg)
	Produce(t, brokers, msgs...)
	return brokers, msgs
}

// ReadAllFresh is ReadAll with a fresh transport: kafka-go's default
// transport caches metadata for 6 s, so a topic just created (by a replay,
// by another process) would look missing.
func ReadAllFresh(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	return readAll(t, brokers, tr, topic)
}

func readAll(t testing.TB, brokers []string, tr *kafka.Transport, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := load.ReadAll(ctx, brokers, tr, nil, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

// Client returns a Kafka client with a fresh transport (no cached
// metadata) and the function that closes its connections.
func Client(brokers []string) (*kafka.Client, func()) {
	tr := &kafka.Transport{}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}, tr.CloseIdleConnections
}

// EndOffsets returns the end offsets of topics' partitions 0..parts-1,
// keyed "topic/partition"; it fails the test on any error.
func EndOffsets(t testing.TB, brokers, topics []string, parts int) map[string]int64 {
	t.Helper()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range topics {
		for p := 0; p < parts; p++ {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	return listEnds(t, brokers, req)
}

// AllEndOffsets returns the end offsets of every partition of every topic
// in the cluster, keyed "topic/partition".
func AllEndOffsets(t testing.TB, brokers []string) map[string]int64 {
	t.Helper()
	client, done := Client(brokers)
	defer done()
	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			req.Topics[tp.Name] = append(req.Topics[tp.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	return listEnds(t, brokers, req)
}

func listEnds(t testing.TB, brokers []string, req *kafka.ListOffsetsRequest) map[string]int64 {
	t.Helper()
	client, done := Client(brokers)
	defer done()
	resp, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for topic, ps := range resp.Topics {
		for _, po := range ps {
			if po.Error != nil {
				t.Fatalf("%s/%d: %v", topic, po.Partition, po.Error)
			}
			out[fmt.Sprintf("%s/%d", topic, po.Partition)] = po.LastOffset
		}
	}
	return out
}

// GroupOffsets returns a consumer group's committed offsets of the input
// topics' partitions 0..parts-1, keyed "topic/partition".
func GroupOffsets(brokers []string, group string, parts int) (map[string]int64, error) {
	client, done := Client(brokers)
	defer done()
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, topic := range InputTopics {
		for p := 0; p < parts; p++ {
			req.Topics[topic] = append(req.Topics[topic], p)
		}
	}
	resp, err := client.OffsetFetch(context.Background(), req)
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for topic, ps := range resp.Topics {
		for _, po := range ps {
			out[fmt.Sprintf("%s/%d", topic, po.Partition)] = po.CommittedOffset
		}
	}
	return out, nil
}

// DiffMessage compares key, value and headers ("" when equal).
func DiffMessage(a, b kafka.Message) string {
	if !bytes.Equal(a.Key, b.Key) {
		return fmt.Sprintf("key %q vs %q", a.Key, b.Key)
	}
	if !bytes.Equal(a.Value, b.Value) {
		return fmt.Sprintf("value of %q differs", a.Key)
	}
	if len(a.Headers) != len(b.Headers) {
		return fmt.Sprintf("%d vs %d headers", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return fmt.Sprintf("header %s=%q vs %s=%q", a.Headers[i].Key, a.Headers[i].Value, b.Headers[i].Key, b.Headers[i].Value)
		}
	}
	return ""
}

// Headers returns a message's headers as a map.
func Headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// DLQKey identifies a dead letter by its error and source coordinates.
func DLQKey(m kafka.Message) string {
	hd := Headers(m)
	return fmt.Sprintf("%s %s/%s@%s", hd["error"], hd["source.topic"], hd["source.partition"], hd["source.offset"])
}

// Collector is a MessageWriter that keeps copies of what it is given.
type Collector struct {
	mu   sync.Mutex
	Msgs []kafka.Message
}

func (c *Collector) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		m.Key = bytes.Clone(m.Key)
		m.Value = bytes.Clone(m.Value)
		m.Headers = append([]kafka.Header(nil), m.Headers...)
		c.Msgs = append(c.Msgs, m)
	}
	return nil
}

// ReplayToMemory replays the cluster's inputs from scratch with a fresh
// store into opts.Output's place, a Collector, and returns the processor
// (for its Progress) and what it wrote.
func ReplayToMemory(t testing.TB, brokers []string, opts processor.ReplayOptions) (*processor.Processor, []kafka.Message) {
	t.Helper()
	cfg := Config(t, brokers, t.TempDir())
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out Collector
	opts.Output = &out
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Replay(ctx, opts); err != nil {
		t.Fatalf("replay to memory: %v", err)
	}
	if err := cfg.Store.Close(); err != nil {
		t.Fatal(err)
	}
	return p, out.Msgs
}

// DumpState opens a cleanly closed state directory read-only and prints
// every partition's checkpoint (input offsets, meta) and SIREN states. The
// offset of changelog, the state's changelog topic, is left out: it is a
// position in the processor's own log, not input progress (a run that
// restarted wrote more changelog records than one that did not). A
// partition without a checkpoint or without SIREN state fails the test.
func DumpState(t testing.TB, dir string, parts int, changelog string) string {
	t.Helper()
	st, err := processor.OpenStore(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s read-only: %v", dir, err)
	}
	defer st.Close()
	var b bytes.Buffer
	for p := int32(0); p < int32(parts); p++ {
		cp, ok, err := st.Checkpoint(p)
		if err != nil || !ok {
			t.Fatalf("%s: checkpoint of partition %d: ok=%v err=%v", dir, p, ok, err)
		}
		topics := make([]string, 0, len(cp.Offsets))
		for k := range cp.Offsets {
			if k != changelog {
				topics = append(topics, k)
			}
		}
		sort.Strings(topics)
		for _, k := range topics {
			fmt.Fprintf(&b, "p%d %s=%d\n", p, k, cp.Offsets[k])
		}
		fmt.Fprintf(&b, "p%d meta %x\n", p, cp.Meta)
		n := 0
		if err := st.Scan(p, func(siren string, val []byte) error {
			n++
			fmt.Fprintf(&b, "%s %x\n", siren, val)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("%s: partition %d has no SIREN state", dir, p)
		}
	}
	return b.String()
}

// LockedBuffer is a bytes.Buffer safe for concurrent writers and readers
// (a child process's output copied by os/exec, zap logging from several
// goroutines).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Poll calls cond every interval until it reports done, and returns false
// with cond's last reason if timeout passes first. cond may fail the test
// itself (a process that exited, say).
func Poll(timeout, interval time.Duration, cond func() (done bool, why string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		done, why := cond()
		if done {
			return true, ""
		}
		if time.Now().After(deadline) {
			return false, why
		}
		time.Sleep(interval)
	}
}
