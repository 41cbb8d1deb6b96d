package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
)

// Issue 16 (rule rollouts) at the command line: `run` with a rules file of
// the version its state was built with but other thresholds exits 1 at once
// (a configuration error, not retried) and says what to do.
func TestRunRefusesSameRulesVersionWithOtherThresholds(t *testing.T) {
	const parts = 2
	brokers, all := testkit.Loaded(t, parts, gen.Config{SIRENs: 60, Days: 20, Seed: 5})
	v2 := engine.DefaultRules()
	v2.Version = "v2"
	dir := t.TempDir()
	cfg := testkit.Config(t, brokers, dir)
	cfg.Rules = v2
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, int64(len(all)), parts, 120*time.Second)
	h.Stop(t)

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("version: v2\nrecovery_exposed: {enter: 3, exit: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := engine.RulesV1() // a file without the keys of default-2: their v1 meaning
	other.Version, other.RecoveryExposed.Enter = "v2", 3
	var out, errb bytes.Buffer
	args := []string{"run", "--brokers", brokers[0], "--state-dir", dir, "--group", testkit.Group, "--rules", rules, "--log-format", "console"}
	done := make(chan int, 1)
	go func() { done <- realMain(args, &out, &errb) }()
	select {
	case code := <-done:
		if code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("still running after 60 s: a rules conflict must stop the process")
	}
	want := `rules version "v2" was used with different thresholds on this state (stored fingerprint ` + v2.Fingerprint() +
		", now " + other.Fingerprint() + "): give the new rules a new version to roll them out"
	if !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "a configuration error") {
		t.Fatalf("stderr does not say %q (a configuration error):\n%s", want, errb.String())
	}
}

// `replay --emit-from` takes a date; a replay on a state directory of
// another replay exits 1 with both settings and what to do; --emit-from
// before --from is a usage error.
func TestReplayEmitFromAndRefusalCommand(t *testing.T) {
	const parts = 2
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 60, Days: 30, Seed: 5})
	replay := func(args ...string) (int, string, string) {
		var out, errb testkit.LockedBuffer
		code := realMain(append([]string{"replay", "--brokers", brokers[0], "--log-level", "warn", "--progress", "off"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	dir := t.TempDir()
	code, out, errs := replay("--state-dir", dir, "--output-topic", "warm", "--emit-from", "2026-01-20")
	if code != 0 || !strings.Contains(out, "replay complete: "+strconv.Itoa(len(msgs))+" records") || !strings.Contains(out, "before --emit-from not written") {
		t.Fatalf("replay --emit-from: exit %d, stdout %q; stderr:\n%s", code, out, errs)
	}
	code, out, errs = replay("--state-dir", dir, "--output-topic", "warm", "--emit-from", "2026-01-20T00:00:00Z")
	if code != 0 || !strings.Contains(out, "replay complete: 0 records") {
		t.Fatalf("the same replay again (a date is UTC midnight): exit %d, stdout %q; stderr:\n%s", code, out, errs)
	}
	code, _, errs = replay("--state-dir", dir, "--output-topic", "other")
	for _, want := range []string{
		"holds the state of another replay",
		"stored: output-topic=warm churn-topic=- dlq-topic=warm-dlq from=- to=- emit-from=2026-01-20T00:00:00Z rules=" + engine.DefaultRulesVersion,
		"now:    output-topic=other ",
		"use a fresh --state-dir for this replay, or run the stored one's flags and rules again to resume it",
	} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("replay with other flags on the state dir: exit %d, want 1 and %q in stderr:\n%s", code, want, errs)
		}
	}
	if strings.Contains(errs, "incomplete") {
		t.Errorf("a refused replay is not an incomplete one:\n%s", errs)
	}
	code, _, errs = replay("--state-dir", t.TempDir(), "--output-topic", "x", "--from", "2026-01-10", "--emit-from", "2026-01-05")
	if code != 2 || !strings.Contains(errs, "--emit-from 2026-01-05 is before --from 2026-01-10") {
		t.Fatalf("--emit-from before --from: exit %d, stderr %q", code, errs)
	}
}
