package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/whatif"
	"github.com/sirenstream/sirenstream/processor"
)

// errReplayTimeout is the cause of a replay stopped by --timeout.
var errReplayTimeout = errors.New("--timeout reached")

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("replay", `A bounded backfill: reads every partition of the input topics from the offsets
stored in --state-dir up to the end offsets taken at its start, writes segment
changes to --output-topic (never the live topics) and exits.

  - A fresh (empty) --state-dir replays from the beginning of the topics.
  - An existing --state-dir continues from its checkpoint: an interrupted
    replay resumes where it stopped (new end offsets are taken at each start).
  - It uses no consumer group, so the live group and its offsets are not
    touched. Its dead letters go to <output-topic>-dlq.
  - Progress: a bar on a terminal (records, records/s, ETA), log lines
    otherwise (--progress).
  - Exit status 0: every partition reached its end offsets. 1: error,
    interruption (SIGINT/SIGTERM) or --timeout: the replay is incomplete; run
    the same command again to continue from the state directory.

What-if (--diff): replays the history twice, under --current-rules (default
the built-in rules) and under --rules, each into a temporary state directory,
writes nothing to any topic and prints who enters and leaves each segment and
which offers are gained or lost (--diff-json for machines).`, stdout)
	var f procFlags
	f.register(fs, "console")
	output := fs.String("output-topic", "", "topic receiving the replayed segment changes (required without --diff)")
	from := fs.String("from", "", "only events with event_time >= this RFC3339 time (others are skipped and counted)")
	to := fs.String("to", "", "only events with event_time < this RFC3339 time (others are skipped and counted)")
	churn := fs.String("churn-topic", "", "also write churn alerts to this topic (default: none)")
	diff := fs.Bool("diff", false, "what-if: compare --rules with --current-rules over the history; writes no topic, needs no --state-dir or --output-topic")
	diffJSON := fs.Bool("diff-json", false, "like --diff, printing the comparison as JSON on stdout")
	currentRules := fs.String("current-rules", "", "with --diff: the rules in production (default: the built-in rules)")
	examples := fs.Int("diff-examples", 5, "with --diff: example SIRENs listed per segment and direction")
	progressFlag := fs.String("progress", "auto", "progress display: auto (bar on a terminal, log lines otherwise), bar, log or off")
	progressEvery := fs.Duration("progress-interval", 5*time.Second, "time between progress log lines")
	timeout := fs.Duration("timeout", 0, "give up (exit 1, incomplete) when not complete after this long (0: no limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	mode, err := parseProgressMode(*progressFlag)
	if err != nil {
		return err
	}
	*diff = *diff || *diffJSON
	var ro processor.ReplayOptions
	ro.OutputTopic, ro.ChurnTopic = *output, *churn
	if *from != "" {
		if ro.From, err = time.Parse(time.RFC3339, *from); err != nil {
			return usageErr("--from: %v", err)
		}
	}
	if *to != "" {
		if ro.To, err = time.Parse(time.RFC3339, *to); err != nil {
			return usageErr("--to: %v", err)
		}
	}
	if !ro.From.IsZero() && !ro.To.IsZero() && !ro.From.Before(ro.To) {
		return usageErr("--from %s is not before --to %s", *from, *to)
	}
	if !*diff && *output == "" {
		return usageErr("--output-topic is required (or --diff for a what-if that writes nothing)")
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *timeout, errReplayTimeout)
		defer cancel()
	}

	// What-if replays open their own temporary stores; build still wants a
	// state directory, so give it a throwaway one and close it at once.
	// A --state-dir given with --diff is where the temporary ones go.
	parentDir := ""
	if *diff {
		parentDir = f.stateDir
		tmp, err := os.MkdirTemp(parentDir, "sirenstream-whatif-")
		if err != nil {
			return fmt.Errorf("what-if: %w", err)
		}
		defer os.RemoveAll(tmp)
		f.stateDir = tmp
	}
	c, err := f.build(stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	if *diff {
		serr := c.store.Close()
		c.store, c.cfg.Store = nil, nil
		if serr != nil {
			return serr
		}
		cur := engine.DefaultRules()
		if *currentRules != "" {
			b, err := os.ReadFile(*currentRules)
			if err != nil {
				return fmt.Errorf("--current-rules: rules: %w", err)
			}
			if cur, err = engine.ParseRules(bytes.NewReader(b)); err != nil {
				return fmt.Errorf("--current-rules: %s: %w", *currentRules, err)
			}
		}
		return runWhatIf(ctx, c, whatif.Options{
			Config: c.cfg, Current: cur, Proposed: c.rules,
			From: ro.From, To: ro.To, TempDir: parentDir, Examples: *examples,
		}, *diffJSON, mode, *progressEvery, stdout, stderr)
	}
	if ro.OutputTopic == c.cfg.Topics.SegmentChanges {
		return usageErr("--output-topic must not be the live topic %q", ro.OutputTopic)
	}
	p, err := processor.New(c.cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	stopProgress := startProgress(ctx, newProgressReporter(mode, stderr, c.log, *progressEvery, "replay", p.Progress))
	rerr := p.Replay(ctx, ro)
	stopProgress()
	s := sumProgress(p.Progress())
	if rerr != nil {
		return incomplete(ctx, rerr, s, p.Partitions(), f.stateDir)
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "replay complete: %d records in %s (%.0f records/s), %d segment changes to %s, %d dead-lettered to %s, %d outside --from/--to\n",
		s.consumed, el.Round(time.Millisecond), float64(s.consumed)/el.Seconds(), s.changes, ro.OutputTopic, s.dead, dlqTopic(ro), s.skipped)
	return nil
}

func dlqTopic(ro processor.ReplayOptions) string {
	if ro.DLQTopic != "" {
		return ro.DLQTopic
	}
	return ro.OutputTopic + "-dlq"
}

// startProgress runs r until the returned stop is called; stop waits for its
// last drawing.
func startProgress(ctx context.Context, r *progressReporter) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Run(pctx)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// incomplete explains why a replay stopped early and how to continue.
func incomplete(ctx context.Context, cause error, s progress, partitions int, stateDir string) error {
	what := "replay incomplete"
	switch {
	case errors.Is(context.Cause(ctx), errReplayTimeout):
		what = "replay incomplete (--timeout reached)"
	case ctx.Err() != nil:
		what = "replay interrupted, incomplete"
	}
	if partitions == 0 {
		return fmt.Errorf("%s: it did not start (are the brokers reachable?): %w", what, cause)
	}
	resume := ""
	if stateDir != "" {
		resume = fmt.Sprintf("; state and offsets up to the last commit are in %s: run the same command again to continue", stateDir)
	}
	return fmt.Errorf("%s after %d of %d records (%s)%s: %w", what, s.consumed, s.total, percent(s.consumed, s.total), resume, cause)
}

func runWhatIf(ctx context.Context, c *components, opt whatif.Options, asJSON bool, mode progressMode, every time.Duration, stdout, stderr io.Writer) error {
	cmp, err := whatif.New(opt)
	if err != nil {
		return err
	}
	stopProgress := startProgress(ctx, newProgressReporter(mode, stderr, c.log, every, "what-if", cmp.Progress))
	rep, err := cmp.Run(ctx)
	stopProgress()
	if err != nil {
		s := sumProgress(cmp.Progress())
		return incomplete(ctx, err, s, len(cmp.Progress()), "")
	}
	if asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}
