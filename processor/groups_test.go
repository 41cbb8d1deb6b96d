package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// Spec §8 (Isolation): two groups on one cluster never share state. These
// tests run processors of groups app-a and app-b on the same input topics.

const groupParts = 3

// groupsCluster starts a broker with the default topics and the generated
// history produced to the inputs.
func groupsCluster(t *testing.T) ([]string, []kafka.Message) {
	t.Helper()
	_, brokers := testkit.Cluster(t, groupParts)
	testkit.CreateTopics(t, brokers, groupParts)
	all := testkit.Generated(t, gen.Config{SIRENs: 90, Days: 40, Seed: 11})
	testkit.Produce(t, brokers, all...)
	return brokers, all
}

func groupConfig(t *testing.T, brokers []string, dir, group, changelog string) processor.Config {
	cfg := testkit.Config(t, brokers, dir)
	cfg.Group = group
	cfg.Topics.Changelog = changelog
	return cfg
}

// runToEnd runs cfg's processor until it consumed total records, then stops
// it.
func runToEnd(t *testing.T, cfg processor.Config, total int) *processor.Processor {
	t.Helper()
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, int64(total), groupParts, 120*time.Second)
	h.Stop(t)
	return h.P
}

// refused starts cfg's processor and returns the error it exits with.
func refused(t *testing.T, cfg processor.Config) error {
	t.Helper()
	h := testkit.Start(t, cfg)
	defer h.Store.Close()
	var err error
	if ok, why := testkit.Poll(60*time.Second, 50*time.Millisecond, func() (bool, string) {
		err = h.Err()
		return err != nil, "the processor is still running"
	}); !ok {
		t.Fatal(why)
	}
	if !errors.Is(err, processor.ErrOtherGroup) {
		t.Fatalf("exit error %v, want ErrOtherGroup", err)
	}
	return err
}

// checkpointGroups returns the groups named by the checkpoint records of a
// changelog topic (one entry per record).
func checkpointGroups(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	var groups []string
	for _, m := range testkit.ReadAllFresh(t, brokers, topic) {
		if !bytes.Equal(m.Key, []byte("\x00checkpoint")) {
			continue
		}
		cp, err := state.ParseCheckpoint(m.Value)
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
		}
		groups = append(groups, cp.Group)
	}
	return groups
}

