package processor

// Every write is sized against the broker's max.message.bytes: dead letters
// are cut to fit, segment changes are bounded by design, a state record too
// large for the changelog and a record the broker refuses for its size fail
// at once instead of being retried forever. The topic-config reading runs
// against the embedded broker.

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
)

func headerMap(m *kafka.Message) map[string]string {
	hd := map[string]string{}
	for _, h := range m.Headers {
		hd[h.Key] = string(h.Value)
	}
	return hd
}

// TestDeadLetterIsCutToTheDLQLimit: a dead letter whose copy would exceed
// the output budget keeps every header and a prefix of its value (then of
// its key) with headers giving the original sizes; one that fits is copied
// whole, without them.
func TestDeadLetterIsCutToTheDLQLimit(t *testing.T) {
	const limit = 600_000
	maxBytes := budget(limit)
	garbage := func(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }
	for _, tc := range []struct {
		name             string
		key, value       []byte
		cutValue, cutKey bool
	}{
		{"small record: whole", []byte("552100554"), garbage(1000), false, false},
		{"just fits: whole", []byte("552100554"), garbage(maxBytes - 1000), false, false},
		{"1,040,005-byte value: value cut", []byte("552100554"), garbage(1_040_005), true, false},
		{"huge key and value: both cut", garbage(700_000), garbage(300_000), true, true},
		{"tombstone with a huge key: key cut", garbage(1_000_000), nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &committer{}
			c := &collector{routes: routes{dlq: "dlq"}, partition: 3, batch: b, maxBytes: maxBytes}
			in := &kafka.Message{Key: tc.key, Value: tc.value, Offset: 42}
			c.deadLetter("usage", in, "bad_magic", errors.New(strings.Repeat("detail ", 200)))
			if len(b.outputs) != 1 {
				t.Fatalf("%d outputs, want 1 dead letter", len(b.outputs))
			}
			m := &b.outputs[0]
			if n := recordBytes(m); n > maxBytes {
				t.Errorf("dead letter takes %d bytes, budget %d", n, maxBytes)
			}
			hd := headerMap(m)
			for k, want := range map[string]string{"error": "bad_magic", "source.topic": "usage", "source.partition": "3", "source.offset": "42"} {
				if hd[k] != want {
					t.Errorf("header %s = %q, want %q", k, hd[k], want)
				}
			}
			if !strings.HasSuffix(hd["error.detail"], "…(truncated)") {
				t.Errorf("error.detail not capped: %d bytes", len(hd["error.detail"]))
			}
			check := func(what string, got, orig []byte, cut bool, truncated, size string) {
				t.Helper()
				if !bytes.HasPrefix(orig, got) {
					t.Errorf("%s is not a prefix of the record's", what)
				}
				if !cut {
					if len(got) != len(orig) || hd[truncated] != "" || hd[size] != "" {
						t.Errorf("%s: %d of %d bytes, headers %q %q: want it whole, no headers", what, len(got), len(orig), hd[truncated], hd[size])
					}
					return
				}
				if hd[truncated] != "true" || hd[size] != strconv.Itoa(len(orig)) {
					t.Errorf("%s cut: headers %s=%q %s=%q, want true and %d", what, truncated, hd[truncated], size, hd[size], len(orig))
				}
				if len(got) >= len(orig) {
					t.Errorf("%s: %d bytes, not cut", what, len(got))
				}
			}
			check("value", m.Value, tc.value, tc.cutValue, hdrValueTruncated, hdrValueSize)
			check("key", m.Key, tc.key, tc.cutKey, hdrKeyTruncated, hdrKeySize)
			if tc.cutValue && !tc.cutKey && recordBytes(m) < maxBytes-16 {
				t.Errorf("value cut more than needed: %d bytes of %d", recordBytes(m), maxBytes)
			}
		})
	}
}

