package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/processor"
)

// progressMode says how a bounded run shows its progress.
type progressMode string

const (
	progressAuto progressMode = "auto" // bar on a terminal, log lines otherwise
	progressBar  progressMode = "bar"  // always the \r bar on stderr
	progressLog  progressMode = "log"  // always log lines
	progressOff  progressMode = "off"
)

func parseProgressMode(s string) (progressMode, error) {
	switch m := progressMode(s); m {
	case progressAuto, progressBar, progressLog, progressOff:
		return m, nil
	}
	return "", usageErr("--progress %q: want auto, bar, log or off", s)
}

// isTerminal reports whether w is a character device (a terminal), without
// a dependency on golang.org/x/term: pipes, files and /dev/null's peers in
// CI logs are not (only /dev/null itself is a character device, and drawing
// a bar into it is harmless).
func isTerminal(w io.Writer) bool {
	if lw, ok := w.(*lineWriter); ok {
		w = lw.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress summarises TaskProgress snapshots for display.
type progress struct {
	consumed, total, skipped, dead, changes int64
	partitions, loaded, done                int
}

func sumProgress(tps []processor.TaskProgress) progress {
	var s progress
	for _, tp := range tps {
		s.partitions++
		s.consumed += tp.Consumed
		s.total += tp.Total
		s.skipped += tp.Skipped
		s.dead += tp.DeadLettered
		s.changes += tp.Changes
		if tp.Total > 0 || tp.Consumed > 0 || tp.Done {
			s.loaded++
		}
		if tp.Done {
			s.done++
		}
	}
	return s
}

// progressReporter polls a progress source and shows it: a bar redrawn in
// place with \r (records, records/s, ETA) when its writer is a terminal,
// else a plain log line every logEvery. It reads only snapshots: it costs
// the tasks one mutex acquisition per poll.
type progressReporter struct {
	source   func() []processor.TaskProgress
	mode     progressMode // resolved: bar, log or off
	w        *lineWriter  // the bar's terminal, shared with the logger
	log      *zap.Logger
	logEvery time.Duration
	label    string

	start time.Time
	rate  float64 // records/s, smoothed
	lastN int64
	lastT time.Time
}

// lineWriter shares one terminal between a progress bar redrawn in place
// and log lines: a log line first erases the bar, which is drawn again
// below it, so neither overwrites the other. Give the same lineWriter to
// the logger and the progress reporter.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	bar string // the bar on the current line; "" when none
}

func newLineWriter(w io.Writer) *lineWriter {
	if lw, ok := w.(*lineWriter); ok {
		return lw
	}
	return &lineWriter{w: w}
}

// Write writes log lines.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bar == "" {
		return l.w.Write(p)
	}
	_, _ = io.WriteString(l.w, "\r\033[K")
	n, err := l.w.Write(p)
	_, _ = io.WriteString(l.w, "\r"+l.bar+"\033[K")
	return n, err
}

// drawBar draws line over the current bar; final ends its line.
func (l *lineWriter) drawBar(line string, final bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, "\r"+line+"\033[K")
	l.bar = line
	if final {
		_, _ = io.WriteString(l.w, "\n")
		l.bar = ""
	}
}

func newProgressReporter(mode progressMode, w io.Writer, log *zap.Logger, logEvery time.Duration, label string, source func() []processor.TaskProgress) *progressReporter {
	if mode == progressAuto {
		mode = progressLog
		if isTerminal(w) {
			mode = progressBar
		}
	}
	if logEvery <= 0 {
		logEvery = 5 * time.Second
	}
	return &progressReporter{source: source, mode: mode, w: newLineWriter(w), log: log, logEvery: logEvery, label: label}
}

// Run shows progress until ctx ends, then draws the last state once more
// and ends the bar's line.
func (r *progressReporter) Run(ctx context.Context) {
	if r.mode == progressOff {
		return
	}
	r.start = time.Now()
	r.lastT = r.start
	every := r.logEvery
	if r.mode == progressBar {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.show(true)
			return
		case <-tick.C:
			r.show(false)
		}
	}
}

func (r *progressReporter) show(final bool) {
	s := sumProgress(r.source())
	now := time.Now()
	if dt := now.Sub(r.lastT).Seconds(); dt > 0 {
		inst := float64(s.consumed-r.lastN) / dt
		if r.lastN == 0 || r.rate == 0 {
			r.rate = inst
		} else {
			r.rate = 0.7*r.rate + 0.3*inst
		}
	}
	r.lastN, r.lastT = s.consumed, now
	avg := 0.0
	if el := now.Sub(r.start).Seconds(); el > 0 {
		avg = float64(s.consumed) / el
	}
	rate := r.rate
	if final {
		rate = avg
	}
	eta := "?"
	if s.total > 0 && rate > 0 && s.loaded == s.partitions {
		eta = (time.Duration(float64(max(s.total-s.consumed, 0))/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
	}
	switch r.mode {
	case progressBar:
		r.w.drawBar(r.barLine(s, rate, eta), final)
	case progressLog:
		if s.partitions == 0 {
			return // not started (connecting to the brokers): nothing to say yet
		}
		r.log.Info(r.label+" progress",
			zap.Int64("records", s.consumed), zap.Int64("total", s.total),
			zap.String("percent", percent(s.consumed, s.total)),
			zap.Float64("records_per_s", float64(int64(rate))),
			zap.String("eta", eta),
			zap.Int("partitions_done", s.done), zap.Int("partitions", s.partitions),
			zap.Int64("segment_changes", s.changes), zap.Int64("dead_lettered", s.dead), zap.Int64("skipped", s.skipped))
	}
}

func (r *progressReporter) barLine(s progress, rate float64, eta string) string {
	const width = 30
	filled := 0
	if s.total > 0 {
		filled = int(float64(width) * float64(min(s.consumed, s.total)) / float64(s.total))
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	return fmt.Sprintf("%s %s %6s  %d/%d records  %.0f rec/s  ETA %s",
		r.label, bar, percent(s.consumed, s.total), s.consumed, s.total, rate, eta)
}

func percent(n, total int64) string {
	if total <= 0 {
		return "?%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(min(n, total))/float64(total))
}
