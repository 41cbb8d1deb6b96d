package processor_test

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
)

// TestReplay proves the replay contract of spec §7 on one generated history
// (with some bad records): a replay leaves the live consumer group alone,
// two replays give byte-identical output partition by partition, and a
// replay ends with the same segments per SIREN as the live run.
func TestReplay(t *testing.T) {
	const parts = 3
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 300, Days: 75, Seed: 11, BadRate: 0.003})
	total := int64(len(msgs))

	// The live run, until the group's committed offsets reach the end: an
	// idle task must still report its last durable offsets to lag tools.
	liveCfg := testkit.Config(t, brokers, t.TempDir())
	live := testkit.Start(t, liveCfg)
	live.WaitConsumed(t, total, parts, 120*time.Second)
	end := testkit.EndOffsets(t, brokers, testkit.InputTopics, parts)
	deadline := time.Now().Add(30 * time.Second)
	for !reflect.DeepEqual(groupOffsets(t, brokers, liveCfg.Group, parts), end) {
		if time.Now().After(deadline) {
			t.Fatalf("live group offsets %v never reached the end offsets %v", groupOffsets(t, brokers, liveCfg.Group, parts), end)
		}
		time.Sleep(50 * time.Millisecond)
	}
	live.Stop(t)
	liveOut := testkit.ReadAllFresh(t, brokers, "segment-changes")
	groupsBefore := groups(t, brokers)
	offsetsBefore := groupOffsets(t, brokers, liveCfg.Group, parts)

	replay := func(topic string) []processor.TaskProgress {
		t.Helper()
		cfg := testkit.Config(t, brokers, t.TempDir())
		defer cfg.Store.Close()
		return replayTo(t, cfg, topic).Progress()
	}
	progA := replay("replay-a")
	replay("replay-b")

	t.Run("accounting", func(t *testing.T) {
		if len(progA) != parts {
			t.Fatalf("progress of %d partitions, want %d", len(progA), parts)
		}
		var consumed, sumTotal, processed, dead int64
		for _, tp := range progA {
			if !tp.Done {
				t.Errorf("partition %d not done", tp.Partition)
			}
			consumed += tp.Consumed
			sumTotal += tp.Total
			processed += tp.Processed
			dead += tp.DeadLettered
		}
		if consumed != total || sumTotal != total || processed+dead != consumed || dead == 0 {
			t.Fatalf("consumed %d, total %d, processed %d + dead %d; want %d records, every one processed or dead-lettered, some dead", consumed, sumTotal, processed, dead, total)
		}
	})

	t.Run("live group undisturbed", func(t *testing.T) {
		if got := groupOffsets(t, brokers, liveCfg.Group, parts); !reflect.DeepEqual(got, offsetsBefore) {
			t.Errorf("live group offsets changed by a replay:\n got %v\nwant %v", got, offsetsBefore)
		}
		if got := groups(t, brokers); !reflect.DeepEqual(got, groupsBefore) {
			t.Errorf("consumer groups changed by a replay: got %v, want %v", got, groupsBefore)
		}
	})

	t.Run("byte-identical replays", func(t *testing.T) {
		for _, pair := range [][2]string{{"replay-a", "replay-b"}, {"replay-a-churn", "replay-b-churn"}, {"replay-a-dlq", "replay-b-dlq"}} {
			a, b := byPartition(testkit.ReadAllFresh(t, brokers, pair[0])), byPartition(testkit.ReadAllFresh(t, brokers, pair[1]))
			if len(a) == 0 {
				t.Errorf("%s is empty", pair[0])
			}
			for p := 0; p < parts; p++ {
				if len(a[p]) != len(b[p]) {
					t.Errorf("%s/%d has %d records, %s/%d has %d", pair[0], p, len(a[p]), pair[1], p, len(b[p]))
					continue
				}
				for i := range a[p] {
					if d := testkit.DiffMessage(a[p][i], b[p][i]); d != "" {
						t.Errorf("%s/%d record %d differs from %s: %s", pair[0], p, i, pair[1], d)
						break
					}
				}
			}
		}
	})

	t.Run("same final segments as the live run", func(t *testing.T) {
		liveLatest := testkit.Latest(testkit.Changes(t, liveOut))
		replayLatest := testkit.Latest(testkit.Changes(t, testkit.ReadAllFresh(t, brokers, "replay-a")))
		if len(liveLatest) == 0 || len(liveLatest) != len(replayLatest) {
			t.Fatalf("live run changed %d SIRENs, replay %d", len(liveLatest), len(replayLatest))
		}
		for s, l := range liveLatest {
			r := replayLatest[s]
			if r == nil || l.Seq != r.Seq || !reflect.DeepEqual(l.Segments, r.Segments) || !reflect.DeepEqual(l.Offers, r.Offers) {
				t.Errorf("SIREN %s: live ends with seq %d %v, replay with %+v", s, l.Seq, l.Segments, r)
			}
		}
		// Stronger: the same events, byte for byte (the live run over data
		// already present merges exactly like a replay).
		if a, b := byPartition(liveOut), byPartition(testkit.ReadAllFresh(t, brokers, "replay-a")); !reflect.DeepEqual(valuesOf(a), valuesOf(b)) {
			t.Error("live segment changes are not byte-identical to the replay's")
		}
	})
}

