package handoff

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRingDeliversInOrderAcrossWaits: two producers, each with its own small
// ring, hand 20,000 numbered records to one consumer that sleeps whenever
// both rings are empty. Every record arrives once, in order, and neither side
// stalls (a lost wake-up would hang the test until its deadline).
func TestRingDeliversInOrderAcrossWaits(t *testing.T) {
	const n = 20_000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := NewWakeup()
	rings := [2]*Ring[int]{NewRing[int](3), NewRing[int](8)} // 3 rounds up to 4
	if got := len(rings[0].slots); got != 4 {
		t.Fatalf("ring of 3 has %d slots, want 4", got)
	}
	var wg sync.WaitGroup
	for _, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				s := r.Slot(ctx)
				if s == nil {
					return
				}
				*s = i
				r.Publish(w)
				if i%1000 == 0 {
					time.Sleep(time.Millisecond) // let the consumer drain and sleep
				}
			}
		}()
	}
	var next [2]int
	for next[0] < n || next[1] < n {
		progressed := false
		for i, r := range rings {
			for r.Len() > 0 {
				if v := *r.Front(); v != next[i] {
					t.Fatalf("ring %d: got %d, want %d", i, v, next[i])
				}
				r.Pop()
				next[i]++
				progressed = true
			}
		}
		if progressed {
			continue
		}
		w.Sleeping(true)
		if rings[0].Len() > 0 || rings[1].Len() > 0 {
			w.Sleeping(false)
			continue
		}
		select {
		case <-w.C():
		case <-ctx.Done():
			t.Fatalf("consumer stalled at %v of %d each", next, n)
		}
		w.Sleeping(false)
	}
	wg.Wait()
}

// TestRingSlotGivesUpWhenCancelled: a producer waiting for room returns nil
// once its context ends.
func TestRingSlotGivesUpWhenCancelled(t *testing.T) {
	r := NewRing[int](1)
	w := NewWakeup()
	*r.Slot(context.Background()) = 1
	r.Publish(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *int)
	go func() { done <- r.Slot(ctx) }()
	select {
	case <-done:
		t.Fatal("Slot returned with the ring full")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if s := <-done; s != nil {
		t.Fatal("Slot returned a slot after its context ended")
	}
}
