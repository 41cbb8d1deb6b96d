package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strconv"
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

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()

const hour = int64(time.Hour / time.Millisecond)
const day = 24 * hour

// scenario builds hand-written events with known effects (spec §5-6):
//   - sirenA: workforce 10, BASIC_SIM; a 5 h outage: its golden-hour timer
//     offers GOLDEN_HOUR_REPAIR (seq 1, start + 1 h), its threshold timer
//     enters RECOVERY_EXPOSED (seq 2, start + 4 h, before the RESOLVED);
//     a claim linked to it → SLA_SENSITIVE + CHURN_RISK (seq 3), offers
//     GOLDEN_HOUR_REPAIR + LOGICAL_VIP_BACKUP, and a churn alert.
//   - sirenB: two lines at one postal code → nothing; a site at a second
//     postal code → MULTI_SITE (seq 1) with MULTISITE_VPN.
//   - a claim without outage_id for sirenB changes nothing.
func scenario(sirenA, sirenB string) []engine.Event {
	return []engine.Event{
		{Kind: engine.KindProfile, EventID: "pA", SIREN: sirenA, EventTime: t0, Workforce: 10, HasWorkforce: true, Plan: "BASIC_SIM"},
		{Kind: engine.KindUsage, EventID: "uB1", SIREN: sirenB, EventTime: t0 + 1*hour, SiteID: "b1", PostalCode: "75001", BytesUp: 1e8, BytesDown: 4e8},
		{Kind: engine.KindUsage, EventID: "uB2", SIREN: sirenB, EventTime: t0 + 2*hour, SiteID: "b2", PostalCode: "75001", BytesUp: 1e8, BytesDown: 4e8},
		{Kind: engine.KindOutage, EventID: "oA1", SIREN: sirenA, EventTime: t0 + 3*hour, OutageID: "out-1", SiteID: "a1", PostalCode: "69001", Status: engine.OutageStarted},
		{Kind: engine.KindOutage, EventID: "oA2", SIREN: sirenA, EventTime: t0 + 8*hour, OutageID: "out-1", SiteID: "a1", PostalCode: "69001", Status: engine.OutageResolved, StartedAt: t0 + 3*hour, HasStartedAt: true},
		{Kind: engine.KindClaim, EventID: "cB", SIREN: sirenB, EventTime: t0 + 9*hour, ClaimID: "claim-b", AmountCents: 5000},
		{Kind: engine.KindUsage, EventID: "uB3", SIREN: sirenB, EventTime: t0 + day, SiteID: "b3", PostalCode: "13001", BytesUp: 1e8, BytesDown: 4e8},
		{Kind: engine.KindClaim, EventID: "cA", SIREN: sirenA, EventTime: t0 + day + hour, ClaimID: "claim-a", OutageID: "out-1", HasOutageID: true, AmountCents: 120000},
	}
}

