package processor

import (
	"context"
	"sync/atomic"
)

// inputRing hands one input partition's records from its reader goroutine
// (the only producer) to the task goroutine (the only consumer). The reader
// decodes straight into a slot and publishes it by advancing tail; the task
// merges from the slots in place and frees them by advancing head. No record
// is copied between decode and processing, and no channel operation happens
// per record: a side only signals the other when that one said it was about
// to sleep (store flag, re-check, sleep; the other stores its position, then
// loads the flag — with sequentially consistent atomics one of the two sees
// the other's store, so no wake-up is lost).
//
// The ring is bounded: a reader that runs ahead of the merge waits for room,
// so memory per input stays at len(slots) records whatever the event-time
// skew between inputs (each input has its own ring, so a full ring never
// keeps another input's records from arriving: no merge deadlock).
type inputRing struct {
	slots []item
	mask  uint64

	tail atomic.Uint64 // next slot the reader writes (reader-owned)
	head atomic.Uint64 // next slot the task reads (task-owned)
	hwm  atomic.Int64  // latest high watermark the reader saw

	readerWaiting atomic.Bool
	room          chan struct{} // cap 1: task → reader, slots were freed

	// task side
	h uint64 // == head, without the atomic load
	t uint64 // last tail the task loaded
}

func newInputRing(size int) *inputRing {
	n := 1
	for n < size {
		n <<= 1
	}
	return &inputRing{slots: make([]item, n), mask: uint64(n - 1), room: make(chan struct{}, 1)}
}

// --- task side ---

// len is how many published records wait in the ring.
func (r *inputRing) len() int {
	if r.t == r.h {
		r.t = r.tail.Load()
	}
	return int(r.t - r.h)
}

// front is the oldest waiting record; call only when len() > 0.
func (r *inputRing) front() *item { return &r.slots[r.h&r.mask] }

// pop frees the front slot. The slot keeps its record until the reader
// overwrites it: at most len(slots) records' buffers stay referenced.
func (r *inputRing) pop() {
	r.h++
	r.head.Store(r.h)
	if r.readerWaiting.Load() {
		select {
		case r.room <- struct{}{}:
		default:
		}
	}
}

// --- reader side ---

// slot returns the slot to fill next, waiting for room; nil when ctx ended.
func (r *inputRing) slot(ctx context.Context) *item {
	t := r.tail.Load()
	for t-r.head.Load() > r.mask {
		r.readerWaiting.Store(true)
		if t-r.head.Load() <= r.mask {
			r.readerWaiting.Store(false)
			break
		}
		select {
		case <-r.room:
		case <-ctx.Done():
			r.readerWaiting.Store(false)
			return nil
		}
		r.readerWaiting.Store(false)
	}
	return &r.slots[t&r.mask]
}

// publish makes the slot returned by slot visible to the task and wakes the
// task when it sleeps.
func (r *inputRing) publish(hwm int64, w *wakeup) {
	if hwm > r.hwm.Load() {
		r.hwm.Store(hwm)
	}
	r.tail.Add(1)
	w.signal()
}

// wakeup lets the readers of a task wake it when it waits for records.
type wakeup struct {
	sleeping atomic.Bool
	c        chan struct{} // cap 1
}

func newWakeup() *wakeup { return &wakeup{c: make(chan struct{}, 1)} }

func (w *wakeup) signal() {
	if w.sleeping.Load() {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}
