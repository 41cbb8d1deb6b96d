package processor_test

import (
	"bytes"
	"context"
	"net"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// faultData is generated input with some bad records, split in n parts by
// position (each part ends on whole days, since gen emits in time order).
func faultData(t *testing.T, cfg gen.Config, n int) [][]kafka.Message {
	t.Helper()
	all := testkit.Generated(t, cfg)
	out := make([][]kafka.Message, n)
	for i := range n {
		out[i] = all[i*len(all)/n : (i+1)*len(all)/n]
	}
	return out
}

// undisturbed replays the cluster's inputs from scratch into memory: the
// output of a run that met no fault.
func undisturbed(t *testing.T, brokers []string) (changes, dlq []kafka.Message) {
	t.Helper()
	_, out := testkit.ReplayToMemory(t, brokers, processor.ReplayOptions{OutputTopic: "segment-changes", DLQTopic: "sirenstream-dlq"})
	for _, m := range out {
		switch m.Topic {
		case "segment-changes":
			changes = append(changes, m)
		case "sirenstream-dlq":
			dlq = append(dlq, m)
		}
	}
	return changes, dlq
}

// sameOutput asserts the live topics hold the reference output: segment
// changes equal after dedup by event_id, a duplicated event_id always with
// the same bytes, and every reference dead letter present.
func sameOutput(t *testing.T, brokers []string, refChanges, refDLQ []kafka.Message) {
	t.Helper()
	live := testkit.ReadAll(t, brokers, "segment-changes")
	byID := map[string][]byte{}
	for _, m := range live {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := byID[sc.EventID]; ok && !bytes.Equal(prev, m.Value) {
			t.Errorf("event %s re-emitted with different bytes", sc.EventID)
		}
		byID[sc.EventID] = m.Value
	}
	want := map[string][]byte{}
	for _, m := range refChanges {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		want[sc.EventID] = m.Value
	}
	if len(want) == 0 {
		t.Fatal("reference run produced no segment changes")
	}
	if len(byID) != len(want) {
		t.Errorf("%d distinct segment changes (%d records), the undisturbed run has %d", len(byID), len(live), len(want))
	}
	for id, v := range want {
		if !bytes.Equal(byID[id], v) {
			t.Errorf("segment change %s missing or different", id)
		}
	}
	key := testkit.DLQKey
	liveDLQ := map[string]bool{}
	for _, m := range testkit.ReadAll(t, brokers, "sirenstream-dlq") {
		liveDLQ[key(m)] = true
	}
	var missing []string
	refKeys := map[string]bool{}
	for _, m := range refDLQ {
		refKeys[key(m)] = true
		if !liveDLQ[key(m)] {
			missing = append(missing, key(m))
		}
	}
	for k := range liveDLQ {
		if !refKeys[k] {
			t.Errorf("dead letter %s not in the undisturbed run", k)
		}
	}
	if len(refDLQ) == 0 || len(missing) > 0 || len(liveDLQ) != len(refDLQ) {
		sort.Strings(missing)
		t.Errorf("dead letters: %d distinct live, %d in the undisturbed run; missing %v", len(liveDLQ), len(refDLQ), missing)
	}
}

// TestBrokerUnreachableFor30s: mid-stream the broker becomes unreachable
// for 30 s (every connection dropped, new ones refused: longer than the group
// session timeout), and the second half of the input is written meanwhile.
// The processor does not exit, reconnects by itself when the broker is back,
// and the final output equals an undisturbed run.
func TestBrokerUnreachableFor30s(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s outage")
	}
	const parts = 2
	_, proxy, brokers := testkit.ProxiedCluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	data := faultData(t, gen.Config{SIRENs: 60, Days: 40, Seed: 5, BadRate: 0.02}, 2)

	testkit.Produce(t, brokers, data[0]...)
	h := testkit.Start(t, testkit.Config(t, brokers, t.TempDir()))
	h.WaitStored(t, brokers, parts, 60*time.Second)

	proxy.Down()
	outage := time.Now()
	// Only the test reaches the broker behind the proxy.
	direct := &kafka.Transport{Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, proxy.Target())
	}}
	w := load.Writer(brokers, direct)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := w.WriteMessages(ctx, data[1]...); err != nil {
		t.Fatalf("produce during the outage: %v", err)
	}
	cancel()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for time.Since(outage) < 30*time.Second {
		if err := h.Err(); err != nil {
			t.Fatalf("processor exited during the outage: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // the outage's length, polled for an early exit
	}
	if err := proxy.Up(); err != nil {
		t.Fatalf("proxy up: %v", err)
	}
	h.WaitStored(t, brokers, parts, 90*time.Second)
	t.Logf("caught up %s after the broker came back", time.Since(outage)-30*time.Second)
	h.Stop(t)

	refChanges, refDLQ := undisturbed(t, brokers)
	sameOutput(t, brokers, refChanges, refDLQ)
}

// TestUnwritableOutputStopsProgress: while the broker refuses produce
// requests to sirenstream-dlq (then, after a restart, to segment-changes),
// a task whose outputs cannot be written keeps its state checkpoint where it
// was (nothing committed past them) and drops nothing; when the topic is
// writable again it continues, and the output equals an undisturbed run.
func TestUnwritableOutputStopsProgress(t *testing.T) {
	const parts = 2
	c, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	data := faultData(t, gen.Config{SIRENs: 60, Days: 40, Seed: 6, BadRate: 0.03}, 2)
	dir := t.TempDir()

	for i, topic := range []string{"sirenstream-dlq", "segment-changes"} {
		// One fault per partition: a task whose write is refused must hold
		// its checkpoint; another task may commit records without outputs.
		faults := make([]*kfake.FaultHandle, parts)
		for p := range faults {
			faults[p] = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{int32(p)}, Err: kerr.NotEnoughReplicas, Count: -1})
		}
		testkit.Produce(t, brokers, data[i]...)
		cfg := testkit.Config(t, brokers, dir)
		cfg.CommitRecords = 100 // several commits per partition: the fault hits mid-stream
		h := testkit.Start(t, cfg)
		blocked := map[int32]map[string]int64{}
		for deadline := time.Now().Add(30 * time.Second); len(blocked) == 0; {
			for p, f := range faults {
				if f.Hits() >= 2 {
					// The task is inside a commit that cannot finish: what
					// the store holds now must not move until the fault ends.
					blocked[int32(p)] = checkpoints(t, h, parts)[int32(p)]
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the processor never tried to write", topic)
			}
			time.Sleep(20 * time.Millisecond) // polling the fault counters
		}
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			now := checkpoints(t, h, parts)
			for p, before := range blocked {
				if !reflect.DeepEqual(now[p], before) {
					t.Fatalf("%s/%d unwritable, yet partition %d's checkpoint advanced:\nbefore %v\nnow    %v", topic, p, p, before, now[p])
				}
			}
			if err := h.Err(); err != nil {
				t.Fatalf("processor exited: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // polling the store while the fault holds
		}
		for p, f := range faults {
			t.Logf("%s/%d: %d produce requests refused", topic, p, f.Hits())
			f.Remove()
		}
		t.Logf("%s: checkpoints held at %v while refused", topic, blocked)
		h.WaitStored(t, brokers, parts, 60*time.Second)
		h.Stop(t)
	}

	refChanges, refDLQ := undisturbed(t, brokers)
	sameOutput(t, brokers, refChanges, refDLQ)
}

// checkpoints returns the stored input offsets of each partition.
func checkpoints(t *testing.T, h *testkit.Harness, parts int) map[int32]map[string]int64 {
	t.Helper()
	out := map[int32]map[string]int64{}
	for p := int32(0); p < int32(parts); p++ {
		cp, ok, err := h.Store.Checkpoint(p)
		if err != nil {
			t.Fatalf("checkpoint %d: %v", p, err)
		}
		if ok {
			out[p] = cp.Offsets
		}
	}
	return out
}