// Issue 20, part 4: a second group with a fresh state directory, started
// while the first runs on the same inputs and after it processed them all,
// processes every record itself (nothing restored from the first); each
// writes its own <group>-changelog whose checkpoint records name it, the
// default group's changelog stays empty, and both end with the same state.
func TestTwoGroupsOnOneClusterNeverShareState(t *testing.T) {
	brokers, all := groupsCluster(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := testkit.Start(t, groupConfig(t, brokers, dirA, "app-a", ""))
	a.WaitConsumed(t, int64(len(all)), groupParts, 120*time.Second)
	b := testkit.Start(t, groupConfig(t, brokers, dirB, "app-b", ""))
	for _, h := range []*testkit.Harness{a, b} {
		h.WaitConsumed(t, int64(len(all)), groupParts, 120*time.Second)
		if _, records, _ := restoreStats(h.P); records != 0 {
			t.Errorf("a group restored %d changelog records on a fresh directory", records)
		}
		if consumed, processed, dead := testkit.Sum(h.P.Progress()); consumed != int64(len(all)) || processed+dead != consumed {
			t.Errorf("consumed %d (processed %d, dead-lettered %d), want every one of %d", consumed, processed, dead, len(all))
		}
	}
	a.Stop(t)
	b.Stop(t)

	ends := testkit.EndOffsets(t, brokers, []string{"app-a-changelog", "app-b-changelog", topology.DefaultChangelog}, groupParts)
	for p := 0; p < groupParts; p++ {
		for _, cl := range []string{"app-a-changelog", "app-b-changelog"} {
			if n := ends[fmt.Sprintf("%s/%d", cl, p)]; n == 0 {
				t.Errorf("%s/%d is empty", cl, p)
			}
		}
		if n := ends[fmt.Sprintf("%s/%d", topology.DefaultChangelog, p)]; n != 0 {
			t.Errorf("%s/%d has %d records: the default group's changelog was written", topology.DefaultChangelog, p, n)
		}
	}
	for group, cl := range map[string]string{"app-a": "app-a-changelog", "app-b": "app-b-changelog"} {
		groups := checkpointGroups(t, brokers, cl)
		if len(groups) == 0 {
			t.Errorf("%s has no checkpoint record", cl)
		}
		for _, g := range groups {
			if g != group {
				t.Fatalf("%s holds a checkpoint record of group %q", cl, g)
			}
		}
	}
	if testkit.DumpState(t, dirA, groupParts, "app-a-changelog") != testkit.DumpState(t, dirB, groupParts, "app-b-changelog") {
		t.Error("the two groups ended with different states from the same input")
	}
}

// A processor told to restore from another group's changelog exits with
// ErrOtherGroup and says what to do, whether its directory is fresh or
// holds its own state, which the refusal leaves untouched.
func TestRestoreFromAnotherGroupsChangelogIsRefused(t *testing.T) {
	brokers, all := groupsCluster(t)
	runToEnd(t, groupConfig(t, brokers, t.TempDir(), "app-a", ""), len(all))

	err := refused(t, groupConfig(t, brokers, t.TempDir(), "app-b", "app-a-changelog"))
	for _, want := range []string{
		`changelog app-a-changelog was written by group "app-a"`,
		`this is group "app-b": refusing another consumer group's state`,
		`(use --topic-changelog app-b-changelog, this group's default, or another fresh topic)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A directory with app-b's own state is not dropped by the refusal.
	dirB := t.TempDir()
	runToEnd(t, groupConfig(t, brokers, dirB, "app-b", ""), len(all))
	before := testkit.DumpState(t, dirB, groupParts, "app-b-changelog")
	refused(t, groupConfig(t, brokers, dirB, "app-b", "app-a-changelog"))
	if testkit.DumpState(t, dirB, groupParts, "app-b-changelog") != before {
		t.Error("the refused restore changed the local state")
	}
	runToEnd(t, groupConfig(t, brokers, dirB, "app-b", ""), 0)
}

// A state directory used by one group is refused to another, even with its
// own changelog: its state and offsets are the first group's.
func TestStateDirectoryOfAnotherGroupIsRefused(t *testing.T) {
	brokers, all := groupsCluster(t)
	dir := t.TempDir()
	runToEnd(t, groupConfig(t, brokers, dir, "app-a", ""), len(all))
	err := refused(t, groupConfig(t, brokers, dir, "app-b", ""))
	want := `state directory ` + dir + ` holds the state of group "app-a"; this is group "app-b": ` +
		`refusing another consumer group's state (use a fresh --state-dir for group "app-b", or run with --group "app-a")`
	if err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// A changelog written before checkpoint records named their group (the
// default group's sirenstream-changelog of an older build) still restores,
// with one WARN for the whole processor.
func TestLegacyChangelogStillRestores(t *testing.T) {
	brokers, all := groupsCluster(t)
	dirA := t.TempDir()
	runToEnd(t, groupConfig(t, brokers, dirA, "app-a", ""), len(all))
	original := testkit.DumpState(t, dirA, groupParts, "app-a-changelog")

	// The legacy changelog: app-a's records, checkpoints without a group.
	client, done := testkit.Client(brokers)
	defer done()
	byPart := make([][]kafka.Record, groupParts)
	for _, m := range testkit.ReadAllFresh(t, brokers, "app-a-changelog") {
		v := m.Value
		if bytes.Equal(m.Key, []byte("\x00checkpoint")) {
			cp, err := state.ParseCheckpoint(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			cp.Group = ""
			v = state.AppendCheckpoint(nil, cp)
			if v[0] != 1 {
				t.Fatalf("checkpoint without a group encoded as version %d", v[0])
			}
		}
		r := kafka.Record{Key: kafka.NewBytes(m.Key)}
		if v != nil {
			r.Value = kafka.NewBytes(v)
		}
		byPart[m.Partition] = append(byPart[m.Partition], r)
	}
	for p, recs := range byPart {
		resp, err := client.Produce(context.Background(), &kafka.ProduceRequest{
			Topic: topology.DefaultChangelog, Partition: p, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...),
		})
		if err != nil || resp.Error != nil {
			t.Fatalf("produce the legacy changelog: %v %v", err, resp.Error)
		}
	}
	for _, g := range checkpointGroups(t, brokers, topology.DefaultChangelog) {
		if g != "" {
			t.Fatalf("legacy changelog names group %q", g)
		}
	}

	// The default group (changelog name unchanged) restores it.
	dir := t.TempDir()
	cfg := groupConfig(t, brokers, dir, "", "")
	core, logs := observer.New(zap.WarnLevel)
	cfg.Logger = zap.New(core)
	p := runToEnd(t, cfg, 0)
	if sirens, _, full := restoreStats(p); full != groupParts || sirens < 90 {
		t.Fatalf("%d partitions fully restored with %d SIRENs, want %d and ≥ 90", full, sirens, groupParts)
	}
	if n := logs.FilterMessageSnippet("name no group").Len(); n != 1 {
		t.Errorf("%d WARNs about checkpoint records without a group, want 1: %v", n, logs.All())
	}
	if testkit.DumpState(t, dir, groupParts, topology.DefaultChangelog) != original {
		t.Error("state restored from the legacy changelog differs from the original")
	}
}

// The upgrade of a non-default group that used the shared
// sirenstream-changelog: restarted with the new default, it seeds the empty
// <group>-changelog with its local state, so that a fresh directory
// restores every SIREN from it.
func TestUpgradeSeedsTheGroupChangelogFromLocalState(t *testing.T) {
	brokers, all := groupsCluster(t)
	dir := t.TempDir()
	runToEnd(t, groupConfig(t, brokers, dir, "app-a", topology.DefaultChangelog), len(all))

	p := runToEnd(t, groupConfig(t, brokers, dir, "app-a", ""), 0)
	if _, records, _ := restoreStats(p); records != 0 {
		t.Errorf("the upgrade restored %d changelog records; want the local state kept", records)
	}
	// The old changelog's position stays in the checkpoints until their
	// next commit (positions are read by name: harmless); leave it out.
	local := dropLines(testkit.DumpState(t, dir, groupParts, "app-a-changelog"), topology.DefaultChangelog)

	fresh := t.TempDir()
	p = runToEnd(t, groupConfig(t, brokers, fresh, "app-a", ""), 0)
	if sirens, _, full := restoreStats(p); full != groupParts || sirens < 90 {
		t.Fatalf("fresh directory: %d partitions fully restored with %d SIRENs, want %d and ≥ 90", full, sirens, groupParts)
	}
	if got := dropLines(testkit.DumpState(t, fresh, groupParts, "app-a-changelog"), topology.DefaultChangelog); got != local {
		t.Error("state restored from the seeded changelog differs from the local state")
	}
}

// dropLines removes the lines that contain s.
func dropLines(dump, s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(dump, "\n") {
		if !strings.Contains(l, s) {
			b.WriteString(l)
		}
	}
	return b.String()
}
