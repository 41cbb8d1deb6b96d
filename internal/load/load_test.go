package load_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
)

// arrival is one record as the broker appended it, in append order.
type arrival struct {
	topic     string
	partition int32
	timeMs    int64 // the record timestamp: the event time
	request   int   // index of the produce request that carried it
}

// recordArrivals makes the broker report every produced record, in the
// order it appends them: kfake runs control functions and appends in one
// loop, so the order seen here is the order a consumer can see.
func recordArrivals(t *testing.T, c *kfake.Cluster) func() []arrival {
	var (
		mu  sync.Mutex
		out []arrival
		n   int
	)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				for _, ts := range recordTimes(t, p.Records) {
					out = append(out, arrival{topic: tp.Topic, partition: p.Partition, timeMs: ts, request: n})
				}
			}
		}
		n++
		return nil, nil, false // observe only: the broker handles it
	})
	return func() []arrival {
		mu.Lock()
		defer mu.Unlock()
		return append([]arrival(nil), out...)
	}
}

// recordTimes decodes the timestamps of the records of uncompressed record
// batches.
func recordTimes(t *testing.T, b []byte) []int64 {
	var out []int64
	for len(b) > 0 {
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			t.Errorf("record batch: %v", err)
			return out
		}
		if batch.Attributes&7 != 0 {
			t.Errorf("compressed record batch")
			return out
		}
		recs := batch.Records
		for i := int32(0); i < batch.NumRecords; i++ {
			l, n := binary.Varint(recs)
			var r kmsg.Record
			if n <= 0 || int(l)+n > len(recs) || r.ReadFrom(recs[:n+int(l)]) != nil {
				t.Errorf("record %d of a batch does not decode", i)
				return out
			}
			out = append(out, batch.FirstTimestamp+r.TimestampDelta64)
			recs = recs[n+int(l):]
		}
		b = b[12+int(batch.Length):]
	}
	return out
}

// maxLateness returns, over all records, the largest amount by which a
// record arrived behind (in event time) a record appended by an earlier
// request: max over r of (max event time appended before r's request − r's
// event time). Records of one request are appended together; across
// requests the order is the broker's append order.
func maxLateness(arr []arrival) (worst int64, at arrival) {
	var seen, inReq int64 = -1 << 62, -1 << 62 // max before the request; within it
	req := -1
	for _, a := range arr {
		if a.request != req {
			seen, inReq, req = max(seen, inReq), -1<<62, a.request
		}
		if d := seen - a.timeMs; d > worst {
			worst, at = d, a
		}
		inReq = max(inReq, a.timeMs)
	}
	return worst, at
}

func loadTopics(t *testing.T, parts int) (*kfake.Cluster, []string) {
	t.Helper()
	c, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	return c, brokers
}

