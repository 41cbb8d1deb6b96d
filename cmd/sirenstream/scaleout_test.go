package main

import (
	"bytes"
	"context"
	"fmt"

	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

// groupProgress sums the consumer group's committed offsets over the input
// topics (what lag tools see; the processor commits them after its state).
func groupProgress(t *testing.T, brokers []string, group string, parts int) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, topic := range []string{"usage", "outages", "claims", "profiles"} {
		for p := 0; p < parts; p++ {
			req.Topics[topic] = append(req.Topics[topic], p)
		}
	}
	resp, err := client.OffsetFetch(context.Background(), req)
	if err != nil || resp.Error != nil {
		return -1
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum
}

// changelogRecords is the sum of the end offsets of group's changelog
// partitions.
func changelogRecords(t *testing.T, brokers []string, group string, parts int) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < parts; p++ {
		cl := topology.ChangelogName(group)
		req.Topics[cl] = append(req.Topics[cl], kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		return -1
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error == nil && p.LastOffset > 0 {
				sum += p.LastOffset
			}
		}
	}
	return sum
}

type instance struct {
	name string
	cmd  *exec.Cmd
	log  *testkit.LockedBuffer
}

// TestScaleOutKillAndAdd: an instance is SIGKILLed mid-stream, two others
// take its partitions over and a third joins while they work (three
// instances share the group at the end). Partitions move
// with their state (restored from the changelog) and the final segments, and
// the deduplicated segment changes, equal a single-instance run over the
// same input. Every duplicate is byte-identical to its first copy.
func TestScaleOutKillAndAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process scale-out test")
	}
	bin := buildBinary(t)
	const parts = 6
	const group = "scale"
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)

	// All input is present before the instances start: with records still
	// arriving, the live merge order may legitimately differ from a replay's
	// (README: live vs replay order), and this test compares with a replay-
	// like single-instance run. Rebalances still happen mid-stream.
	all := testkit.Generated(t, gen.Config{SIRENs: 1200, Days: 90, Seed: 9})
	testkit.Produce(t, brokers, all...)

	root := t.TempDir()
	var running []*instance
	start := func(name string) *instance {
		in := &instance{name: name, log: &testkit.LockedBuffer{}}
		in.cmd = exec.Command(bin, "run", "--brokers", brokers[0], "--group", group,
			"--state-dir", filepath.Join(root, name), "--session-timeout", "3s",
			"--commit-interval", "50ms", "--catchup-commit-interval", "50ms",
			"--log-format", "console", "--log-level", "info")
		in.cmd.Stderr = in.log
		if err := in.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running = append(running, in)
		return in
	}
	defer func() {
		for _, in := range running {
			if in.cmd.ProcessState == nil {
				_ = in.cmd.Process.Kill()
				_ = in.cmd.Wait()
			}
		}
		if t.Failed() {
			for _, in := range running {
				t.Logf("=== instance %s log (tail)\n%s", in.name, tail(in.log.String(), 3000))
			}
		}
	}()
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timeout waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// b starts alone and is SIGKILLed mid-stream, once it has committed
	// some batches (their states are in the changelog) but long before the
	// end; a and c then take over its partitions, restoring from the
	// changelog, and d joins while they work. A kill during the group join
	// itself is avoided: kfake never expires a member that joined but did
	// not sync, so its partitions would stall.
	b := start("b")
	waitFor("b processing and committing", 90*time.Second, func() bool {
		return strings.Contains(b.log.String(), "task loaded") && changelogRecords(t, brokers, group, parts) >= 2000
	})
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Wait()
	t.Logf("killed b with %d changelog records and %d input records in group offsets (of %d)",
		changelogRecords(t, brokers, group, parts), groupProgress(t, brokers, group, parts), len(all))
	a := start("a")
	start("c")
	waitFor("a processing its partitions", 60*time.Second, func() bool {
		return strings.Contains(a.log.String(), "task loaded")
	})
	d := start("d")
	waitFor("every input record committed", 150*time.Second, func() bool {
		return groupProgress(t, brokers, group, parts) == int64(len(all))
	})
	// d must own partitions (and have its signal handler) before SIGTERM.
	waitFor("d processing its partitions", 60*time.Second, func() bool {
		return strings.Contains(d.log.String(), "task loaded")
	})
	for _, in := range running {
		if in == b {
			continue
		}
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, in := range running {
		if in == b {
			continue
		}
		if err := in.cmd.Wait(); err != nil {
			t.Fatalf("instance %s did not stop cleanly: %v", in.name, err)
		}
	}
	out := testkit.ReadAll(t, brokers, "segment-changes")

	// Reference: one instance, same input.
	_, refBrokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, refBrokers, parts)
	testkit.Produce(t, refBrokers, all...)
	ref := testkit.Start(t, testkit.Config(t, refBrokers, t.TempDir()))
	ref.WaitConsumed(t, int64(len(all)), parts, 120*time.Second)
	ref.Stop(t)
	refOut := testkit.ReadAll(t, refBrokers, "segment-changes")

	// Duplicates (re-emitted after the kill or a rebalance) are byte-identical.
	firstCopy := map[string][]byte{}
	dups := 0
	for _, m := range out {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := firstCopy[sc.EventID]; ok {
			dups++
			if !bytes.Equal(prev, m.Value) {
				t.Fatalf("event %s re-emitted with different bytes", sc.EventID)
			}
			continue
		}
		firstCopy[sc.EventID] = m.Value
	}
	got, want := summary(t, out), summary(t, refOut)
	if got != want {
		t.Fatalf("scaled-out outputs differ from a single instance:\n got %d distinct events\nwant %d distinct events", len(firstCopy), len(testkit.Dedup(testkit.Changes(t, refOut))))
	}
	t.Logf("%d input records, %d segment changes (%d duplicates, all identical), 4 instances, 1 killed", len(all), len(firstCopy), dups)
}

// summary is the deduplicated set of segment changes plus the final segments
// of every SIREN, in a canonical order.
func summary(t *testing.T, msgs []kafka.Message) string {
	cs := testkit.Dedup(testkit.Changes(t, msgs))
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "%s|%d|%v|%v|%v|%d|%v\n", c.SIREN, c.Seq, c.Segments, c.Added, c.Removed, c.EventTime, c.Offers)
	}
	latest := testkit.Latest(cs)
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "final %s %v\n", k, latest[k].Segments)
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
