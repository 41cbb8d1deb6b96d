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
    It must be the same replay: a --state-dir written with other rules,
    --output-topic, --churn-topic, --from, --to or --emit-from, or by
    'sirenstream run', is refused (exit 1) with both settings; use a fresh
    --state-dir, or the stored settings to resume.
  - --from T starts cold at T: windows hold nothing before T, and seq and
    event_id restart at {siren}-1. --emit-from T reads the whole history
    (warm windows) and writes only the segment changes and dead letters
    from T on, with the seq and event_id a full replay (and the live topic)
    gives them.
  - It uses no consumer group, so the live group and its offsets are not
    touched. Its dead letters go to <output-topic>-dlq.
  - Progress: a bar on a terminal (records, records/s, ETA), log lines
    otherwise (--progress).
  - Exit status 0: every partition reached its end offsets. 1: error,
    interruption (SIGINT/SIGTERM) or --timeout: the replay is incomplete; run
    the same command again to continue from the state directory.

What-if (--diff): replays the history twice, under --current-rules (default
the built-in rules) and under --rules, each into a temporary state directory,
writes nothing to any topic and prints who enters and leaves each segment,
which offers are gained or lost, and per segment the entries, exits and flaps
(re-entries within 7 days of leaving) under each rule set (--diff-json for
machines). The built-in rules are default-2; a file holding only
"version: default-1" is the rules of before (keys left out keep their v1
meaning).`, stdout)
	var f procFlags
	f.register(fs, "console")
	output := fs.String("output-topic", "", "topic receiving the replayed segment changes (required without --diff)")
	from := fs.String("from", "", "only events with event_time >= this time, RFC3339 or a date (UTC midnight); others are skipped and counted: windows start cold")
	to := fs.String("to", "", "only events with event_time < this time, RFC3339 or a date (UTC midnight); others are skipped and counted")
	emitFrom := fs.String("emit-from", "", "read all history (warm windows) but write only segment changes, dead letters, offer outcomes and siren-daily records with event_time (day-change time) >= this time (the uplift still counts every outcome), RFC3339 or a date (UTC midnight), with the seq/event_id of a full replay")
	churn := fs.String("churn-topic", "", "also write churn alerts to this topic (default: none)")
	diff := fs.Bool("diff", false, "what-if: compare --rules with --current-rules over the history; writes no topic, needs no --state-dir or --output-topic")
	diffJSON := fs.Bool("diff-json", false, "like --diff, printing the comparison as JSON on stdout")
	currentRules := fs.String("current-rules", "", "with --diff: the rules in production (default: the built-in rules)")
	examples := fs.Int("diff-examples", 5, "with --diff: example SIRENs listed per segment and direction")
	progressFlag := fs.String("progress", "auto", "progress display: auto (bar on a terminal, log lines otherwise), bar, log or off")
	progressEvery := fs.Duration("progress-interval", 5*time.Second, "time between progress log lines")
	timeout := fs.Duration("timeout", 0, "give up (exit 1, incomplete) when not complete after this long (0: no limit)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	mode, err := parseProgressMode(*progressFlag)
	if err != nil {
		return err
	}
	stderr = newLineWriter(stderr) // the logger's and the progress bar's: neither overwrites the other
	*diff = *diff || *diffJSON
	var ro processor.ReplayOptions
	ro.OutputTopic, ro.ChurnTopic = *output, *churn
	for _, tf := range []struct {
		name, val string
		dst       *time.Time
	}{{"--from", *from, &ro.From}, {"--to", *to, &ro.To}, {"--emit-from", *emitFrom, &ro.EmitFrom}} {
		if tf.val == "" {
			continue
		}
		if *tf.dst, err = parseTimeFlag(tf.val); err != nil {
			return usageErr("%s: %v", tf.name, err)
		}
	}
	if !ro.From.IsZero() && !ro.To.IsZero() && !ro.From.Before(ro.To) {
		return usageErr("--from %s is not before --to %s", *from, *to)
	}
	if !ro.EmitFrom.IsZero() {
		switch {
		case *diff:
			return usageErr("--emit-from has no effect with --diff")
		case ro.EmitFrom.Before(ro.From):
			return usageErr("--emit-from %s is before --from %s: windows start at --from, nothing before it can be emitted", *emitFrom, *from)
		case !ro.To.IsZero() && !ro.EmitFrom.Before(ro.To):
			return usageErr("--emit-from %s is not before --to %s", *emitFrom, *to)
		}
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
				return fmt.Errorf("--current-rules: %w", err)
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
	if errors.Is(rerr, processor.ErrReplayState) {
		return rerr // refused before it started: nothing to resume
	}
	if rerr != nil {
		return incomplete(ctx, rerr, s, p.Partitions(), f.stateDir)
	}
	el := time.Since(start)
	var heldChanges, heldDead int64
	for _, tp := range p.Progress() {
		heldChanges += tp.WithheldChanges
		heldDead += tp.WithheldDeadLetters
	}
	fmt.Fprintf(stdout, "replay complete: %d records in %s (%.0f records/s), %d segment changes to %s, %d dead-lettered to %s, %d outside --from/--to",
		s.consumed, el.Round(time.Millisecond), float64(s.consumed)/el.Seconds(), s.changes-heldChanges, ro.OutputTopic, s.dead-heldDead, dlqTopic(ro), s.skipped)
	if !ro.EmitFrom.IsZero() {
		fmt.Fprintf(stdout, ", %d segment changes and %d dead letters before --emit-from not written", heldChanges, heldDead)
	}
	fmt.Fprintln(stdout)
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