// TestLargestSegmentChangeIsFarBelowTheLimit: a segment change is bounded by
// design (every segment in every set, every reason metric for every
// segment, every offer in every offer list, the largest numbers, a 256-byte
// rules version, the longest topic name); it encodes in a few kilobytes,
// far below any max.message.bytes, so it needs no cutting.
func TestLargestSegmentChangeIsFarBelowTheLimit(t *testing.T) {
	all := engine.ChurnRisk | engine.DataHungry | engine.HiddenGrowth | engine.MultiSite | engine.RecoveryExposed | engine.SLASensitive
	d := &engine.Decision{
		EventID: "552100554-9223372036854775807", SIREN: "552100554", Seq: 1<<63 - 1, EventTime: 1<<63 - 1,
		Segments: all, Previous: all, Added: all, Removed: all,
		Metrics: engine.Metrics{
			Traffic30dBytes: 1<<63 - 1, TrafficPrev30dBytes: 1<<63 - 1, TrafficVelocity: -1.5e300, HasTrafficVelocity: true,
			DigitalIntensity: 1e300, HasDigitalIntensity: true, IntensityBasis: "active_sims",
			IntensityPercentile: 99.99, HasIntensityPercentile: true, Workforce: 1<<31 - 1, HasWorkforce: true,
			Outages90d: 1<<31 - 1, OpenOutages: 1<<31 - 1, RecoveryExposureHours90d: 1e300, MaxRecoveryHours90d: 1e300,
			Claims365d: 1<<31 - 1, ClaimAmount365dCents: 1<<63 - 1, DistinctPostalCodes90d: 1<<31 - 1,
		},
		Offers:       []string{engine.OfferGoldenHourRepair, engine.OfferGrowthPartnership, engine.OfferLogicalVIPBackup, engine.OfferMultisiteVPN, engine.OfferSDWanUpsell},
		ControlGroup: true,
		RulesVersion: strings.Repeat("v", 256),
		Trigger:      engine.TriggerRulesRollout,
		TriggerTopic: strings.Repeat("t", 249), // Kafka's longest topic name
	}
	d.OffersAdded, d.OffersRemoved = d.Offers, d.Offers
	metrics := []string{engine.MetricIntensityPercentile, engine.MetricTrafficVelocity, engine.MetricClaims365d,
		engine.MetricRecoveryExposure, engine.MetricDistinctPostalCodes, engine.MetricWorkforceChange}
	for _, seg := range all.Names() {
		for _, m := range metrics { // more reasons than the engine ever gives
			d.Reasons = append(d.Reasons, engine.Reason{Segment: seg, Metric: m, Value: 1e300, Threshold: 1e300})
		}
	}
	b := &committer{}
	c := &collector{routes: routes{segments: "segment-changes", churn: "churn-alerts"}, batch: b}
	c.change(d)
	if len(b.outputs) != 2 {
		t.Fatalf("%d outputs, want the change and its churn alert", len(b.outputs))
	}
	n := recordBytes(&b.outputs[0])
	t.Logf("largest segment change: %d bytes (value %d)", n, len(b.outputs[0].Value))
	if n > 8<<10 {
		t.Errorf("largest segment change takes %d bytes: not far below max.message.bytes (%d)", n, DefaultMaxMessageBytes)
	}
	if _, err := schemas.DecodeSegmentChange(b.outputs[0].Value); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

// tooLargeWriter refuses every write for its size, the way kafka-go does.
type tooLargeWriter struct {
	calls int
	err   func(msgs []kafka.Message) error
}

func (w *tooLargeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.calls++
	return w.err(msgs)
}

// TestRecordTooLargeIsNotRetried: an output the writer (BatchBytes) or the
// broker (MESSAGE_TOO_LARGE) refuses for its size fails the write at once
// with errRecordTooLarge, naming the topic, instead of pausing the
// partition forever; other failures are still retried.
func TestRecordTooLargeIsNotRetried(t *testing.T) {
	msgs := []kafka.Message{{Topic: "segment-changes", Value: []byte("ok")}, {Topic: "sirenstream-dlq", Value: make([]byte, 2000)}}
	for name, fail := range map[string]func([]kafka.Message) error{
		"writer BatchBytes": func(m []kafka.Message) error {
			return kafka.MessageTooLargeError{Message: m[1], Remaining: m[:1]}
		},
		"broker MESSAGE_TOO_LARGE": func(m []kafka.Message) error {
			return kafka.WriteErrors{nil, kafka.MessageSizeTooLarge}
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := &tooLargeWriter{err: fail}
			c := &committer{partition: 1, writer: w, log: zap.NewNop()}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.write(ctx, msgs)
			if !errors.Is(err, errRecordTooLarge) || !strings.Contains(err.Error(), "sirenstream-dlq") {
				t.Fatalf("write: %v; want errRecordTooLarge naming the DLQ topic", err)
			}
			if w.calls != 1 {
				t.Errorf("%d write attempts, want 1", w.calls)
			}
		})
	}
	// A transient failure is still retried.
	w := &tooLargeWriter{}
	w.err = func([]kafka.Message) error {
		if w.calls < 3 {
			return kafka.WriteErrors{kafka.NotLeaderForPartition, nil}
		}
		return nil
	}
	c := &committer{partition: 1, writer: w, log: zap.NewNop()}
	if err := c.write(context.Background(), msgs); err != nil || w.calls != 3 {
		t.Errorf("transient failure: %v after %d attempts, want success after 3", err, w.calls)
	}
}

