package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"testing"
)

// counter is a tiny mutable state: a pointer, as the engine's states are.
type counter struct {
	N   int64
	Pad []byte
}

type counterCodec struct{}

func (counterCodec) Marshal(dst []byte, v *counter) []byte {
	dst = binary.AppendVarint(dst, v.N)
	return append(dst, v.Pad...)
}

func (counterCodec) Unmarshal(siren string, b []byte) (*counter, error) {
	n, k := binary.Varint(b)
	if k <= 0 {
		return nil, fmt.Errorf("bad counter for %s", siren)
	}
	return &counter{N: n, Pad: append([]byte(nil), b[k:]...)}, nil
}

func newCacheT(t testing.TB, maxClean int) (*Store, *Cache[*counter]) {
	t.Helper()
	s := openT(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	return s, NewCache[*counter](s, 7, counterCodec{}, maxClean)
}

func TestCacheWritesEachTouchedSIRENOncePerFlush(t *testing.T) {
	s, c := newCacheT(t, 100)
	for i := range 1000 { // 10 SIRENs, 100 updates each
		k := siren(i % 10)
		v, found, err := c.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			v = &counter{}
		}
		v.N++
		c.Put(k, v)
	}
	if c.DirtyCount() != 10 {
		t.Fatalf("DirtyCount = %d", c.DirtyCount())
	}
	puts, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(puts) != 10 {
		t.Fatalf("Flush wrote %d puts, want 10", len(puts))
	}
	for i, kv := range puts {
		if kv.SIREN != siren(i) {
			t.Fatalf("puts not in SIREN order: %d is %s", i, kv.SIREN)
		}
	}
	if c.DirtyCount() != 0 || c.DirtyBytesEstimate() != 0 {
		t.Fatalf("after flush: %d dirty, %d bytes", c.DirtyCount(), c.DirtyBytesEstimate())
	}
	if puts, _ := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 1001}}); len(puts) != 0 {
		t.Fatalf("second flush wrote %d puts", len(puts))
	}
	b, _ := s.Get(7, siren(3))
	if v, _ := (counterCodec{}).Unmarshal("", b); v.N != 100 {
		t.Fatalf("stored N = %d, want 100", v.N)
	}
	if cp, _, _ := s.Checkpoint(7); cp.Offsets["usage"] != 1001 {
		t.Fatalf("checkpoint %v", cp.Offsets)
	}
}

func TestCacheEvictionNeverLosesDirty(t *testing.T) {
	s, c := newCacheT(t, 5)
	// Many dirty entries, far more than maxClean, interleaved with cache misses that evict.
	for i := range 200 {
		c.Put(siren(i), &counter{N: int64(i)})
	}
	if err := s.Commit(7, []KV{{SIREN: "x-1", Value: []byte{2}}, {SIREN: "x-2", Value: []byte{4}}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, k := range []string{"x-1", "x-2"} {
			if _, found, err := c.Get(k); err != nil || !found {
				t.Fatalf("Get(%s) = %v %v", k, found, err)
			}
		}
	}
	if c.DirtyCount() != 200 {
		t.Fatalf("DirtyCount = %d", c.DirtyCount())
	}
	for i := range 200 {
		v, found, _ := c.Get(siren(i))
		if !found || v.N != int64(i) {
			t.Fatalf("dirty %s lost before flush", siren(i))
		}
	}
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if c.Len() > 5 {
		t.Fatalf("cache holds %d entries after flush, maxClean 5", c.Len())
	}
	for i := range 200 {
		v, found, err := c.Get(siren(i))
		if err != nil || !found || v.N != int64(i) {
			t.Fatalf("after flush and eviction %s: %v %v %v", siren(i), v, found, err)
		}
	}
}

func TestCacheFailedCommitKeepsEntriesDirty(t *testing.T) {
	// Values inline (in the value log, a put costs a commit its pointer only).
	s, err := Open(Options{Dir: t.TempDir(), ValueThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := NewCache[*counter](s, 7, counterCodec{}, 10)
	big := bytes.Repeat([]byte{'p'}, 300)
	n := int(2*s.MaxCommitBytes()/int64(len(big))) + 1
	for i := range n {
		c.Put(siren(i), &counter{N: 1, Pad: big})
	}
	if c.DirtyBytesEstimate() < s.MaxCommitBytes() {
		t.Fatalf("estimate %d below bound %d for %d entries", c.DirtyBytesEstimate(), s.MaxCommitBytes(), n)
	}
	if _, err := c.Flush(Checkpoint{}); !errors.Is(err, ErrTxnTooBig) {
		t.Fatalf("Flush of an oversized batch: %v", err)
	}
	if c.DirtyCount() != n {
		t.Fatalf("after failed flush: %d dirty, want %d", c.DirtyCount(), n)
	}
	if cnt, _ := s.Count(7); cnt != 0 {
		t.Fatalf("failed flush wrote %d keys", cnt)
	}
}

func TestCacheEncodeThenCommitEncoded(t *testing.T) {
	s, c := newCacheT(t, 10)
	c.Put("b", &counter{N: 2})
	c.Put("a", &counter{N: 1})
	c.Delete("c")
	puts := c.Encode()
	if len(puts) != 3 || puts[0].SIREN != "a" || puts[2].SIREN != "c" || puts[2].Value != nil {
		t.Fatalf("Encode = %+v", puts)
	}
	// Touched between Encode and commit: must stay dirty.
	c.Put("b", &counter{N: 3})
	if err := c.CommitEncoded(puts[:1], Checkpoint{}); err == nil {
		t.Fatal("CommitEncoded accepted puts that are not the last Encode")
	}
	if err := c.CommitEncoded(puts, Checkpoint{Offsets: map[string]int64{"usage": 5}}); err != nil {
		t.Fatal(err)
	}
	if c.DirtyCount() != 1 {
		t.Fatalf("DirtyCount = %d, want 1 (b touched after Encode)", c.DirtyCount())
	}
	puts, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 6}})
	if err != nil || len(puts) != 1 || puts[0].SIREN != "b" {
		t.Fatalf("second flush: %+v %v", puts, err)
	}
	if b, _ := s.Get(7, "b"); b == nil || b[0] != 6 { // varint(3) = 6
		t.Fatalf("b stored as %v", b)
	}
	if _, found, _ := c.Get("c"); found {
		t.Fatal("deleted c found")
	}
}