func TestEndToEndScenario(t *testing.T) {
	const parts = 3
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	sirenA, sirenB := gen.SIREN(1), gen.SIREN(2)
	var msgs []kafka.Message
	for _, ev := range scenario(sirenA, sirenB) {
		msgs = append(msgs, testkit.Msg(t, ev))
	}
	// Bad input must land in the DLQ with its reason, not stop the stream.
	msgs = append(msgs,
		kafka.Message{Topic: "usage", Key: []byte(sirenA), Value: []byte{0, 0, 0}},
		kafka.Message{Topic: "usage", Key: []byte("12345678X"), Value: testkit.Encode(t, engine.Event{Kind: engine.KindUsage, EventID: "bad", SIREN: "12345678X", EventTime: t0, BytesUp: 1})},
	)
	testkit.Produce(t, brokers, msgs...)

	h := testkit.Start(t, testkit.Config(t, brokers, t.TempDir()))
	h.WaitConsumed(t, int64(len(msgs)), parts, 60*time.Second)
	consumed, processed, dead := testkit.Sum(h.P.Progress())
	h.Stop(t)
	if consumed != int64(len(msgs)) || processed+dead != consumed || dead != 2 {
		t.Fatalf("accounting: consumed %d processed %d dead %d, want %d = processed + 2 dead", consumed, processed, dead, len(msgs))
	}

	out := testkit.ReadAll(t, brokers, "segment-changes")
	changes := testkit.Changes(t, out)
	bySiren := map[string][]*schemas.SegmentChange{}
	for _, c := range changes {
		bySiren[c.SIREN] = append(bySiren[c.SIREN], c)
	}
	a := bySiren[sirenA]
	if len(a) != 3 {
		var desc []string
		for _, c := range a {
			desc = append(desc, fmt.Sprintf("seq %d %v offers %v trigger %s at %d", c.Seq, c.Segments, c.Offers, c.Trigger, c.EventTime))
		}
		t.Fatalf("sirenA: want 3 changes, got %d: %v", len(a), desc)
	}
	wantA := []struct {
		seq      int64
		segs     []string
		added    []string
		offers   []string
		reasons  int
		eventID  string
		evTimeMs int64
	}{
		{1, []string{}, []string{}, []string{"GOLDEN_HOUR_REPAIR"}, 0, sirenA + "-1", t0 + 4*hour + 1},
		{2, []string{"RECOVERY_EXPOSED"}, []string{"RECOVERY_EXPOSED"}, []string{"GOLDEN_HOUR_REPAIR"}, 1, sirenA + "-2", t0 + 7*hour},
		{3, []string{"CHURN_RISK", "RECOVERY_EXPOSED", "SLA_SENSITIVE"}, []string{"CHURN_RISK", "SLA_SENSITIVE"},
			[]string{"GOLDEN_HOUR_REPAIR", "LOGICAL_VIP_BACKUP"}, 0, sirenA + "-3", t0 + day + hour},
	}
	for i, w := range wantA {
		c := a[i]
		if c.Seq != w.seq || c.EventID != w.eventID || !reflect.DeepEqual(c.Segments, w.segs) || !reflect.DeepEqual(c.Added, w.added) || !reflect.DeepEqual(c.Offers, w.offers) {
			t.Errorf("sirenA change %d = seq %d id %s segs %v added %v offers %v; want %+v", i, c.Seq, c.EventID, c.Segments, c.Added, c.Offers, w)
		}
		if c.EventTime != w.evTimeMs {
			t.Errorf("sirenA change %d event_time %d, want %d", i, c.EventTime, w.evTimeMs)
		}
	}
	if got := a[1].Metrics.RecoveryExposureHours90d; got != 4 || a[1].Trigger != engine.TriggerTimer {
		t.Errorf("recovery_exposure_hours_90d = %v (trigger %s), want 4 at the threshold timer", got, a[1].Trigger)
	}
	if a[2].Metrics.Claims365d != 1 || a[2].Metrics.ClaimAmount365dCents != 120000 || a[2].Metrics.RecoveryExposureHours90d != 5 {
		t.Errorf("claims metrics = %+v", a[2].Metrics)
	}
	// Every held segment has a reason.
	for _, c := range changes {
		held := map[string]bool{}
		for _, r := range c.Reasons {
			held[r.Segment] = true
		}
		for _, s := range c.Segments {
			if !held[s] {
				t.Errorf("%s seq %d: segment %s has no reason (%+v)", c.SIREN, c.Seq, s, c.Reasons)
			}
		}
	}
	b := bySiren[sirenB]
	if len(b) != 1 || !reflect.DeepEqual(b[0].Segments, []string{"MULTI_SITE"}) || !reflect.DeepEqual(b[0].Offers, []string{"MULTISITE_VPN"}) || b[0].Metrics.DistinctPostalCodes90d != 2 {
		t.Fatalf("sirenB: want one MULTI_SITE change with 2 postal codes, got %+v", b)
	}
	if b[0].Metrics.Claims365d != 0 {
		t.Errorf("claim without outage_id counted: %+v", b[0].Metrics)
	}

	// Output partitioning is murmur2 of the key, like a Java producer.
	for _, m := range out {
		if want := (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: m.Key}, seq(parts)...); m.Partition != want {
			t.Errorf("segment change for %s on partition %d, murmur2 says %d", m.Key, m.Partition, want)
		}
	}

	alerts := testkit.ReadAll(t, brokers, "churn-alerts")
	churn := testkit.Changes(t, alerts)
	if len(churn) != 1 || churn[0].SIREN != sirenA || churn[0].Seq != 3 {
		t.Fatalf("churn-alerts: want sirenA seq 3, got %+v", churn)
	}
	if h := alerts[0].Headers; len(h) != 1 || h[0].Key != "control_group" || string(h[0].Value) != strconv.FormatBool(churn[0].ControlGroup) {
		t.Errorf("churn alert headers %v, want control_group=%v", h, churn[0].ControlGroup)
	}

	dlq := testkit.ReadAll(t, brokers, "sirenstream-dlq")
	reasons := map[string]bool{}
	for _, m := range dlq {
		h := testkit.Headers(m)
		reasons[h["error"]] = true
		if h["source.topic"] != "usage" || h["source.offset"] == "" || h["source.partition"] == "" {
			t.Errorf("dlq headers incomplete: %v", h)
		}
		if !bytes.Equal(m.Key, []byte(sirenA)) && !bytes.Equal(m.Key, []byte("12345678X")) {
			t.Errorf("dlq key %q is not the original key", m.Key)
		}
	}
	if len(dlq) != 2 || !reasons["truncated"] || !reasons["invalid_siren"] {
		t.Fatalf("dlq reasons = %v (%d records), want truncated and invalid_siren", reasons, len(dlq))
	}
}

