package processor_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestQuietPartitionChangesDayByClockTicks (spec §8): a partition that
// receives nothing after its first records still changes day — its
// RECOVERY_EXPOSED SIREN decays 90 days later — because run writes clock
// ticks for it while the other partition moves on; and a replay of the
// same topics, ticks included, emits exactly what the live run emitted.
func TestQuietPartitionChangesDayByClockTicks(t *testing.T) {
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	var quiet, busy string
	for i := 1; quiet == "" || busy == ""; i++ {
		s := gen.SIREN(100 + i)
		if processor.PartitionOf(s, parts) == 1 && quiet == "" {
			quiet = s
		} else if processor.PartitionOf(s, parts) == 0 && busy == "" {
			busy = s
		}
	}
	msgs := []kafka.Message{
		testkit.Msg(t, engine.Event{Kind: engine.KindOutage, EventID: "q-o1", SIREN: quiet, EventTime: t0, OutageID: "o1", SiteID: "s", PostalCode: "75001", Status: engine.OutageStarted}),
		testkit.Msg(t, engine.Event{Kind: engine.KindOutage, EventID: "q-o2", SIREN: quiet, EventTime: t0 + 5*hour, OutageID: "o1", SiteID: "s", PostalCode: "75001", Status: engine.OutageResolved}),
	}
	for d := int64(0); d < 100; d++ {
		msgs = append(msgs, testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: fmt.Sprint("b", d), SIREN: busy,
			EventTime: t0 + 6*hour + d*day, SiteID: "b", PostalCode: "13001", BytesUp: 1e6}))
	}
	testkit.Produce(t, brokers, msgs...)

	cfg := testkit.Config(t, brokers, t.TempDir())
	cfg.IdleTickInterval, cfg.IdleTickLag = 50*time.Millisecond, time.Hour
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, int64(len(msgs)), parts, 60*time.Second)
	decayed := func() (bool, string) {
		var last *schemas.SegmentChange
		for _, c := range testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")) {
			if c.SIREN == quiet {
				last = c
			}
		}
		if last == nil || slices.Contains(last.Segments, "RECOVERY_EXPOSED") || last.Trigger != engine.TriggerDayChange {
			return false, fmt.Sprintf("last change of the quiet SIREN %+v", last)
		}
		return true, ""
	}
	if ok, why := testkit.Poll(60*time.Second, 100*time.Millisecond, decayed); !ok {
		t.Fatalf("the quiet partition never changed day: %s", why)
	}
	// Once partition 1 caught up with its ticks, stop.
	h.Stop(t)
	ticks := testkit.ReadAll(t, brokers, "sirenstream-ticks")
	if len(ticks) == 0 {
		t.Fatal("no tick written")
	}
	for _, m := range ticks {
		if m.Partition != 1 {
			t.Fatalf("tick on partition %d: only the quiet partition 1 is behind", m.Partition)
		}
	}

	live := map[string]string{}
	for _, m := range testkit.ReadAll(t, brokers, "segment-changes") {
		c, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		live[c.EventID] = string(m.Value)
	}
	_, replayed := testkit.ReplayToMemory(t, brokers, processor.ReplayOptions{OutputTopic: "replayed"})
	n := 0
	for _, m := range replayed {
		if m.Topic != "replayed" {
			continue
		}
		n++
		c, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if live[c.EventID] != string(m.Value) {
			t.Errorf("replay's %s differs from the live run's", c.EventID)
		}
	}
	if n != len(live) {
		t.Fatalf("replay emitted %d changes, the live run %d", n, len(live))
	}
}
