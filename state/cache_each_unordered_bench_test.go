package state

import "testing"

// BenchmarkCacheEachUnordered100k: one EachUnordered pass over 100k cached
// SIRENs (compare BenchmarkCacheEachComplete100k); Shuffled: entries
// allocated in random order.
func BenchmarkCacheEachUnordered100k(b *testing.B) { benchEachUnordered(b, false) }

func BenchmarkCacheEachUnordered100kShuffled(b *testing.B) { benchEachUnordered(b, true) }

func benchEachUnordered(b *testing.B, shuffled bool) {
	const n = 100_000
	c := completeCacheB(b, n, shuffled)
	var sum int64
	fn := func(_ string, v *counter) error { sum += v.N; return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.EachUnordered(fn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}
