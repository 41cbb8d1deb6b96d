package state

import (
	"errors"
	"math/rand"
	"testing"
)

// completeCacheB returns a complete cache of n stored SIRENs (N = i). The
// entries are allocated in SIREN order (as a filling pass decodes them), or
// in random order when shuffled (as SIRENs first seen over time are).
func completeCacheB(b *testing.B, n int, shuffled bool) *Cache[*counter] {
	b.Helper()
	s := openT(b, b.TempDir())
	b.Cleanup(func() { _ = s.Close() })
	c := NewCache[*counter](s, 7, counterCodec{}, 2*n)
	if shuffled {
		for _, j := range rand.New(rand.NewSource(1)).Perm(n) {
			c.Put(siren(j), &counter{N: int64(j)})
			if c.DirtyCount() == 1000 {
				if _, err := c.Flush(Checkpoint{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := c.Flush(Checkpoint{}); err != nil {
			b.Fatal(err)
		}
	} else {
		for i := 0; i < n; i += 1000 {
			puts := make([]KV, 0, 1000)
			for j := i; j < min(i+1000, n); j++ {
				puts = append(puts, KV{SIREN: siren(j), Value: (counterCodec{}).Marshal(nil, &counter{N: int64(j)})})
			}
			if err := s.Commit(7, puts, Checkpoint{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := c.Each("", func(string, *counter) error { return nil }); err != nil {
		b.Fatal(err)
	}
	if !c.Complete() || c.Len() != n {
		b.Fatalf("complete %v, %d entries", c.Complete(), c.Len())
	}
	return c
}

// BenchmarkCacheEachComplete100k: one full pass (Each("")) over 100k cached
// SIRENs in complete mode, as each pass of a day-change sweep; Shuffled:
// entries allocated in random order.
func BenchmarkCacheEachComplete100k(b *testing.B) { benchEachComplete(b, false, false) }

func BenchmarkCacheEachComplete100kShuffled(b *testing.B) { benchEachComplete(b, true, false) }

// benchEachComplete times one pass over 100k SIRENs of a complete cache:
// Each("") in SIREN order, or EachUnordered.
func benchEachComplete(b *testing.B, shuffled, unordered bool) {
	const n = 100_000
	c := completeCacheB(b, n, shuffled)
	var sum int64
	fn := func(_ string, v *counter) error { sum += v.N; return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if unordered {
			err = c.EachUnordered(fn)
		} else {
			err = c.Each("", fn)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

// BenchmarkCacheEachCompleteNewSIREN100k: as BenchmarkCacheEachComplete100k
// with one new SIREN Put before each pass (the sorted keys must take it in).
func BenchmarkCacheEachCompleteNewSIREN100k(b *testing.B) {
	const n = 100_000
	c := completeCacheB(b, n, false)
	fn := func(string, *counter) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Put(siren(n+i), &counter{N: 1})
		if err := c.Each("", fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheEachCompleteChunked100k: one pass over 100k SIRENs resumed
// after a cursor every 10k SIRENs, as a sweep committed in chunks.
func BenchmarkCacheEachCompleteChunked100k(b *testing.B) {
	const n, chunk = 100_000, 10_000
	c := completeCacheB(b, n, false)
	errFull := errors.New("full")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cursor, seen := "", 0
		for {
			k := 0
			err := c.Each(cursor, func(siren string, _ *counter) error {
				cursor = siren
				seen++
				if k++; k == chunk {
					return errFull
				}
				return nil
			})
			if err == nil {
				break
			}
			if !errors.Is(err, errFull) {
				b.Fatal(err)
			}
		}
		if seen != n {
			b.Fatalf("saw %d", seen)
		}
	}
}

// BenchmarkCacheEachUnordered100k: one EachUnordered pass over 100k cached
// SIRENs (compare BenchmarkCacheEachComplete100k); Shuffled: entries
// allocated in random order.
func BenchmarkCacheEachUnordered100k(b *testing.B) { benchEachComplete(b, false, true) }

func BenchmarkCacheEachUnordered100kShuffled(b *testing.B) { benchEachComplete(b, true, true) }
