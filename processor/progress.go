package processor

import "sync"

// TaskProgress is a snapshot of one task's accounting: records in =
// processed + dead-lettered (+ skipped by replay bounds).
type TaskProgress struct {
	Partition    int32
	Consumed     int64
	Total        int64 // backlog at load: Σ inputs (end offset − first offset to process); 0 before load
	Processed    int64
	DeadLettered int64
	Skipped      int64
	Changes      int64
	// WithheldChanges and WithheldDeadLetters are the segment changes and
	// dead letters before a replay's EmitFrom: computed (and counted in
	// Changes and DeadLettered) but not written.
	WithheldChanges     int64
	WithheldDeadLetters int64
	// WithheldOutputs are the offer outcomes and siren-daily records of the
	// day changes before EmitFrom, not written (their outcomes still reach
	// the uplift repartition topic).
	WithheldOutputs int64
	StreamTime      int64
	Lag             int64 // sum over inputs of hwm - next
	CaughtUp        bool
	Loaded          bool // state loaded (checkpoint, changelog restore): Processor.Ready
	Done            bool
	// Restore is the changelog restore done when the task started (zero
	// when the local state was up to date).
	Restore RestoreStats
}

// progress is a task's TaskProgress, written by the task goroutine and read
// by Processor.Progress from others.
type progress struct {
	mu sync.Mutex
	p  TaskProgress
}

func (pr *progress) update(f func(p *TaskProgress)) {
	pr.mu.Lock()
	f(&pr.p)
	pr.mu.Unlock()
}

func (pr *progress) snapshot() TaskProgress {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.p
}
