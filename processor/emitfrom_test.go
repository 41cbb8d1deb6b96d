package processor_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

// TestReplayEmitFrom (spec §8, replay --emit-from): a replay that warms its
// windows on the history before T and emits from T writes, partition by
// partition and byte for byte, the part of a full replay's output from T
// on: the segment changes and churn alerts with event_time >= T, and the
// dead letters of records with event_time >= T (a record that does not
// decode: its timestamp) — with the seq and event_id of the full replay.
func TestReplayEmitFrom(t *testing.T) {
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := testkit.Generated(t, gen.Config{SIRENs: 300, Days: 75, Start: start, Seed: 11, BadRate: 0.003})
	emitFrom := start.AddDate(0, 0, 45)
	// Records that do not decode, before and after T.
	for i, at := range []time.Time{start.AddDate(0, 0, 10), emitFrom.Add(-time.Millisecond), emitFrom, start.AddDate(0, 0, 60)} {
		msgs = append(msgs, kafka.Message{Topic: "usage", Key: []byte(gen.SIREN(i + 1)), Value: []byte{0, 0, 0}, Time: at})
	}
	testkit.Produce(t, brokers, msgs...)

	replay := func(ro processor.ReplayOptions) []processor.TaskProgress {
		t.Helper()
		cfg := testkit.Config(t, brokers, t.TempDir())
		defer cfg.Store.Close()
		p, err := processor.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		if err := p.Replay(ctx, ro); err != nil {
			t.Fatalf("replay to %s: %v", ro.OutputTopic, err)
		}
		return p.Progress()
	}
	replay(processor.ReplayOptions{OutputTopic: "full", ChurnTopic: "full-churn"})
	prog := replay(processor.ReplayOptions{OutputTopic: "warm", ChurnTopic: "warm-churn", EmitFrom: emitFrom})
	T := emitFrom.UnixMilli()

	changeFrom := func(m kafka.Message) bool {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		return sc.EventTime >= T
	}
	// A dead letter's event time is its source record's.
	inputs := map[string]kafka.Message{}
	for _, topic := range topology.Defaults().Inputs() {
		for _, m := range testkit.ReadAllFresh(t, brokers, topic) {
			inputs[fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)] = m
		}
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	undecodable := 0
	deadFrom := func(m kafka.Message) bool {
		h := testkit.Headers(m)
		src, ok := inputs[h["source.topic"]+"/"+h["source.partition"]+"/"+h["source.offset"]]
		if !ok {
			t.Fatalf("dead letter of an unknown record %v", h)
		}
		var ev engine.Event
		names := topology.Defaults().Inputs()
		kind := engine.Kind(slices.Index(names[:], src.Topic))
		if err := codec.Decode(context.Background(), kind, src.Value, &ev); err != nil {
			undecodable++
			return src.Time.UnixMilli() >= T
		}
		return ev.EventTime >= T
	}

	withheld := map[string]int{}
	for _, c := range []struct {
		full, warm string
		from       func(kafka.Message) bool
	}{{"full", "warm", changeFrom}, {"full-churn", "warm-churn", changeFrom}, {"full-dlq", "warm-dlq", deadFrom},
		{"full-siren-daily", "warm-siren-daily", dailyFrom(t, emitFrom)}} {
		full, warm := byPartition(testkit.ReadAllFresh(t, brokers, c.full)), byPartition(testkit.ReadAllFresh(t, brokers, c.warm))
		n, kept := 0, 0
		for p := 0; p < parts; p++ {
			var want []kafka.Message
			for _, m := range full[p] {
				n++
				if c.from(m) {
					want = append(want, m)
				}
			}
			kept += len(want)
			if len(want) != len(warm[p]) {
				t.Errorf("%s/%d: %d records, want the %d of %s from %s", c.warm, p, len(warm[p]), len(want), c.full, emitFrom)
				continue
			}
			for i := range want {
				if d := testkit.DiffMessage(want[i], warm[p][i]); d != "" {
					t.Errorf("%s/%d record %d differs from %s's: %s", c.warm, p, i, c.full, d)
					break
				}
			}
		}
		if kept == 0 || kept == n {
			t.Errorf("%s: %d of %d records from %s: the test needs some on each side", c.full, kept, n, emitFrom)
		}
		withheld[c.full] = n - kept
	}
	if undecodable != 4 {
		t.Errorf("%d undecodable dead letters in the full replay, want 4", undecodable)
	}
	var heldChanges, heldDead, heldOutputs int64
	for _, tp := range prog {
		heldChanges += tp.WithheldChanges
		heldDead += tp.WithheldDeadLetters
		heldOutputs += tp.WithheldOutputs
	}
	if heldChanges != int64(withheld["full"]) || heldDead != int64(withheld["full-dlq"]) {
		t.Errorf("progress: %d changes and %d dead letters withheld, want %d and %d", heldChanges, heldDead, withheld["full"], withheld["full-dlq"])
	}
	if heldOutputs != int64(withheld["full-siren-daily"]) {
		t.Errorf("progress: %d daily outputs withheld, want %d", heldOutputs, withheld["full-siren-daily"])
	}
}

