package load

import (
	"testing"
	"time"
)

// TestBucketNeverExceedsTheRate: starting empty, a bucket hands out at most
// rate·t tokens in the first t seconds, and time spent waiting is not
// credited twice.
func TestBucketNeverExceedsTheRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(100, 10, t0) // 100/s, bursts of 10
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		now  int // ms after start
		n    float64
		wait time.Duration
	}{
		{0, 10, 100 * time.Millisecond},   // empty: 10 tokens take 100 ms
		{100, 10, 100 * time.Millisecond}, // sent at 100 ms: the next 10 are due at 200 ms
		{200, 5, 50 * time.Millisecond},
		{1250, 10, 0},                    // idle for a second: the burst is capped at 10
		{1250, 1, 10 * time.Millisecond}, // so the next one waits
	}
	for i, s := range steps {
		if got := b.take(s.n, at(s.now)); got != s.wait {
			t.Fatalf("step %d: take(%v) at %d ms waits %s, want %s", i, s.n, s.now, got, s.wait)
		}
	}
}
