package ops_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestRecentChangesSurviveARestart: an instance processes the workload and
// stops; it restarts from its state directory beside a second instance of
// the group, so partitions move and nothing is left to process. Each
// instance's /v1/changes then holds the latest changes of the partitions it
// owns now — read from the output topic's tail, since neither emitted them
// in this run — newest event time first, and the live page shows them with
// both group members.
func TestRecentChangesSurviveARestart(t *testing.T) {
	const parts = 3
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs, _ := workload(t, 60, 60)
	testkit.Produce(t, brokers, msgs...)

	dirA := t.TempDir()
	first := startInstance(t, brokers, "ops-restart", dirA, "")
	first.H.WaitConsumed(t, int64(len(msgs)), parts, 60*time.Second)
	first.Stop()

	out := testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes"))
	a := startInstance(t, brokers, "ops-restart", dirA, "")
	b := startInstance(t, brokers, "ops-restart", t.TempDir(), "")
	waitPair(t, parts, a, b)

	for name, in := range map[string]*instance{"restarted": a, "new": b} {
		owned := in.H.P.Owned()
		var want []*schemas.SegmentChange
		for _, c := range out {
			if slices.Contains(owned, processor.PartitionOf(c.SIREN, parts)) {
				want = append(want, c)
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return want[i].EventTime > want[j].EventTime })
		want = want[:min(len(want), 100)]
		if len(want) < 3 {
			t.Fatalf("%s instance: %d changes on its partitions %v: too few", name, len(want), owned)
		}
		poll(t, 20*time.Second, func() error {
			var got struct{ Changes []recentEntry }
			if status := getJSON(t, in.URL+"/v1/changes", &got); status != http.StatusOK {
				return fmt.Errorf("HTTP %d", status)
			}
			ids := map[string]bool{}
			for i, c := range got.Changes {
				ids[c.EventID] = true
				if i > 0 && c.EventTime > got.Changes[i-1].EventTime {
					return fmt.Errorf("change %s (%d) after %s (%d): not newest first", c.EventID, c.EventTime, got.Changes[i-1].EventID, got.Changes[i-1].EventTime)
				}
				if !slices.Contains(owned, c.Partition) {
					return fmt.Errorf("change %s of partition %d, not owned (%v)", c.EventID, c.Partition, owned)
				}
			}
			for _, w := range want {
				if !ids[w.EventID] {
					return fmt.Errorf("%d changes listed; %s (%s) of the output topic missing", len(got.Changes), w.EventID, time.UnixMilli(w.EventTime).UTC())
				}
			}
			return nil
		})
		t.Logf("%s instance (partitions %v): %d recent changes, all from the output topic", name, owned, len(want))
	}

	// The restarted instance's page: changes, both members, and a SIREN of
	// the other instance answered through it.
	var siren string
	for _, c := range out {
		if slices.Contains(b.H.P.Owned(), processor.PartitionOf(c.SIREN, parts)) && len(c.Segments) > 1 {
			siren = c.SIREN
		}
	}
	if siren == "" {
		t.Fatal("no SIREN with two segments on the other instance's partitions")
	}
	browserPageChecks(t, a.URL+"/#"+siren, "screenshot-restart.png", []pageCheck{
		{"data loaded", `<body[^>]*data-loaded="1"`, 1},
		{"ready pill", `<span id="ready" class="pill ok">ready</span>`, 1},
		{"recent changes", `<tr class="change">`, 3},
		{"two members", `class="memberrow`, 2},
		{"this instance among the members", `class="memberrow self"`, 1},
		{"lookup answered by the owner", `answered by ` + b.URL[len("http://"):], 1},
		{"lag per input", `class="inputrow"`, 4},
		{"no dead letters since the restart", `no dead letters`, 1},
	})
}

// recentEntry is the part of a /v1/changes entry the test reads.
type recentEntry struct {
	Partition int32  `json:"partition"`
	EventID   string `json:"event_id"`
	EventTime int64  `json:"event_time"`
}
