package state

import (
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkIdleFlushStall measures what a write meets when it arrives while the idle pass
// flushes the memtables (flushMemtables: Badger's DropPrefix blocks every writer, so the
// store holds its writers back until it returns). Per iteration: the memtables are filled
// with recent rewrites of 850-byte states (a busy spell), then one goroutine commits a state
// every 2 ms while the flush runs. ns/op is the flush; it also reports the slowest and the
// median commit: the slowest is the stall of a write that came at the start of the flush.
//
//	go test ./state -run '^$' -bench IdleFlushStall -benchtime 3x
func BenchmarkIdleFlushStall(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	val := make([]byte, 850)
	rand.New(rand.NewSource(1)).Read(val)
	const sirens = 300_000
	fill := func(from, to int) {
		var kvs []KV
		p := int32(0)
		for i := from; i < to; i++ {
			kvs = append(kvs, KV{SIREN: siren(i), Value: val})
			if len(kvs) >= s.MaxCommitEntries()/2 || int64(len(kvs)*900) >= s.MaxCommitBytes()/2 || i == to-1 {
				if err := s.Commit(p, kvs, Checkpoint{}); err != nil {
					b.Fatal(err)
				}
				kvs, p = kvs[:0], (p+1)%4
			}
		}
	}
	fill(0, sirens)
	var worst, median time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(0, sirens/3)
		var mu sync.Mutex
		var lats []time.Duration
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				t := time.Now()
				if err := s.Commit(int32(j%4), []KV{{SIREN: siren(j * 7919 % sirens), Value: val}}, Checkpoint{}); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lats = append(lats, time.Since(t))
				mu.Unlock()
			}
		}()
		time.Sleep(100 * time.Millisecond)
		b.StartTimer()
		flushed, err := s.flushMemtables()
		b.StopTimer()
		if err != nil || !flushed {
			b.Fatalf("flush: %v (flushed %v)", err, flushed)
		}
		time.Sleep(100 * time.Millisecond)
		close(stop)
		<-done
		slices.Sort(lats)
		worst = max(worst, lats[len(lats)-1])
		median += lats[len(lats)/2]
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-commit-ms")
	b.ReportMetric(float64(median.Microseconds())/1000/float64(b.N), "p50-commit-ms")
}
