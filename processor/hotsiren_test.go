package processor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/ops"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestHotSIRENKeepsItsPartitionFlowing is issue 20's hot SIREN: 200k usage
// events of one SIREN in one day (its v1 state passed 1 MiB near 116k and
// the changelog write failed forever) among normal SIRENs. The partition
// keeps flowing: the normal SIRENs' later records produce their segment
// changes; per partition consumed = processed + dead-lettered (the hot
// SIREN's dedup false positives and its re-sent records are dead letters);
// the largest changelog record stays far below the broker's 1 MiB; the
// bound is exported as sirenstream_bound_hits_total and logged as a
// rate-limited WARN.
func TestHotSIRENKeepsItsPartitionFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("200k records")
	}
	const (
		parts   = 2
		hotN    = 200_000
		normals = 24
		resent  = 500 // the hot SIREN's last records, sent again
	)
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	const hourMs = int64(time.Hour / time.Millisecond)
	hot := gen.SIREN(4242)
	var bal kafka.Murmur2Balancer
	partOf := func(siren string) int { return bal.Balance(kafka.Message{Key: []byte(siren)}, 0, 1) }

	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	add := func(ev engine.Event) {
		v, err := codec.EncodeEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: testkit.TopicOf(ev.Kind), Key: []byte(ev.SIREN), Value: v, Time: time.UnixMilli(ev.EventTime)})
	}
	usage := func(siren, id string, at int64, postal string) engine.Event {
		return engine.Event{Kind: engine.KindUsage, EventID: id, SIREN: siren, EventTime: at, SiteID: "site-" + postal, PostalCode: postal, BytesUp: 1e6, BytesDown: 3e6, ActiveSIMs: 5, HasActiveSIMs: true}
	}
	// Normal SIRENs: a first usage record early, a second site at another
	// postal code after all of the hot SIREN's records (→ MULTI_SITE).
	var normal []string
	onHot := 0
	for i := range normals {
		s := gen.SIREN(100 + i)
		normal = append(normal, s)
		if partOf(s) == partOf(hot) {
			onHot++
		}
		add(usage(s, "n1-"+s, day0+hourMs+int64(i), "75001"))
	}
	if onHot == 0 {
		t.Fatal("no normal SIREN shares the hot SIREN's partition")
	}
	for i := range hotN { // 00:00 … 20:00, every 360 ms
		add(usage(hot, fmt.Sprint("hot-", i), day0+2*hourMs+int64(i)*360, "69001"))
	}
	for i := range resent {
		ev := usage(hot, fmt.Sprint("hot-", hotN-resent+i), day0+21*hourMs+int64(i), "69001")
		add(ev)
	}
	for i, s := range normal {
		add(usage(s, "n2-"+s, day0+22*hourMs+int64(i), "13001"))
	}

	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	testkit.Produce(t, brokers, msgs...)

	cfg := testkit.Config(t, brokers, t.TempDir())
	cfg.Rules = engine.RulesV1() // traffic_30d counts the current day
	core, logs := observer.New(zapcore.WarnLevel)
	cfg.Logger = zap.New(core)
	metrics := ops.NewMetrics(ops.MetricsConfig{NoRuntime: true})
	cfg.Metrics = metrics
	start := time.Now()
	hs := testkit.Start(t, cfg)
	hs.WaitConsumed(t, int64(len(msgs)), parts, 120*time.Second)
	prog := hs.P.Progress()
	hotView, _, err := hs.P.View(hot)
	if err != nil {
		t.Fatal(err)
	}
	hs.Stop(t)
	t.Logf("%d records processed in %v", len(msgs), time.Since(start).Round(time.Millisecond))

	// Per partition, consumed = processed + dead-lettered; every record
	// was consumed.
	var consumed, dead int64
	for _, tp := range prog {
		if tp.Consumed != tp.Processed+tp.DeadLettered {
			t.Errorf("partition %d: consumed %d != processed %d + dead-lettered %d", tp.Partition, tp.Consumed, tp.Processed, tp.DeadLettered)
		}
		consumed += tp.Consumed
		dead += tp.DeadLettered
	}
	if consumed != int64(len(msgs)) {
		t.Errorf("consumed %d of %d records", consumed, len(msgs))
	}
	// The dead letters are the hot SIREN's duplicates: the re-sent records
	// (every one) and a few false positives of its dedup filter.
	dlq := testkit.ReadAll(t, brokers, "sirenstream-dlq")
	if int64(len(dlq)) != dead {
		t.Errorf("%d dead letters, progress says %d", len(dlq), dead)
	}
	for _, m := range dlq {
		h := testkit.Headers(m)
		if string(m.Key) != hot || h["error"] != "duplicate" {
			t.Errorf("unexpected dead letter: key %s, %v", m.Key, h)
		}
	}
	fp := len(dlq) - resent
	t.Logf("hot SIREN: %d re-sent records dead-lettered, %d false positives (%.3f %% of %d)", resent, fp, 100*float64(fp)/hotN, hotN)
	if fp < 0 || fp > int(3*engine.DedupFalsePositive*hotN)+10 {
		t.Errorf("%d dead letters for %d re-sent records", len(dlq), resent)
	}
	if want := int64(hotN-fp) * 4e6; hotView.Metrics.Traffic30dBytes != want {
		t.Errorf("hot SIREN traffic %d, want %d (each applied record once)", hotView.Metrics.Traffic30dBytes, want)
	}

	// The partition kept flowing: every normal SIREN, on the hot SIREN's
	// partition too, reached MULTI_SITE with its last record.
	got := map[string]bool{}
	for _, c := range testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")) {
		if slices.Contains(c.Segments, "MULTI_SITE") {
			got[c.SIREN] = true
		}
	}
	for _, s := range normal {
		if !got[s] {
			t.Errorf("normal SIREN %s (partition %d, hot SIREN's: %d) has no MULTI_SITE change", s, partOf(s), partOf(hot))
		}
	}

	// The changelog's records stay far below the broker's 1 MiB.
	largest, records := 0, 0
	for _, topic := range changelogTopics(t, brokers) {
		for _, m := range testkit.ReadAll(t, brokers, topic) {
			records++
			largest = max(largest, len(m.Key)+len(m.Value))
		}
	}
	t.Logf("changelog: %d records, the largest %d bytes", records, largest)
	if records == 0 || largest > 256<<10 {
		t.Errorf("changelog: %d records, the largest %d bytes", records, largest)
	}

	// Bound hits: exported, and a WARN at most once a minute per bound.
	if n := boundHits(t, metrics, "dedup"); n < hotN/2 {
		t.Errorf("sirenstream_bound_hits_total{bound=dedup} = %v", n)
	}
	warns := map[string]int{}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "bound") {
			f := e.ContextMap()
			if f["siren"] != hot {
				t.Errorf("WARN names SIREN %v", f["siren"])
			}
			warns[fmt.Sprint(f["bound"])]++
		}
	}
	if warns["dedup"] != 1 || warns["dedup_forgotten"] != 1 || len(warns) != 2 {
		t.Errorf("bound WARNs %v, want one per bound hit (dedup, dedup_forgotten)", warns)
	}
}

// boundHits reads sirenstream_bound_hits_total{bound} from m's registry.
func boundHits(t *testing.T, m *ops.Metrics, bound string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sirenstream_bound_hits_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "bound" && l.GetValue() == bound {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sirenstream_bound_hits_total{bound=%q}", bound)
	return 0
}

// changelogTopics returns the broker's topics whose name says changelog.
func changelogTopics(t *testing.T, brokers []string) []string {
	t.Helper()
	client, done := testkit.Client(brokers)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tp := range md.Topics {
		if strings.Contains(tp.Name, "changelog") {
			out = append(out, tp.Name)
		}
	}
	return out
}
