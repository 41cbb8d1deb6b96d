package processor

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestCommitCadenceFollowsTheBacklog: a caught-up task commits every
// CommitInterval (output latency); one that is CommitRecords or more behind
// waits up to CatchUpCommitInterval, so a batch writes each SIREN's state once
// for more records.
func TestCommitCadenceFollowsTheBacklog(t *testing.T) {
	// Long intervals: a stalled test machine cannot turn a case around.
	cfg := &Config{CommitInterval: 10 * time.Second, CatchUpCommitInterval: 100 * time.Second, CommitRecords: 20000}
	for _, tc := range []struct {
		name    string
		bounded bool
		next    [numInputs]int64
		hwm     [numInputs]int64
		end     [numInputs]int64
		since   time.Duration
		due     bool
	}{
		{name: "fresh batch", since: 0},
		{name: "caught up, interval passed", since: 15 * time.Second, due: true},
		{name: "small backlog", next: [numInputs]int64{0, 0, 0, 100}, hwm: [numInputs]int64{0, 0, 0, 19_000}, since: 15 * time.Second, due: true},
		{name: "behind", next: [numInputs]int64{0, 0, 0, 100}, hwm: [numInputs]int64{5_000, 0, 0, 20_000}, since: 15 * time.Second},
		{name: "behind, catch-up interval passed", hwm: [numInputs]int64{0, 0, 0, 50_000}, since: 110 * time.Second, due: true},
		{name: "bounded: end offsets count, not high watermarks", bounded: true, end: [numInputs]int64{0, 0, 0, 50_000}, since: 15 * time.Second},
		{name: "bounded, nearly done", bounded: true, next: [numInputs]int64{0, 0, 0, 45_000}, end: [numInputs]int64{0, 0, 0, 50_000}, hwm: [numInputs]int64{0, 0, 0, 90_000}, since: 15 * time.Second, due: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &inputs{bounded: tc.bounded, next: tc.next, hwm: tc.hwm, end: tc.end}
			now := time.Now()
			c := &committer{
				cad:        cadence{interval: cfg.CommitInterval, catchUpInterval: cfg.CatchUpCommitInterval, records: cfg.CommitRecords},
				now:        func() time.Time { return now },
				backlog:    in.backlog,
				lastCommit: now.Add(-tc.since),
			}
			if got := c.due(); got != tc.due {
				t.Fatalf("due() = %v with backlog %d after %s, want %v", got, in.backlog(), tc.since, tc.due)
			}
		})
	}
}

func TestCatchUpCommitIntervalDefaults(t *testing.T) {
	c := Config{}
	c.setDefaults()
	if c.CatchUpCommitInterval != time.Second {
		t.Fatalf("default CatchUpCommitInterval = %s", c.CatchUpCommitInterval)
	}
	c = Config{CommitInterval: 5 * time.Second}
	c.setDefaults()
	if c.CatchUpCommitInterval != 5*time.Second {
		t.Fatalf("CatchUpCommitInterval below CommitInterval: %s", c.CatchUpCommitInterval)
	}
}

// TestEagerCommitWritesOutputsOfACaughtUpTask: a task with nothing left to
// process commits at once when its batch holds outputs and no batch is being
// written (output latency), but not while it is behind (catch-up batches
// stay large), not in a replay, not without outputs, and not while a flush
// is in flight.
func TestEagerCommitWritesOutputsOfACaughtUpTask(t *testing.T) {
	done := make(chan struct{})
	close(done)
	for _, tc := range []struct {
		name     string
		outputs  int
		hwm      int64
		inflight *batch
		replay   bool
		eager    bool
	}{
		{name: "caught up with outputs", outputs: 1, eager: true},
		{name: "no outputs", outputs: 0},
		{name: "behind", outputs: 1, hwm: 50_000},
		{name: "flush in flight", outputs: 1, inflight: &batch{done: make(chan struct{})}},
		{name: "flush finished", outputs: 1, inflight: &batch{done: done}, eager: true},
		{name: "replay", outputs: 1, replay: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &inputs{hwm: [numInputs]int64{0, 0, 0, tc.hwm}}
			c := &committer{cad: cadence{records: 20_000}, backlog: in.backlog, inflight: tc.inflight, live: !tc.replay}
			c.outputs = make([]kafka.Message, tc.outputs)
			if got := c.eager(); got != tc.eager {
				t.Fatalf("eager() = %v, want %v", got, tc.eager)
			}
		})
	}
}
