package state

import (
	"bytes"
	"testing"
)

// BenchmarkCommit1000: one Commit of 1000 puts (300-byte values) plus a checkpoint, rewriting a
// working set of 100k SIRENs. Reports ns per put as well.
func BenchmarkCommit1000(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	val := bytes.Repeat([]byte{'v'}, 300)
	puts := make([]KV, 1000)
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = siren(i)
	}
	cp := Checkpoint{Offsets: map[string]int64{"usage": 0, "outages": 0, "claims": 0, "profiles": 0}, Meta: make([]byte, 64)}
	b.SetBytes(int64(len(puts) * (len(val) + 9)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range puts {
			puts[j] = KV{SIREN: keys[(i*1000+j)%len(keys)], Value: val}
		}
		cp.Offsets["usage"] = int64(i)
		if err := s.Commit(0, puts, cp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(puts)), "ns/put")
}

func BenchmarkCacheGetHit(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	c := NewCache[*counter](s, 0, counterCodec{}, 10_000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = siren(i)
		c.Put(keys[i], &counter{N: int64(i)})
	}
	if _, err := c.Flush(Checkpoint{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, found, err := c.Get(keys[i%len(keys)]); !found || err != nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkScan: ns/op is per key (each op scans 100k keys; the time is divided by them).
func BenchmarkScan(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	val := bytes.Repeat([]byte{'v'}, 300)
	const n = 100_000
	for i := 0; i < n; i += 1000 {
		puts := make([]KV, 1000)
		for j := range puts {
			puts[j] = KV{SIREN: siren(i + j), Value: val}
		}
		if err := s.Commit(0, puts, Checkpoint{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	keys := 0
	for i := 0; i < b.N; i++ {
		if err := s.Scan(0, func(string, []byte) error { keys++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(keys), "ns/key")
}
