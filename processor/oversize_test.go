package processor_test

import (
	"bytes"
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
)

// oversized is the outcome of oversizeRun.
type oversized struct {
	garbage [][]byte            // the garbage values, in offset order
	dlq     []kafka.Message     // dead letters
	changes map[string][]string // segments of each change, per SIREN
	sirens  []string
	prog    []processor.TaskProgress
}

// oversizeRun produces garbage values of the given sizes on the usage
// partition of one SIREN, then valid usage records of eight SIRENs (that one
// included) that make each MULTI_SITE, runs the processor until everything
// is consumed, and returns what it wrote. dlqMaxBytes > 0 creates the DLQ
// topic with that max.message.bytes first.
func oversizeRun(t *testing.T, dlqMaxBytes int, sizes ...int) oversized {
	t.Helper()
	const parts = 2
	T := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	const h = int64(time.Hour / time.Millisecond)
	_, brokers := testkit.Cluster(t, parts)
	if dlqMaxBytes > 0 {
		client, done := testkit.Client(brokers)
		defer done()
		resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: "sirenstream-dlq", NumPartitions: parts, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(dlqMaxBytes)}},
		}}})
		if err == nil {
			err = resp.Errors["sirenstream-dlq"]
		}
		if err != nil {
			t.Fatalf("create the DLQ topic: %v", err)
		}
	}
	testkit.CreateTopics(t, brokers, parts)

	var out oversized
	for i := range 8 {
		out.sirens = append(out.sirens, gen.SIREN(201+i))
	}
	bad := out.sirens[0]
	for _, n := range sizes {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(i*7 + i>>8) // not a Confluent header: bad_magic
		}
		v[0] = 0x5a
		out.garbage = append(out.garbage, v)
		// One record per produce request: each is alone in its batch, as
		// a producer sends a record near the limit.
		testkit.Produce(t, brokers, kafka.Message{Topic: "usage", Key: []byte(bad), Value: v, Time: time.UnixMilli(T)})
	}
	var valid []kafka.Message
	for i, s := range out.sirens {
		for j, postal := range []string{"75001", "13001"} {
			valid = append(valid, testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: "u" + strconv.Itoa(i) + "-" + postal,
				SIREN: s, EventTime: T + int64(j)*h, SiteID: "site-" + postal, PostalCode: postal, BytesUp: 1, BytesDown: 1}))
		}
	}
	testkit.Produce(t, brokers, valid...)

	hs := testkit.Start(t, testkit.Config(t, brokers, t.TempDir()))
	hs.WaitConsumed(t, int64(len(sizes)+len(valid)), parts, 90*time.Second)
	out.prog = hs.P.Progress()
	hs.Stop(t)

	out.dlq = testkit.ReadAll(t, brokers, "sirenstream-dlq")
	out.changes = map[string][]string{}
	for _, c := range testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")) {
		out.changes[c.SIREN] = append(out.changes[c.SIREN], c.Segments...)
	}
	return out
}

// check asserts what every oversize run must show: the valid records after
// the garbage produced their changes, every garbage record has one dead
// letter, and consumed = processed + dead-lettered per partition.
func (o oversized) check(t *testing.T) {
	t.Helper()
	for _, s := range o.sirens {
		if !reflect.DeepEqual(o.changes[s], []string{"MULTI_SITE"}) {
			t.Errorf("%s: segment changes %v, want one MULTI_SITE (valid records after the garbage must flow)", s, o.changes[s])
		}
	}
	if len(o.dlq) != len(o.garbage) {
		t.Fatalf("%d dead letters, want %d", len(o.dlq), len(o.garbage))
	}
	var consumed, processed, dead int64
	for _, tp := range o.prog {
		if tp.Consumed != tp.Processed+tp.DeadLettered {
			t.Errorf("partition %d: consumed %d != processed %d + dead-lettered %d", tp.Partition, tp.Consumed, tp.Processed, tp.DeadLettered)
		}
		consumed, processed, dead = consumed+tp.Consumed, processed+tp.Processed, dead+tp.DeadLettered
	}
	if want := int64(len(o.garbage)); dead != want || processed != int64(2*len(o.sirens)) || consumed != processed+dead {
		t.Errorf("consumed %d processed %d dead-lettered %d; want %d = %d + %d", consumed, processed, dead, processed+want, 2*len(o.sirens), want)
	}
	for i, m := range o.dlq {
		hd := testkit.Headers(m)
		if hd["error"] != "bad_magic" || hd["source.topic"] != "usage" || hd["source.offset"] != strconv.Itoa(i) || string(m.Key) != o.sirens[0] {
			t.Errorf("dead letter %d: key %q headers %v", i, m.Key, hd)
		}
	}
}

