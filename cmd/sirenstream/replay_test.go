package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
)

// TestReplayCommand: `sirenstream replay` exits 0 when complete and says
// so; a second run on the same --state-dir continues from its checkpoint
// (nothing left); --diff-json with unchanged rules reports no change; an
// unreachable broker and an interruption exit non-zero with a message
// saying the replay is incomplete.
func TestReplayCommand(t *testing.T) {
	const parts = 2
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 150, Days: 40, Seed: 4, BadRate: 0.01})
	dir := t.TempDir()
	replay := func(extra ...string) (int, string, string) {
		var out, errb testkit.LockedBuffer // the tasks and the progress reporter log concurrently
		args := append([]string{"replay", "--brokers", brokers[0], "--log-level", "warn"}, extra...)
		code := realMain(args, &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := replay("--state-dir", dir, "--output-topic", "backfill", "--progress", "log", "--log-level", "info", "--progress-interval", "50ms")
	if want := fmt.Sprintf("replay complete: %d records", len(msgs)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("replay: exit %d, stdout %q, want 0 and %q; stderr:\n%s", code, out, want, errs)
	}
	if !strings.Contains(errs, "replay progress") || !strings.Contains(errs, fmt.Sprintf(`"total": %d`, len(msgs))) {
		t.Errorf("no progress log lines with the total on stderr:\n%s", errs)
	}

	code, out, errs = replay("--state-dir", dir, "--output-topic", "backfill")
	if code != 0 || !strings.Contains(out, "replay complete: 0 records") {
		t.Errorf("second replay on the same state dir: exit %d, stdout %q (want 0 records: it continues from the checkpoint); stderr:\n%s", code, out, errs)
	}

	code, out, errs = replay("--output-topic", "segment-changes", "--state-dir", t.TempDir())
	if code != 2 || !strings.Contains(errs, "must not be the live topic") {
		t.Errorf("replay into the live topic: exit %d, stderr %q", code, errs)
	}

	code, out, errs = replay("--diff-json", "--rules", "../../engine/default_rules.yaml")
	var rep struct {
		Changed  int `json:"sirens_changed"`
		SIRENs   int `json:"sirens"`
		Segments []struct {
			Segment                    string
			Current, Entering, Leaving int
		} `json:"segments"`
	}
	if code != 0 {
		t.Fatalf("--diff-json: exit %d, stderr:\n%s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--diff-json output is not JSON: %v\n%s", err, out)
	}
	if rep.Changed != 0 || rep.SIRENs == 0 || len(rep.Segments) != 6 {
		t.Errorf("diff of the default rules against themselves: %+v", rep)
	}

	code, _, errs = replay("--brokers", "127.0.0.1:1", "--state-dir", t.TempDir(), "--output-topic", "x", "--timeout", "2s")
	if code != 1 || !strings.Contains(errs, "replay incomplete") || !strings.Contains(errs, "did not start") || !strings.Contains(errs, "127.0.0.1:1") {
		t.Errorf("unreachable broker: exit %d, stderr %q; want 1 and a message naming the broker and saying it is incomplete", code, errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if SIGINT arrived at once
	var so, se testkit.LockedBuffer
	err := runReplay(ctx, []string{"--brokers", brokers[0], "--state-dir", t.TempDir(), "--output-topic", "x", "--log-level", "error"}, &so, &se)
	if err == nil || !strings.Contains(err.Error(), "interrupted, incomplete") {
		t.Errorf("interrupted replay: err %v, want 'interrupted, incomplete'", err)
	}
}

func TestProgressBar(t *testing.T) {
	var w bytes.Buffer
	prog := []processor.TaskProgress{{Partition: 0, Consumed: 500, Total: 1000}, {Partition: 1, Consumed: 250, Total: 1000}}
	r := newProgressReporter(progressBar, &w, nil, time.Second, "replay", func() []processor.TaskProgress { return prog })
	r.start = time.Now().Add(-time.Second)
	r.lastT = r.start
	r.show(false)
	prog[0].Consumed, prog[1].Consumed = 1000, 1000
	r.show(true)
	got := w.String()
	for _, want := range []string{"\rreplay ", "37.5%", "750/2000 records", "rec/s", "ETA ", "100.0%", "2000/2000 records"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("the bar must redraw one line and end it once: %q", got)
	}
	if isTerminal(&w) {
		t.Error("a buffer is not a terminal")
	}
}
