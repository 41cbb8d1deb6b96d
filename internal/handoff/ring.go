// Package handoff passes records from one producer goroutine to one consumer
// goroutine through a bounded ring the consumer reads in place: the hand-off
// from a partition's input readers to its task.
package handoff

import (
	"context"
	"sync/atomic"
)

// Ring hands one input partition's records from its reader goroutine (the
// only producer) to the task goroutine (the only consumer). The reader
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
type Ring[T any] struct {
	slots []T
	mask  uint64

	tail atomic.Uint64 // next slot the reader writes (reader-owned)
	head atomic.Uint64 // next slot the task reads (task-owned)

	readerWaiting atomic.Bool
	room          chan struct{} // cap 1: task → reader, slots were freed

	// task side
	h uint64 // == head, without the atomic load
	t uint64 // last tail the task loaded
}

// NewRing returns a ring of at least size slots (a power of two).
func NewRing[T any](size int) *Ring[T] {
	n := 1
	for n < size {
		n <<= 1
	}
	return &Ring[T]{slots: make([]T, n), mask: uint64(n - 1), room: make(chan struct{}, 1)}
}

// --- task side ---

// Len is how many published records wait in the ring.
func (r *Ring[T]) Len() int {
	if r.t == r.h {
		r.t = r.tail.Load()
	}
	return int(r.t - r.h)
}

// Front is the oldest waiting record; call only when Len() > 0.
func (r *Ring[T]) Front() *T { return &r.slots[r.h&r.mask] }

// Pop frees the front slot. The slot keeps its record until the reader
// overwrites it: at most len(slots) records' buffers stay referenced.
func (r *Ring[T]) Pop() {
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

// Slot returns the slot to fill next, waiting for room; nil when ctx ended.
// The slot holds whatever it held before: overwrite every field.
func (r *Ring[T]) Slot(ctx context.Context) *T {
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

// Publish makes the slot returned by Slot visible to the task and wakes the
// task when it sleeps.
func (r *Ring[T]) Publish(w *Wakeup) {
	r.tail.Add(1)
	w.signal()
}

// Wakeup lets the readers of a task wake it when it waits for records. The
// task calls Sleeping(true), looks for records once more, and only then
// waits on C; Sleeping(false) when it wakes.
type Wakeup struct {
	sleeping atomic.Bool
	c        chan struct{} // cap 1
}

// NewWakeup returns a Wakeup.
func NewWakeup() *Wakeup { return &Wakeup{c: make(chan struct{}, 1)} }

// Sleeping announces (true) or withdraws (false) the task's intent to wait.
func (w *Wakeup) Sleeping(v bool) { w.sleeping.Store(v) }

// C is what a sleeping task waits on.
func (w *Wakeup) C() <-chan struct{} { return w.c }

// Signal wakes the task if it announced it would sleep (for events other
// than records, such as a background write that finished).
func (w *Wakeup) Signal() { w.signal() }

func (w *Wakeup) signal() {
	if w.sleeping.Load() {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}
