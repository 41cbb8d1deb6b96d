package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
)

// Spec §8 (Isolation) at the command line: --topic-changelog defaults to
// <group>-changelog, and `run` pointed at another group's changelog or
// state directory exits 1 at once (a configuration error, not retried)
// with what to do.
func TestRunRefusesAnotherGroupsState(t *testing.T) {
	var help bytes.Buffer
	if code := realMain([]string{"run", "--help"}, &help, &help); code != 0 ||
		!strings.Contains(help.String(), "default <group>-changelog") {
		t.Fatalf("run --help (code %d) does not give the changelog's default:\n%s", code, help.String())
	}

	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	all := testkit.Generated(t, gen.Config{SIRENs: 30, Days: 10, Seed: 3})
	testkit.Produce(t, brokers, all...)
	dirA := t.TempDir()
	cfg := testkit.Config(t, brokers, dirA)
	cfg.Group = "app-a"
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, int64(len(all)), parts, 120*time.Second)
	h.Stop(t)

	run := func(dir string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"run", "--brokers", brokers[0], "--state-dir", dir, "--log-format", "console"}, args...)
		done := make(chan int, 1)
		go func() { done <- realMain(args, &out, &errb) }()
		select {
		case code := <-done:
			if code != 1 {
				t.Fatalf("%v: exit %d, want 1; stderr:\n%s", args, code, errb.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%v: still running after 60 s (a configuration error must exit)", args)
		}
		return errb.String()
	}
	stderr := run(t.TempDir(), "--group", "app-b", "--topic-changelog", "app-a-changelog")
	if want := `changelog app-a-changelog was written by group "app-a"`; !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, "use --topic-changelog app-b-changelog") {
		t.Errorf("another group's changelog: stderr does not say %q and what to do:\n%s", want, stderr)
	}
	stderr = run(dirA, "--group", "app-b")
	if want := `holds the state of group "app-a"; this is group "app-b"`; !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, `use a fresh --state-dir for group "app-b"`) {
		t.Errorf("another group's state directory: stderr does not say %q and what to do:\n%s", want, stderr)
	}
}
