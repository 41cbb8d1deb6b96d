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

// BenchmarkSweepChunk: one sweep chunk of 2,000 changed decisions committed
// over a store of 200k states of ~1 KB, as whole states (before header keys)
// or as headers, in commits of at most half Badger's transaction limit; the
// run ends with Badger compacting what it wrote (Flatten, inside the timing),
// since compaction is most of what whole rewrites cost. Compare the two
// sub-benchmarks of one run.
func BenchmarkSweepChunk(b *testing.B) {
	const n, chunk = 200_000, 2000
	for _, mode := range []string{"whole", "header"} {
		b.Run(mode, func(b *testing.B) {
			s := openH(b, b.TempDir())
			defer s.Close()
			body := string(bytes.Repeat([]byte{'u'}, 1000))
			for i := 0; i < n; i += 1000 {
				puts := make([]KV, 0, 1000)
				for j := i; j < i+1000; j++ {
					puts = append(puts, KV{SIREN: siren(j), Value: enc(1, 'a', body)})
				}
				if err := s.Commit(0, puts, Checkpoint{}); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.db.Flatten(2); err != nil {
				b.Fatal(err)
			}
			puts := make([]KV, chunk)
			var written int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq := byte(2 + i%250)
				for j := range puts {
					k := siren((i*chunk + j) * 7 % n)
					if mode == "whole" {
						puts[j] = KV{SIREN: k, Value: enc(seq, 'b', body)}
					} else {
						puts[j] = KV{SIREN: k, Value: []byte{seq, 'b'}, Header: true}
					}
					written += s.PutCost(k, puts[j].Value)
				}
				// In commits of at most half the transaction limit, as the
				// processor's chunks (whole states: ~800 per commit).
				for rest := puts; len(rest) > 0; {
					k, size := 0, int64(0)
					for k < len(rest) && size < s.MaxCommitBytes()/2 {
						size += s.PutCost(rest[k].SIREN, rest[k].Value)
						k++
					}
					if err := s.Commit(0, rest[:k], Checkpoint{}); err != nil {
						b.Fatal(err)
					}
					rest = rest[k:]
				}
			}
			if err := s.db.Flatten(2); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(written)/float64(b.N), "written-B/op")
		})
	}
}