// deadLetterCut reports whether m carries a cut copy of value, with the
// headers saying so; it fails the test if the copy is neither whole nor
// cut as documented.
func deadLetterCut(t *testing.T, m kafka.Message, value []byte) bool {
	t.Helper()
	hd := testkit.Headers(m)
	if bytes.Equal(m.Value, value) {
		if hd["value.truncated"] != "" || hd["value.size"] != "" {
			t.Errorf("whole dead letter with truncation headers %q %q", hd["value.truncated"], hd["value.size"])
		}
		return false
	}
	if !bytes.HasPrefix(value, m.Value) || len(m.Value) == 0 {
		t.Errorf("dead letter value (%d bytes) is not a prefix of the record's (%d bytes)", len(m.Value), len(value))
	}
	if hd["value.truncated"] != "true" || hd["value.size"] != strconv.Itoa(len(value)) {
		t.Errorf("cut dead letter: value.truncated %q value.size %q, want true and %d", hd["value.truncated"], hd["value.size"], len(value))
	}
	return true
}

// TestOversizedRecordNeverStopsItsPartition (issue 20, part 2): a
// 1,040,005-byte garbage value, which the broker accepts, is dead-lettered
// whole (its copy with headers fits max.message.bytes; the writer used to
// refuse it, forever); one at the broker's limit is dead-lettered cut to
// fit, with value.truncated and value.size. The valid records after them
// produce their segment changes.
func TestOversizedRecordNeverStopsItsPartition(t *testing.T) {
	o := oversizeRun(t, 0, 1_040_005, 1_048_400)
	o.check(t)
	if len(o.dlq) != 2 {
		return
	}
	if deadLetterCut(t, o.dlq[0], o.garbage[0]) {
		t.Errorf("the 1,040,005-byte record was cut to %d bytes: its dead letter fits whole", len(o.dlq[0].Value))
	}
	if !deadLetterCut(t, o.dlq[1], o.garbage[1]) {
		t.Errorf("the record at the broker's limit was dead-lettered whole: its copy with headers cannot fit")
	}
	t.Logf("dead letter values: %d bytes (of %d), %d bytes (of %d)", len(o.dlq[0].Value), len(o.garbage[0]), len(o.dlq[1].Value), len(o.garbage[1]))
}

// TestDeadLetterCutFollowsTheDLQTopicConfig: with max.message.bytes = 500000
// on the DLQ topic (read at start), the 1,040,005-byte record's dead letter
// is cut to fit it, and the partition flows on.
func TestDeadLetterCutFollowsTheDLQTopicConfig(t *testing.T) {
	const limit = 500_000
	o := oversizeRun(t, limit, 1_040_005)
	o.check(t)
	if len(o.dlq) != 1 {
		return
	}
	if !deadLetterCut(t, o.dlq[0], o.garbage[0]) {
		t.Fatal("dead letter not cut")
	}
	if n := len(o.dlq[0].Value); n >= limit || n < limit-2000 {
		t.Errorf("dead letter value %d bytes: want it cut to just under the topic's %d bytes", n, limit)
	}
}