// TestChangelogRefusesAStateLargerThanOneRecord: a state record larger than
// the changelog's budget fails the commit at once (nothing is sent: the
// changelog has no client), with a message that says what to raise; records
// that fit are chunked by the budget.
func TestChangelogRefusesAStateLargerThanOneRecord(t *testing.T) {
	c := &changelog{topic: "sirenstream-changelog", partition: 2, log: zap.NewNop(), maxBytes: 10_000}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.produce(ctx, 2, []kafka.Record{record([]byte("552100554"), make([]byte, 10_000))})
	if !errors.Is(err, errRecordTooLarge) || !strings.Contains(err.Error(), "552100554") || !strings.Contains(err.Error(), "max.message.bytes") {
		t.Fatalf("produce: %v; want errRecordTooLarge naming the SIREN and the setting", err)
	}
}

// TestReadMaxMessageBytes: the limits come from each topic's
// max.message.bytes, else the broker's message.max.bytes, else Kafka's
// default with a WARN.
func TestReadMaxMessageBytes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "900000"}))
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	stop := func() { closeOnce.Do(c.Close) }
	defer stop()
	addrs := c.ListenAddrs()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second, Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "small", NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "500000"}}},
		{Topic: "plain", NumPartitions: 1, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range resp.Errors {
		if e != nil {
			t.Fatalf("create %s: %v", name, e)
		}
	}
	got := readMaxMessageBytes(ctx, client, []string{"small", "plain", "missing"}, zap.NewNop())
	want := map[string]int{"small": 500_000, "plain": 900_000, "missing": 900_000}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("max.message.bytes of %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	l := readRecordLimits(ctx, client, routes{segments: "plain", dlq: "small"}, "plain", zap.NewNop())
	if l.output != budget(500_000) || l.changelog != budget(900_000) {
		t.Errorf("limits %+v: want output %d (the smallest output topic), changelog %d", l, budget(500_000), budget(900_000))
	}

	// Nothing can be read: Kafka's default, and a WARN that says so.
	stop()
	core, logs := observer.New(zapcore.WarnLevel)
	deadTr := &kafka.Transport{}
	defer deadTr.CloseIdleConnections()
	dead := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: time.Second, Transport: deadTr}
	got = readMaxMessageBytes(ctx, dead, []string{"small"}, zap.New(core))
	if got["small"] != DefaultMaxMessageBytes || logs.FilterMessageSnippet("assuming Kafka's default").Len() != 1 {
		t.Errorf("unreachable broker: %v and %d warnings; want %d and one WARN", got, logs.Len(), DefaultMaxMessageBytes)
	}
}

// TestChangelogChunksFollowTheTopicLimit: on a changelog topic whose
// max.message.bytes is 20 kB, a commit of 200 states of 500 bytes (100 kB)
// is written in chunks the broker accepts, in order.
func TestChangelogChunksFollowTheTopicLimit(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.ListenAddrs()...), Timeout: 10 * time.Second, Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic = "changelog"
	if _, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "20000"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	l := readRecordLimits(ctx, client, routes{}, topic, zap.NewNop())
	cl := &changelog{client: client, topic: topic, log: zap.NewNop(), maxBytes: l.changelog}
	recs := make([]kafka.Record, 200)
	for i := range recs {
		recs[i] = record([]byte(strconv.Itoa(i)), bytes.Repeat([]byte{byte(i)}, 500))
	}
	next, err := cl.produce(ctx, 0, recs)
	if err != nil || next != 200 {
		t.Fatalf("produce: next %d, %v; want 200 records written", next, err)
	}
	// The same commit against Kafka's default chunk (about 1 MiB) is refused.
	recs = recs[:0]
	for i := range 200 {
		recs = append(recs, record([]byte(strconv.Itoa(i)), bytes.Repeat([]byte{byte(i)}, 500)))
	}
	cl.maxBytes = 0
	if _, err := cl.produce(ctx, 0, recs); !errors.Is(err, kafka.MessageSizeTooLarge) || !errors.Is(err, errRecordTooLarge) {
		t.Errorf("chunks of the default size on a 20 kB topic: %v; want MESSAGE_TOO_LARGE, not retried", err)
	}
}