// TestRestartResumesFromStoredOffsets: a run over the first half, a clean
// stop, the second half produced, a restart on the same state directory —
// the outputs equal a single uninterrupted run over the whole input, without
// duplicates, and the final state is the same.
func TestRestartResumesFromStoredOffsets(t *testing.T) {
	const parts = 3
	cfg := gen.Config{SIRENs: 150, Days: 75, Seed: 3}
	all := testkit.Generated(t, cfg)
	half := len(all) / 2

	// Reference: one run over everything.
	_, refBrokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, refBrokers, parts)
	testkit.Produce(t, refBrokers, all...)
	refDir := t.TempDir()
	ref := testkit.Start(t, testkit.Config(t, refBrokers, refDir))
	ref.WaitConsumed(t, int64(len(all)), parts, 120*time.Second)
	ref.Stop(t)
	refOut := testkit.Changes(t, testkit.ReadAll(t, refBrokers, "segment-changes"))

	// Interrupted: two runs on one state directory.
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	dir := t.TempDir()
	testkit.Produce(t, brokers, all[:half]...)
	h := testkit.Start(t, testkit.Config(t, brokers, dir))
	h.WaitConsumed(t, int64(half), parts, 120*time.Second)
	h.Stop(t)
	testkit.Produce(t, brokers, all[half:]...)
	h = testkit.Start(t, testkit.Config(t, brokers, dir))
	h.WaitConsumed(t, int64(len(all)-half), parts, 120*time.Second)
	h.Stop(t)
	out := testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes"))

	if len(refOut) == 0 {
		t.Fatal("reference run produced no segment changes")
	}
	if len(out) != len(testkit.Dedup(out)) {
		t.Errorf("restart duplicated outputs: %d events, %d distinct", len(out), len(testkit.Dedup(out)))
	}
	if got, want := fingerprint(testkit.Dedup(out)), fingerprint(testkit.Dedup(refOut)); got != want {
		t.Fatalf("outputs after restart differ from an uninterrupted run:\n got %d events\nwant %d events", len(out), len(refOut))
	}
	if got, want := dumpState(t, dir, parts), dumpState(t, refDir, parts); got != want {
		t.Fatal("final state after restart differs from the uninterrupted run")
	}
}

func fingerprint(cs []*schemas.SegmentChange) string {
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "%s|%d|%v|%v|%v|%d\n", c.SIREN, c.Seq, c.Segments, c.Added, c.Removed, c.EventTime)
	}
	return b.String()
}

// dumpState is the state of a cleanly closed directory of a processor with
// the default topics in the test kit's group.
func dumpState(t *testing.T, dir string, parts int) string {
	t.Helper()
	return testkit.DumpState(t, dir, parts, topology.ChangelogName(testkit.Group))
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestMismatchedPartitionCountsIsAStartupError: input topics that are not
// co-partitioned stop the processor at start with a message naming them.
func TestMismatchedPartitionCountsIsAStartupError(t *testing.T) {
	_, brokers := testkit.Cluster(t, 3)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "usage", NumPartitions: 3, ReplicationFactor: 1},
		{Topic: "claims", NumPartitions: 2, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range resp.Errors {
		if e != nil {
			t.Fatalf("create %s: %v", name, e)
		}
	}
	cfg := testkit.Config(t, brokers, t.TempDir())
	defer cfg.Store.Close()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "not co-partitioned") || !strings.Contains(err.Error(), "claims=2") || !strings.Contains(err.Error(), "usage=3") {
		t.Fatalf("want a co-partitioning startup error naming claims=2 and usage=3, got %v", err)
	}
}
