package processor_test

import (
	"context"
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
	"github.com/sirenstream/sirenstream/state"
)

// finalSegments is every SIREN's segments in a run's output: the segments of
// its last event (deduplicated by event_id, in partition order).
func finalSegments(t *testing.T, msgs []kafka.Message) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range testkit.Dedup(testkit.Changes(t, msgs)) {
		out[c.SIREN] = strings.Join(c.Segments, ",")
	}
	return out
}

// storedSegments reads every SIREN's stored segments from a closed store.
func storedSegments(t *testing.T, dir string, parts int) map[string]string {
	t.Helper()
	st, err := processor.OpenStore(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]string{}
	for p := 0; p < parts; p++ {
		if err := st.Scan(int32(p), func(siren string, val []byte) error {
			s, err := engine.UnmarshalState(siren, val)
			if err != nil {
				return err
			}
			out[siren] = strings.Join(s.Segments().Names(), ",")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func diffSegments(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s: %q vs %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok && v != "" {
			d = append(d, fmt.Sprintf("%s: missing vs %q", k, v))
		}
	}
	slices.Sort(d)
	return d
}

// TestTopicsLoadedOneAfterAnotherConvergeToTheReplay: the processor runs
// live while whole topics are loaded one after another (usage, then
// profiles, outages, claims), the arrival order the README's `generate`
// used to give and that platform teams give when they backfill. Records
// of closed stream days are repaired, not dropped: once every input is
// consumed, every SIREN's stored segments and the segments of its last
// emitted event (corrections included) equal those of a replay.
func TestTopicsLoadedOneAfterAnotherConvergeToTheReplay(t *testing.T) {
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs := testkit.Generated(t, gen.Config{SIRENs: 300, Days: 100, Seed: 5, BadRate: 0.002})
	byTopic := map[string][]kafka.Message{}
	for _, m := range msgs {
		byTopic[m.Topic] = append(byTopic[m.Topic], m)
	}

	dir := t.TempDir()
	cfg := testkit.Config(t, brokers, dir)
	cfg.MaxTaskIdle = 300 * time.Millisecond
	h := testkit.Start(t, cfg)
	var total int64
	for _, topic := range []string{"usage", "profiles", "outages", "claims"} {
		testkit.Produce(t, brokers, byTopic[topic]...)
		total += int64(len(byTopic[topic]))
		h.WaitConsumed(t, total, parts, 90*time.Second)
	}
	consumed, processed, dead := testkit.Sum(h.P.Progress())
	h.Stop(t)
	if consumed != int64(len(msgs)) || processed+dead != consumed {
		t.Fatalf("accounting: consumed %d = processed %d + dead-lettered %d, want %d consumed", consumed, processed, dead, len(msgs))
	}
	live := testkit.ReadAll(t, brokers, "segment-changes")
	repairs := 0
	for _, c := range testkit.Changes(t, live) {
		if c.Trigger == engine.TriggerRepair {
			repairs++
		}
	}

	rdir := t.TempDir()
	rcfg := testkit.Config(t, brokers, rdir)
	rp, err := processor.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rp.Replay(ctx, processor.ReplayOptions{OutputTopic: "replayed"}); err != nil {
		t.Fatal(err)
	}
	if err := rcfg.Store.Close(); err != nil {
		t.Fatal(err)
	}
	replayed := testkit.ReadAllFresh(t, brokers, "replayed")

	if d := diffSegments(storedSegments(t, rdir, parts), storedSegments(t, dir, parts)); len(d) > 0 {
		t.Fatalf("stored segments: %d SIRENs differ from the replay (replay vs live), e.g. %v", len(d), d[:min(len(d), 5)])
	}
	if d := diffSegments(finalSegments(t, replayed), finalSegments(t, live)); len(d) > 0 {
		t.Fatalf("last emitted segments: %d SIRENs differ from the replay (replay vs live), e.g. %v", len(d), d[:min(len(d), 5)])
	}
	rdead := testkit.ReadAllFresh(t, brokers, "replayed-dlq")
	ldead := testkit.ReadAll(t, brokers, "sirenstream-dlq")
	if len(ldead) != len(rdead) || int64(len(ldead)) != dead {
		t.Fatalf("dead letters: live %d (counted %d), replay %d", len(ldead), dead, len(rdead))
	}
	t.Logf("%d records, %d live changes (%d corrections with trigger REPAIR), %d replayed changes, %d dead letters",
		len(msgs), len(live), repairs, len(replayed), len(ldead))
	if repairs == 0 {
		t.Fatal("loading topics one after another should have needed repairs")
	}
}