func produce(t *testing.T, brokers []string, cfg gen.Config, o load.Options) load.Stats {
	t.Helper()
	w := load.Writer(brokers, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := load.ProduceWith(ctx, w, cfg, o)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestInterleavedTopicsArriveWithinTheChunkSpan: by default no record
// reaches the broker after a record more than one chunk span (1 h) ahead
// of it in event time, whatever the topics and partitions, and every
// partition holds its records in event-time order with timestamp = event
// time. A load topic by topic, the negative control, breaks the bound by
// weeks.
func TestInterleavedTopicsArriveWithinTheChunkSpan(t *testing.T) {
	const parts = 3
	cfg := gen.Config{SIRENs: 300, Days: 40, Seed: 3, BadRate: 0.01}
	for _, brokerCount := range []int{1, 3} {
		// One broker takes each chunk in one request; three take a chunk
		// in up to three requests, in any order.
		c, brokers := testkit.Cluster(t, parts, kfake.NumBrokers(brokerCount))
		testkit.CreateTopics(t, brokers, parts)
		arrivals := recordArrivals(t, c)
		st := produce(t, brokers, cfg, load.Options{})
		checkArrivals(t, arrivals(), st)
		checkReadBack(t, brokers, st)
	}

	c, brokers := loadTopics(t, parts)
	arrivals := recordArrivals(t, c)
	produce(t, brokers, cfg, load.Options{ByTopic: true})
	if worst, _ := maxLateness(arrivals()); worst < 7*24*time.Hour.Milliseconds() {
		t.Errorf("topic by topic: worst arrival lateness %s; the check should see weeks", time.Duration(worst)*time.Millisecond)
	}
}

// checkArrivals: every record arrived once, of all four topics, none more
// than the chunk span behind a record already on the broker.
func checkArrivals(t *testing.T, arr []arrival, st load.Stats) {
	t.Helper()
	if int64(len(arr)) != st.Records {
		t.Fatalf("the broker received %d records, ProduceWith reports %d", len(arr), st.Records)
	}
	topics := map[string]bool{}
	requests := 0
	for _, a := range arr {
		topics[a.topic] = true
		requests = max(requests, a.request+1)
	}
	if len(topics) != 4 {
		t.Fatalf("records of %d topics arrived, want 4: %v", len(topics), topics)
	}
	worst, at := maxLateness(arr)
	if span := load.DefaultChunkSpan.Milliseconds(); worst > span {
		t.Errorf("a %s record (%s) arrived %s behind a record already on the broker; the bound is %s",
			at.topic, time.UnixMilli(at.timeMs).UTC(), time.Duration(worst)*time.Millisecond, load.DefaultChunkSpan)
	}
	t.Logf("%d records in %d acknowledged writes, %d produce requests; worst arrival lateness %s (bound %s)",
		st.Records, st.Writes, requests, time.Duration(worst)*time.Millisecond, load.DefaultChunkSpan)
}

// checkReadBack: each partition holds its records in event-time order,
// with the record timestamp = the event time.
func checkReadBack(t *testing.T, brokers []string, st load.Stats) {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for kind := engine.KindProfile; kind <= engine.KindUsage; kind++ {
		topic := testkit.TopicOf(kind)
		last := map[int]int64{}
		for _, m := range testkit.ReadAll(t, brokers, topic) {
			total++
			var ev engine.Event
			if err := codec.Decode(context.Background(), kind, m.Value, &ev); err != nil {
				t.Fatalf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
			}
			if ev.EventTime != m.Time.UnixMilli() {
				t.Fatalf("%s/%d@%d: timestamp %d, event time %d", topic, m.Partition, m.Offset, m.Time.UnixMilli(), ev.EventTime)
			}
			if ms := m.Time.UnixMilli(); ms < last[m.Partition] {
				t.Fatalf("%s/%d@%d: event time %d after %d: partition not in event-time order", topic, m.Partition, m.Offset, ms, last[m.Partition])
			}
			last[m.Partition] = m.Time.UnixMilli()
		}
	}
	if total != st.Records {
		t.Fatalf("read back %d records, produced %d", total, st.Records)
	}
}

// TestByTopicLoadsWholeTopicsOneAfterAnother: usage, then profiles,
// outages, claims, each complete before the next starts, each in
// event-time order; the same records as the interleaved load.
func TestByTopicLoadsWholeTopicsOneAfterAnother(t *testing.T) {
	cfg := gen.Config{SIRENs: 100, Days: 20, Seed: 5}
	c, brokers := loadTopics(t, 2)
	arrivals := recordArrivals(t, c)
	st := produce(t, brokers, cfg, load.Options{ByTopic: true, Limit: 3000})

	order := map[string]int{}
	for i, topic := range load.ByTopicOrder {
		order[topic] = i
	}
	arr := arrivals()
	counts := map[string]int64{}
	byTopic := map[string][]arrival{}
	for i, a := range arr {
		counts[a.topic]++
		byTopic[a.topic] = append(byTopic[a.topic], a)
		if i > 0 && order[a.topic] < order[arr[i-1].topic] {
			t.Fatalf("a %s record arrived after %s records", a.topic, arr[i-1].topic)
		}
	}
	for topic, arr := range byTopic {
		if worst, at := maxLateness(arr); worst > 0 {
			t.Fatalf("%s: a record of %s arrived %d ms behind an earlier one", topic, time.UnixMilli(at.timeMs).UTC(), worst)
		}
	}
	// Limit picks the first records in generation order, whatever the order
	// of writing.
	var want int64
	wantBy := map[string]int64{}
	if err := gen.Generate(cfg, func(r *gen.Record) error {
		if want == 3000 {
			return gen.ErrStop
		}
		want++
		wantBy[r.Topic]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st.Records != want || int64(len(arr)) != want {
		t.Fatalf("%d records produced, %d arrived, want %d", st.Records, len(arr), want)
	}
	for topic, n := range wantBy {
		if counts[topic] != n || st.ByTopic[topic] != n {
			t.Errorf("%s: %d arrived, %d counted, want %d", topic, counts[topic], st.ByTopic[topic], n)
		}
	}
}

// TestRateTricklesRecords: 500 records at 1,000 records/s take at least
// about half a second (only the lower bound: a slow machine may take
// longer), in writes of at most 20 ms worth of records.
func TestRateTricklesRecords(t *testing.T) {
	_, brokers := loadTopics(t, 2)
	start := time.Now()
	st := produce(t, brokers, gen.Config{SIRENs: 200, Days: 10}, load.Options{Rate: 1000, Limit: 500})
	elapsed := time.Since(start)
	if st.Records != 500 {
		t.Fatalf("%d records, want 500", st.Records)
	}
	if elapsed < 400*time.Millisecond {
		t.Fatalf("500 records at --rate 1000 took %s, want ≥ 0.4 s", elapsed)
	}
	if st.Writes < 25 {
		t.Fatalf("%d writes: at 1000/s a write holds at most 20 records", st.Writes)
	}
	t.Logf("500 records at 1000/s: %s, %d writes", elapsed.Round(time.Millisecond), st.Writes)
}

// TestPartitionsFollowTheBroker: existing input topics decide the count;
// else the requested count; else the broker's default for new topics; a
// requested count that differs from existing topics is refused.
func TestPartitionsFollowTheBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inputs := load.ByTopicOrder[:]
	partitions := func(brokers []string, want int) (load.PartitionCount, error) {
		return load.Partitions(ctx, brokers, nil, inputs, want, 1)
	}

	t.Run("broker default when no topic exists", func(t *testing.T) {
		_, brokers := testkit.Cluster(t, 5)
		pc, err := partitions(brokers, 0)
		if err != nil || pc != (load.PartitionCount{N: 5, From: "broker default"}) {
			t.Fatalf("got %+v, %v; want 5 from the broker default", pc, err)
		}
		// And the count stays: the first input topic now exists.
		if pc, err := partitions(brokers, 0); err != nil || pc.N != 5 || pc.From != "existing topics" {
			t.Fatalf("second call: %+v, %v", pc, err)
		}
	})
	t.Run("requested when no topic exists", func(t *testing.T) {
		_, brokers := testkit.Cluster(t, 5)
		if pc, err := partitions(brokers, 7); err != nil || pc != (load.PartitionCount{N: 7, From: "requested"}) {
			t.Fatalf("got %+v, %v; want 7 as requested", pc, err)
		}
	})
	t.Run("existing topics", func(t *testing.T) {
		_, brokers := loadTopics(t, 3)
		for _, want := range []int{0, 3} {
			if pc, err := partitions(brokers, want); err != nil || pc != (load.PartitionCount{N: 3, From: "existing topics"}) {
				t.Fatalf("want %d: got %+v, %v; want the existing 3", want, pc, err)
			}
		}
		_, err := partitions(brokers, 4)
		if !errors.Is(err, load.ErrPartitionMismatch) || !strings.Contains(err.Error(), "requested 4") || !strings.Contains(err.Error(), "usage=3") {
			t.Fatalf("requested 4 on 3-partition topics: %v", err)
		}
	})
	t.Run("not co-partitioned", func(t *testing.T) {
		_, brokers := testkit.Cluster(t, 3)
		client, done := testkit.Client(brokers)
		defer done()
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
			{Topic: gen.TopicUsage, NumPartitions: 2, ReplicationFactor: 1},
			{Topic: gen.TopicClaims, NumPartitions: 3, ReplicationFactor: 1},
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Errors {
			if e != nil {
				t.Fatal(e)
			}
		}
		if _, err := partitions(brokers, 0); err == nil || !strings.Contains(err.Error(), "not co-partitioned") {
			t.Fatalf("usage=2 claims=3: %v", err)
		}
	})
}
