package processor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/topology"
)

// rolloutRules are the default thresholds moved enough to change many
// SIRENs of a generated history, under version "v2".
func rolloutRules(version string) *engine.Rules {
	r := engine.DefaultRules()
	r.Version = version
	r.RecoveryExposed = engine.Threshold{Enter: 2.5, Exit: 1.5}
	r.MultiSite = engine.Threshold{Enter: 3, Exit: 3}
	r.DataHungry = engine.Threshold{Enter: 70, Exit: 65}
	return r
}

// TestRulesRollout (issue 16, rule rollouts): a live run restarted with a
// new rules version on its state re-evaluates every SIREN of each partition
// before reading anything and emits the changes, trigger RULES_ROLLOUT,
// labelled with the new version, in SIREN order, each SIREN's seq following
// its last event; two rollouts of the same state give the same bytes; a
// restart after the rollout emits nothing more; the same version with other
// thresholds is refused.
func TestRulesRollout(t *testing.T) {
	const parts = 2
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 300, Days: 75, Seed: 16})
	config := func(dir string, rules *engine.Rules, out string) processor.Config {
		cfg := testkit.Config(t, brokers, dir)
		cfg.Rules = rules
		cfg.Topics = processor.Topics{Changelog: topology.ChangelogOff, SegmentChanges: out}
		cfg.CommitRecords = 40 // several committed chunks per partition
		return cfg
	}
	runUntilIdle := func(cfg processor.Config, total int64) {
		t.Helper()
		h := testkit.Start(t, cfg)
		h.WaitConsumed(t, total, parts, 120*time.Second)
		h.Stop(t)
	}

	dirA := t.TempDir()
	runUntilIdle(config(dirA, nil, "segment-changes"), int64(len(msgs)))
	before := testkit.Latest(testkit.Changes(t, testkit.ReadAllFresh(t, brokers, "segment-changes")))
	dirB := copyStore(t, dirA)

	runUntilIdle(config(dirA, rolloutRules("v2"), "rollout-a"), 0)
	runUntilIdle(config(dirB, rolloutRules("v2"), "rollout-b"), 0)
	a := testkit.ReadAllFresh(t, brokers, "rollout-a")

	t.Logf("the rollout emitted %d changes", len(a))
	t.Run("changes labelled with the new version, in SIREN order", func(t *testing.T) {
		if len(a) < 20 {
			t.Fatalf("the rollout emitted %d changes; the new thresholds should change many SIRENs", len(a))
		}
		for p, l := range byPartition(a) {
			prev := ""
			for _, sc := range testkit.Changes(t, l) {
				if sc.Trigger != engine.TriggerRulesRollout || sc.RulesVersion != "v2" {
					t.Fatalf("partition %d: %s trigger %q rules_version %q, want RULES_ROLLOUT v2", p, sc.EventID, sc.Trigger, sc.RulesVersion)
				}
				if sc.SIREN <= prev {
					t.Fatalf("partition %d: %s after %s: not in SIREN order", p, sc.SIREN, prev)
				}
				prev = sc.SIREN
				var lastSeq int64
				var lastSegs []string
				if b := before[sc.SIREN]; b != nil {
					lastSeq, lastSegs = b.Seq, b.Segments
				}
				if sc.Seq != lastSeq+1 || strings.Join(sc.PreviousSegments, ",") != strings.Join(lastSegs, ",") {
					t.Fatalf("%s: seq %d previous %v; its last event had seq %d segments %v", sc.SIREN, sc.Seq, sc.PreviousSegments, lastSeq, lastSegs)
				}
			}
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		if got, want := valuesOf(byPartition(testkit.ReadAllFresh(t, brokers, "rollout-b"))), valuesOf(byPartition(a)); !equalValues(got, want) {
			t.Fatal("two rollouts of the same state differ")
		}
	})

	t.Run("a restart after the rollout emits nothing more", func(t *testing.T) {
		runUntilIdle(config(dirA, rolloutRules("v2"), "rollout-a2"), 0)
		if again := testkit.ReadAllFresh(t, brokers, "rollout-a2"); len(again) != 0 {
			t.Fatalf("restart with the rolled-out rules emitted %d changes", len(again))
		}
	})

	t.Run("a replay refuses the live state", func(t *testing.T) { replayRefusesLiveState(t, brokers, dirB) })

	t.Run("same version, other thresholds: refused", func(t *testing.T) {
		other := rolloutRules("v2")
		other.RecoveryExposed.Enter = 3
		cfg := config(dirA, other, "rollout-a3")
		defer cfg.Store.Close()
		p, err := processor.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = p.Run(ctx)
		want := `rules version "v2" was used with different thresholds on this state (stored fingerprint ` + rolloutRules("v2").Fingerprint() +
			", now " + other.Fingerprint() + "): give the new rules a new version to roll them out"
		if !errors.Is(err, processor.ErrRulesConflict) || !strings.Contains(err.Error(), want) || ctx.Err() != nil {
			t.Fatalf("Run = %v; want at once an error saying %q", err, want)
		}
		if n := len(testkit.ReadAllFresh(t, brokers, "rollout-a3")); n != 0 {
			t.Fatalf("a refused rollout emitted %d changes", n)
		}
	})
}

// TestRulesRollout's live state also serves here.
func replayRefusesLiveState(t *testing.T, brokers []string, dir string) {
	cfg := testkit.Config(t, brokers, dir)
	defer cfg.Store.Close()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.Replay(ctx, processor.ReplayOptions{OutputTopic: "backfill"})
	if !errors.Is(err, processor.ErrReplayState) || !strings.Contains(err.Error(), "holds the state of a live run (sirenstream run, group \""+testkit.Group+"\"), not of a replay; use a fresh --state-dir for the replay") {
		t.Fatalf("replay on a live run's state directory = %v", err)
	}
}

// copyStore copies a closed store's directory.
func copyStore(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func equalValues(a, b map[int][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for p, l := range a {
		if strings.Join(l, "\x01") != strings.Join(b[p], "\x01") {
			return false
		}
	}
	return true
}
