package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestSIGTERMAtTheEndOfTheInputWritesEachEventOnce: a clean stop never
// duplicates. Each round starts `run` on a fresh state directory over the
// same input and sends SIGTERM the moment it has consumed the whole input —
// while its last batches are being written (commits every 20 ms). A stop
// used to cut the write in flight and write the batch again at shutdown;
// the batch in flight now finishes, so every output holds each event once,
// and each round holds the same events as the first.
func TestSIGTERMAtTheEndOfTheInputWritesEachEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("drives broker and processor processes for about half a minute")
	}
	bin := buildBinary(t)
	addr, _ := startBroker(t, bin) // 3 partitions
	brokers := []string{addr}
	const parts = 3
	gen := exec.Command(bin, "generate", "--brokers", addr, "--sirens", "600", "--days", "70",
		"--bad-rate", "0.002", "--seed", "11", "--partitions", strconv.Itoa(parts), "--outcomes=false")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	ends := testkit.EndOffsets(t, brokers, testkit.InputTopics, parts)
	var events int64
	for _, e := range ends {
		events += e
	}
	const rounds = 8
	var want map[string]bool // event ids of the first round
	for i := 0; i < rounds; i++ {
		run := newCrashRun(t, bin, addr, fmt.Sprintf("stop%d", i))
		p := run.start(fmt.Sprintf("stop-%d", i), 0)
		p.waitProgress(events, 120*time.Second)
		run.stop(p)
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("round %d: exit status %d after SIGTERM:\n%s", i, code, tail(p.log.String(), 3000))
		}
		changes := testkit.ReadAllFresh(t, brokers, run.name+"-changes")
		_, dups := crashDedup(t, changes, func(m kafka.Message) string { return string(m.Key) + "/" + eventID(t, m) })
		dlq := testkit.ReadAllFresh(t, brokers, run.name+"-dlq")
		_, dlqDups := crashDedup(t, dlq, func(m kafka.Message) string {
			return header(m, "source.topic") + "/" + header(m, "source.partition") + "@" + header(m, "source.offset")
		})
		if dups+dlqDups > 0 {
			t.Fatalf("round %d: a clean stop wrote %d segment changes and %d dead letters twice", i, dups, dlqDups)
		}
		got := map[string]bool{}
		for _, m := range changes {
			got[eventID(t, m)] = true
		}
		if len(dlq) == 0 || len(got) == 0 {
			t.Fatalf("round %d: %d segment changes, %d dead letters: the input should produce both", i, len(got), len(dlq))
		}
		if want == nil {
			want = got
			t.Logf("round 0: %d segment changes, %d dead letters from %d input records", len(got), len(dlq), events)
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d distinct segment changes, round 0 had %d", i, len(got), len(want))
		}
		for id := range want {
			if !got[id] {
				t.Fatalf("round %d lacks %s", i, id)
			}
		}
	}
}

// eventID is a segment change's event_id.
func eventID(t *testing.T, m kafka.Message) string {
	t.Helper()
	d, err := schemas.DecodeSegmentChange(m.Value)
	if err != nil {
		t.Fatalf("%s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
	}
	return d.EventID
}

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}
