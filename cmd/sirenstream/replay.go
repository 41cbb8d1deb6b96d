package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirenstream/sirenstream/processor"
)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("replay", `A bounded backfill: reads every partition of the input topics from the offsets
stored in --state-dir (the beginning for a fresh directory) up to the end
offsets taken at its start, writes segment changes to --output-topic (never the
live topics) and exits. It uses no consumer group, so the live group is not
disturbed. Exit status 0 means every partition reached its end offsets.`, stdout)
	var f procFlags
	f.register(fs, "console")
	output := fs.String("output-topic", "", "topic receiving the replayed segment changes (required)")
	from := fs.String("from", "", "only events with event_time >= this RFC3339 time")
	to := fs.String("to", "", "only events with event_time < this RFC3339 time")
	churn := fs.String("churn-topic", "", "also write churn alerts to this topic (default: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output == "" {
		return usageErr("--output-topic is required")
	}
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
	c, err := f.build(stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	if ro.OutputTopic == c.cfg.Topics.SegmentChanges {
		return usageErr("--output-topic must not be the live topic %q", ro.OutputTopic)
	}
	p, err := processor.New(c.cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := p.Replay(ctx, ro); err != nil {
		return fmt.Errorf("replay incomplete: %w", err)
	}
	var consumed, changes, dead, skipped int64
	for _, tp := range p.Progress() {
		consumed += tp.Consumed
		changes += tp.Changes
		dead += tp.DeadLettered
		skipped += tp.Skipped
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "replay complete: %d records in %s (%.0f records/s), %d segment changes to %s, %d dead-lettered, %d outside --from/--to\n",
		consumed, el.Round(time.Millisecond), float64(consumed)/el.Seconds(), changes, ro.OutputTopic, dead, skipped)
	return nil
}
