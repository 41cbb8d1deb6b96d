package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/processor"
)

// TestLogLinesAndProgressBarNeverOverwriteEachOther: a log line written
// while the bar is drawn erases the bar first and starts at the beginning of
// the line; the bar is drawn again after it.
func TestLogLinesAndProgressBarNeverOverwriteEachOther(t *testing.T) {
	var out bytes.Buffer
	lw := newLineWriter(&out)
	log, err := newLogger("console", "info", lw)
	if err != nil {
		t.Fatal(err)
	}
	prog := []processor.TaskProgress{{Partition: 0, Consumed: 10, Total: 100}}
	r := newProgressReporter(progressBar, lw, log, time.Second, "replay", func() []processor.TaskProgress { return prog })
	r.start = time.Now().Add(-time.Second)
	r.lastT = r.start
	r.show(false)
	log.Info("a log line in the middle")
	prog[0].Consumed = 100
	r.show(true)

	got := out.String()
	i := strings.Index(got, "a log line in the middle")
	if i < 0 {
		t.Fatalf("no log line in %q", got)
	}
	before := got[:i]
	start := strings.LastIndex(before, "\r\033[K")
	if start < 0 || strings.ContainsAny(before[start+len("\r\033[K"):], "\r\n█") {
		t.Errorf("the log line does not start on an erased line: %q", got)
	}
	after := got[i:]
	nl := strings.IndexByte(after, '\n')
	if nl < 0 || !strings.HasPrefix(after[nl+1:], "\rreplay ") {
		t.Errorf("the bar is not drawn again below the log line: %q", after)
	}
	if strings.Count(got, "\n") != 2 { // the log line and the final bar
		t.Errorf("want the log line and the bar's final line only: %q", got)
	}
	// The console timestamp is a date, not only a clock time.
	if !strings.Contains(got, time.Now().UTC().Format("2006-01-02")) && !strings.Contains(got, time.Now().Format("2006-01-02")) {
		t.Errorf("console log lines carry no date: %q", got)
	}
}