func TestCacheScanMergesStoreAndDirty(t *testing.T) {
	s, c := newCacheT(t, 2)
	var puts []KV
	for _, k := range []string{"b", "d", "f"} {
		puts = append(puts, KV{SIREN: k, Value: (counterCodec{}).Marshal(nil, &counter{N: 1})})
	}
	if err := s.Commit(7, puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	c.Put("a", &counter{N: 10})
	c.Put("d", &counter{N: 20})
	c.Delete("f")
	c.Put("g", &counter{N: 30})
	var got []string
	err := c.Scan(func(k string, v *counter) error {
		got = append(got, fmt.Sprintf("%s=%d", k, v.N))
		if k == "b" {
			v.N = 99
			c.Put(k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[a=10 b=1 d=20 g=30]"; fmt.Sprint(got) != want {
		t.Fatalf("Scan = %v, want %s", got, want)
	}
	if v, _, _ := c.Get("b"); v.N != 99 {
		t.Fatal("Put during Scan lost")
	}
}

func TestCacheResetDropsEverything(t *testing.T) {
	_, c := newCacheT(t, 10)
	c.Put("a", &counter{})
	c.Reset()
	if c.DirtyCount() != 0 || c.Len() != 0 {
		t.Fatal("Reset kept entries")
	}
	if _, found, _ := c.Get("a"); found {
		t.Fatal("unflushed entry survived Reset")
	}
}

func TestCacheRandomOpsMatchModel(t *testing.T) {
	s, c := newCacheT(t, 8)
	model := map[string]int64{}
	r := rand.New(rand.NewSource(3))
	for step := range 5000 {
		k := siren(r.Intn(40))
		switch op := r.Intn(10); {
		case op < 5:
			v, found, err := c.Get(k)
			want, ok := model[k]
			if err != nil || found != ok || (found && v.N != want) {
				t.Fatalf("step %d Get(%s) = %v %v %v, model %d %v", step, k, v, found, err, want, ok)
			}
		case op < 8:
			n := r.Int63n(1000)
			c.Put(k, &counter{N: n})
			model[k] = n
		case op < 9:
			c.Delete(k)
			delete(model, k)
		default:
			if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": int64(step)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.Scan(7, func(k string, b []byte) error {
		v, _ := (counterCodec{}).Unmarshal(k, b)
		if model[k] != v.N {
			return fmt.Errorf("%s stored %d, model %d", k, v.N, model[k])
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(model) {
		t.Fatalf("store has %d SIRENs, model %d", n, len(model))
	}
}

// TestCacheEvictsByBytes: with a byte bound, clean entries are evicted
// (least recently used first) once their encoded sizes pass it, whatever
// the count bound allows; dirty entries are never evicted.
func TestCacheEvictsByBytes(t *testing.T) {
	_, c := newCacheT(t, 1000)
	sirens := []string{"732829320", "542051180", "356000000", "552100554"}
	for i, s := range sirens {
		c.Put(s, &counter{N: int64(i)})
	}
	if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 4 {
		t.Fatalf("Len = %d, want 4 before the byte bound", c.Len())
	}
	size := c.cleanBytes / 4
	c.Put(sirens[0], &counter{N: 9}) // dirty: not evictable
	c.SetMaxBytes(2 * size)
	if c.Len() != 3 || c.cleanBytes > 2*size {
		t.Fatalf("after SetMaxBytes: Len %d, clean bytes %d; want 3 entries (1 dirty + 2 clean) within %d", c.Len(), c.cleanBytes, 2*size)
	}
	if _, found, _ := c.Get(sirens[1]); !found {
		t.Fatal("evicted SIREN not read back from the store")
	}
	if c.clean != 2 || c.cleanBytes != 2*size {
		t.Fatalf("clean %d (%d bytes) after a miss, want 2 (%d bytes)", c.clean, c.cleanBytes, 2*size)
	}
}