// dailyFrom: a siren-daily record is written when its day (the sweep's
// stream day) is on or after emitFrom's (a UTC midnight).
func dailyFrom(t *testing.T, emitFrom time.Time) func(kafka.Message) bool {
	from := emitFrom.UTC().Format(time.DateOnly)
	return func(m kafka.Message) bool {
		b := m.Value[5:] // Confluent header; then siren, day (Avro strings)
		n, k := binary.Varint(b)
		b = b[k+int(n):]
		n, k = binary.Varint(b)
		if k <= 0 || len(b) < k+int(n) {
			t.Fatalf("siren-daily record %x", m.Value)
		}
		return string(b[k:k+int(n)]) >= from
	}
}

// TestReplayRefusesOtherSettings (issue 16): a replay on a state directory
// written by another replay (other output topic, bounds or rules) is
// refused before it starts, with both settings and what to do; the same
// settings resume it. (A live run's state: TestRulesRollout.)
func TestReplayRefusesOtherSettings(t *testing.T) {
	const parts = 2
	brokers, _ := testkit.Loaded(t, parts, gen.Config{SIRENs: 40, Days: 20, Seed: 3})
	dir := t.TempDir()
	replay := func(dir string, rules *engine.Rules, ro processor.ReplayOptions) error {
		t.Helper()
		cfg := testkit.Config(t, brokers, dir)
		cfg.Rules = rules
		defer cfg.Store.Close()
		p, err := processor.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return p.Replay(ctx, ro)
	}
	from := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	first := processor.ReplayOptions{OutputTopic: "backfill", From: from}
	if err := replay(dir, nil, first); err != nil {
		t.Fatal(err)
	}
	if err := replay(dir, nil, first); err != nil {
		t.Fatalf("the same replay again (resume): %v", err)
	}
	v2 := engine.DefaultRules()
	v2.Version = "v2"
	for _, c := range []struct {
		name  string
		rules *engine.Rules
		ro    processor.ReplayOptions
		now   string
	}{
		{"other output topic", nil, processor.ReplayOptions{OutputTopic: "other", From: from}, "output-topic=other "},
		{"other --from", nil, processor.ReplayOptions{OutputTopic: "backfill"}, "from=- "},
		{"--emit-from", nil, processor.ReplayOptions{OutputTopic: "backfill", From: from, EmitFrom: from.AddDate(0, 0, 3)}, "emit-from=2026-01-08T00:00:00Z "},
		{"other rules", v2, first, "rules=v2 ("},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := replay(dir, c.rules, c.ro)
			stored := "stored: output-topic=backfill churn-topic=- dlq-topic=backfill-dlq from=2026-01-05T00:00:00Z to=- emit-from=- rules=" + engine.DefaultRulesVersion + " (" + engine.DefaultRules().Fingerprint() + ")"
			if !errors.Is(err, processor.ErrReplayState) || !strings.Contains(err.Error(), stored) ||
				!strings.Contains(err.Error(), "now:    ") || !strings.Contains(err.Error(), c.now) ||
				!strings.Contains(err.Error(), "use a fresh --state-dir for this replay, or run the stored one's flags and rules again to resume it") {
				t.Fatalf("replay = %v; want a refusal naming %q, now %q, and what to do", err, stored, c.now)
			}
		})
	}
	if err := replay(dir, nil, first); err != nil {
		t.Fatalf("the first settings after refusals: %v", err)
	}
}
