package load

import (
	"context"
	"time"
)

// bucket is a token bucket on the wall clock (a load tool's pacing, not
// business logic): tokens accrue at rate per second up to burst, starting
// empty, and a write of n records takes n tokens. Hence at most rate·t
// records leave in any first t seconds, and a producer that fell behind
// catches up by at most burst records at once.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: max(burst, 1), last: now}
}

// wait blocks until n tokens are available and takes them.
func (b *bucket) wait(ctx context.Context, n int) error {
	d := b.take(float64(n), time.Now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// take takes n tokens at now, going into debt if needed, and returns how
// long to wait until the debt is paid.
func (b *bucket) take(n float64, now time.Time) time.Duration {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	wait := time.Duration(-b.tokens / b.rate * float64(time.Second))
	// The debt is paid at last+wait: account for it there, so the next
	// call does not credit the time spent waiting a second time.
	b.tokens = 0
	b.last = b.last.Add(wait)
	return b.last.Sub(now)
}