// TestReplayFromTo: records outside --from/--to are skipped and counted;
// the state only reflects the records inside.
func TestReplayFromTo(t *testing.T) {
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	a, b, c := gen.SIREN(21), gen.SIREN(22), gen.SIREN(23)
	from, to := t0+12*hour, t0+3*day
	evs := []engine.Event{
		// Before --from: a 5 h outage that would make a RECOVERY_EXPOSED.
		{Kind: engine.KindOutage, EventID: "o1", SIREN: a, EventTime: t0, OutageID: "out-1", SiteID: "s", PostalCode: "69001", Status: engine.OutageStarted},
		{Kind: engine.KindOutage, EventID: "o2", SIREN: a, EventTime: t0 + 5*hour, OutageID: "out-1", SiteID: "s", PostalCode: "69001", Status: engine.OutageResolved, StartedAt: t0, HasStartedAt: true},
		// Inside: b gets a second postal code (MULTI_SITE), a a linked claim (SLA_SENSITIVE).
		{Kind: engine.KindUsage, EventID: "u1", SIREN: b, EventTime: from, SiteID: "b1", PostalCode: "75001", BytesUp: 1, BytesDown: 1},
		{Kind: engine.KindUsage, EventID: "u2", SIREN: b, EventTime: t0 + day, SiteID: "b2", PostalCode: "13001", BytesUp: 1, BytesDown: 1},
		{Kind: engine.KindClaim, EventID: "c1", SIREN: a, EventTime: t0 + 2*day, ClaimID: "cl-1", OutageID: "out-1", HasOutageID: true, AmountCents: 100},
		// At --to (exclusive) and after: c would be MULTI_SITE.
		{Kind: engine.KindUsage, EventID: "u3", SIREN: c, EventTime: to, SiteID: "c1", PostalCode: "75001", BytesUp: 1, BytesDown: 1},
		{Kind: engine.KindUsage, EventID: "u4", SIREN: c, EventTime: to + hour, SiteID: "c2", PostalCode: "13001", BytesUp: 1, BytesDown: 1},
	}
	var msgs []kafka.Message
	for _, ev := range evs {
		msgs = append(msgs, testkit.Msg(t, ev))
	}
	testkit.Produce(t, brokers, msgs...)

	cfg := testkit.Config(t, brokers, t.TempDir())
	defer cfg.Store.Close()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Replay(ctx, processor.ReplayOptions{OutputTopic: "bounded", From: time.UnixMilli(from), To: time.UnixMilli(to)}); err != nil {
		t.Fatal(err)
	}
	var consumed, skipped, processed int64
	for _, tp := range p.Progress() {
		consumed, skipped, processed = consumed+tp.Consumed, skipped+tp.Skipped, processed+tp.Processed
	}
	if consumed != 7 || skipped != 4 || processed != 3 {
		t.Fatalf("consumed %d skipped %d processed %d, want 7 = 4 skipped + 3 processed", consumed, skipped, processed)
	}
	got := map[string][]string{}
	for s, sc := range testkit.Latest(testkit.Changes(t, testkit.ReadAllFresh(t, brokers, "bounded"))) {
		got[s] = sc.Segments
	}
	want := map[string][]string{a: {"SLA_SENSITIVE"}, b: {"MULTI_SITE"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("final segments %v, want %v (the outage before --from and c's sites after --to must not count)", got, want)
	}
}

func byPartition(msgs []kafka.Message) map[int][]kafka.Message {
	m := map[int][]kafka.Message{}
	for _, msg := range msgs {
		m[msg.Partition] = append(m[msg.Partition], msg)
	}
	for _, l := range m {
		sort.Slice(l, func(i, j int) bool { return l[i].Offset < l[j].Offset })
	}
	return m
}

func valuesOf(m map[int][]kafka.Message) map[int][]string {
	out := map[int][]string{}
	for p, l := range m {
		for _, msg := range l {
			out[p] = append(out[p], string(msg.Key)+"\x00"+string(msg.Value))
		}
	}
	return out
}

// groupOffsets returns a group's committed offsets of the input topics.
func groupOffsets(t *testing.T, brokers []string, group string, parts int) map[string]int64 {
	t.Helper()
	out, err := testkit.GroupOffsets(brokers, group, parts)
	if err != nil {
		t.Fatalf("offset fetch %s: %v", group, err)
	}
	return out
}

func groups(t *testing.T, brokers []string) []string {
	t.Helper()
	client, done := testkit.Client(brokers)
	defer done()
	resp, err := client.ListGroups(context.Background(), &kafka.ListGroupsRequest{})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range resp.Groups {
		out = append(out, g.GroupID)
	}
	sort.Strings(out)
	return out
}

// replayTo runs a bounded replay with cfg into topic (churn alerts to
// topic-churn) and fails the test if it does not complete.
func replayTo(t *testing.T, cfg processor.Config, topic string) *processor.Processor {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := p.Replay(ctx, processor.ReplayOptions{OutputTopic: topic, ChurnTopic: topic + "-churn"}); err != nil {
		t.Fatalf("replay to %s: %v", topic, err)
	}
	return p
}
