package state

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// vstate is a state with a two-byte header — seq, tag — in front of its body,
// the shape of the engine's states (whose header is version, seq, segments).
type vstate struct {
	Seq, Tag byte
	Body     string
}

type vcodec struct{}

func (vcodec) Marshal(dst []byte, v *vstate) []byte {
	return append(append(dst, v.Seq, v.Tag), v.Body...)
}

func (vcodec) MarshalHeader(dst []byte, v *vstate) []byte { return append(dst, v.Seq, v.Tag) }

func (vcodec) Unmarshal(siren string, b []byte) (*vstate, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("bad vstate of %s", siren)
	}
	return &vstate{Seq: b[0], Tag: b[1], Body: string(b[2:])}, nil
}

// vmerge is the Options.MergeHeader of vstate: a header applies when its
// seq is greater than the stored state's.
func vmerge(dst, base, hdr []byte) ([]byte, error) {
	if len(base) < 2 || len(hdr) != 2 {
		return dst, errors.New("bad vstate or header")
	}
	if hdr[0] <= base[0] {
		return append(dst, base...), nil
	}
	return append(append(dst, hdr...), base[2:]...), nil
}

func openH(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, MergeHeader: vmerge})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func enc(seq, tag byte, body string) []byte { return vcodec{}.Marshal(nil, &vstate{seq, tag, body}) }

// readAll returns Get of every SIREN in sirens and Scan, ScanFrom(after) of p.
func readAll(t *testing.T, s *Store, p int32, after string, sirens []string) (gets, scan, from map[string]string) {
	t.Helper()
	gets, scan, from = map[string]string{}, map[string]string{}, map[string]string{}
	for _, k := range sirens {
		v, err := s.Get(p, k)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			gets[k] = string(v)
		}
	}
	last := ""
	if err := s.Scan(p, func(k string, v []byte) error {
		if k <= last {
			t.Fatalf("scan out of order: %s after %s", k, last)
		}
		last = k
		scan[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanFrom(p, after, func(k string, v []byte) error {
		from[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return gets, scan, from
}

// TestHeaderWritesAreMergedByEveryRead: a header put changes what Get, Scan
// and ScanFrom return for its SIREN and nothing else; a later whole write
// with a seq at least the header's wins (the stale header stays, ignored); a
// deletion removes the header, so a SIREN created again is not patched.
func TestHeaderWritesAreMergedByEveryRead(t *testing.T) {
	s := openH(t, t.TempDir())
	defer s.Close()
	sirens := []string{siren(1), siren(2), siren(3), siren(4), siren(5)}
	var puts []KV
	for i, k := range sirens {
		puts = append(puts, KV{SIREN: k, Value: enc(1, 'a', strings.Repeat(fmt.Sprint(i), 50))})
	}
	if err := s.Commit(3, puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(4, []KV{{SIREN: siren(2), Value: enc(1, 'z', "other partition")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, kv := range puts {
		want[kv.SIREN] = string(kv.Value)
	}
	// Headers of 2 and 5 (the last SIREN: the header iterator runs to its end).
	if err := s.Commit(3, []KV{{SIREN: siren(2), Value: []byte{2, 'b'}, Header: true}, {SIREN: siren(5), Value: []byte{3, 'c'}, Header: true}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	want[siren(2)] = string(enc(2, 'b', strings.Repeat("1", 50)))
	want[siren(5)] = string(enc(3, 'c', strings.Repeat("4", 50)))
	for _, after := range []string{"", siren(1), siren(2), siren(3)} {
		gets, scan, from := readAll(t, s, 3, after, sirens)
		wantFrom := map[string]string{}
		for k, v := range want {
			if k > after {
				wantFrom[k] = v
			}
		}
		if fmt.Sprint(gets) != fmt.Sprint(want) || fmt.Sprint(scan) != fmt.Sprint(want) || fmt.Sprint(from) != fmt.Sprint(wantFrom) {
			t.Fatalf("after %q:\nget  %v\nscan %v\nfrom %v\nwant %v", after, gets, scan, from, want)
		}
	}
	if v, _ := s.Get(4, siren(2)); string(v) != string(enc(1, 'z', "other partition")) {
		t.Fatalf("partition 4 read %q", v)
	}
	if n, err := s.Headers(3); err != nil || n != 2 {
		t.Fatalf("Headers(3) = %d, %v", n, err)
	}
	// A whole write at the header's seq: the stored state wins, and the
	// commit deletes the header key it superseded.
	if err := s.Commit(3, []KV{{SIREN: siren(2), Value: enc(2, 'w', "whole")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	want[siren(2)] = string(enc(2, 'w', "whole"))
	if gets, scan, _ := readAll(t, s, 3, "", sirens); fmt.Sprint(gets) != fmt.Sprint(want) || fmt.Sprint(scan) != fmt.Sprint(want) {
		t.Fatalf("after a whole write:\nget  %v\nscan %v\nwant %v", gets, scan, want)
	}
	if n, _ := s.Headers(3); n != 1 {
		t.Fatalf("Headers(3) after a whole write = %d, want 1", n)
	}
	// Deleted, then created again from seq 0: the old header (seq 3) must not apply.
	if err := s.Commit(3, []KV{{SIREN: siren(5)}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(3, []KV{{SIREN: siren(5), Value: enc(0, 'n', "new")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(3, siren(5)); string(v) != string(enc(0, 'n', "new")) {
		t.Fatalf("recreated SIREN read %q", v)
	}
	if n, _ := s.Headers(3); n != 0 {
		t.Fatalf("Headers(3) after the deletion = %d, want 0", n)
	}
	// A header needs a value.
	if err := s.Commit(3, []KV{{SIREN: siren(1), Header: true}}, Checkpoint{}); err == nil {
		t.Fatal("header put without a value accepted")
	}
}

// TestHeadersFoundOnReopen: Open finds the partitions that hold header keys;
// without MergeHeader their reads fail with a clear error (never a silently
// stale state) and header puts are refused, while other partitions work.
func TestHeadersFoundOnReopen(t *testing.T) {
	dir := t.TempDir()
	s := openH(t, dir)
	if err := s.Commit(1, []KV{{SIREN: siren(1), Value: enc(1, 'a', "body")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(2, []KV{{SIREN: siren(1), Value: enc(1, 'a', "plain")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(1, []KV{{SIREN: siren(1), Value: []byte{2, 'b'}, Header: true}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openH(t, dir)
	if v, err := s.Get(1, siren(1)); err != nil || string(v) != string(enc(2, 'b', "body")) {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir) // no MergeHeader
	defer s.Close()
	if _, err := s.Get(1, siren(1)); err == nil || !strings.Contains(err.Error(), "MergeHeader") {
		t.Fatalf("Get without MergeHeader: %v", err)
	}
	if err := s.Scan(1, func(string, []byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "MergeHeader") {
		t.Fatalf("Scan without MergeHeader: %v", err)
	}
	if v, err := s.Get(2, siren(1)); err != nil || string(v) != string(enc(1, 'a', "plain")) {
		t.Fatalf("partition without headers: %q, %v", v, err)
	}
	if err := s.Commit(2, []KV{{SIREN: siren(1), Value: []byte{3, 'c'}, Header: true}}, Checkpoint{}); err == nil {
		t.Fatal("header put accepted without MergeHeader")
	}
}

// TestDropPartitionAndBulkDropHeaders: DropPartition removes a partition's
// header keys with its states; a bulk deletion removes the SIREN's header.
func TestDropPartitionAndBulkDropHeaders(t *testing.T) {
	s := openH(t, t.TempDir())
	defer s.Close()
	for _, p := range []int32{1, 2} {
		if err := s.Commit(p, []KV{{SIREN: siren(1), Value: enc(1, 'a', "x")}, {SIREN: siren(2), Value: enc(1, 'a', "y")}}, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(p, []KV{{SIREN: siren(1), Value: []byte{2, 'b'}, Header: true}, {SIREN: siren(2), Value: []byte{2, 'b'}, Header: true}}, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropPartition(1); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Headers(1); n != 0 {
		t.Fatalf("%d headers after DropPartition", n)
	}
	if err := s.Commit(1, []KV{{SIREN: siren(1), Value: enc(0, 'n', "new")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(1, siren(1)); string(v) != string(enc(0, 'n', "new")) {
		t.Fatalf("after DropPartition: %q", v)
	}
	b := s.BulkWriter(2)
	if err := b.Put(siren(1), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(siren(3), enc(1, 'a', "z")); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Headers(2); n != 1 {
		t.Fatalf("%d headers after the bulk deletion, want 1 (siren 2's)", n)
	}
	if v, _ := s.Get(2, siren(2)); string(v) != string(enc(2, 'b', "y")) {
		t.Fatalf("siren 2 after bulk: %q", v)
	}
}

// TestCachePutHeader: PutHeader writes the header alone for a clean or
// uncached state, and the whole state for one already dirty or touched by
// Put since; Full carries the whole encoding when asked; without MergeHeader
// it is PutTransient.
func TestCachePutHeader(t *testing.T) {
	s := openH(t, t.TempDir())
	defer s.Close()
	c := NewCache[*vstate](s, 7, vcodec{}, 100)
	body := strings.Repeat("b", 300)
	for i := 1; i <= 4; i++ {
		c.Put(siren(i), &vstate{1, 'a', body})
	}
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	// 1: clean → header. 2: dirty (Put) → whole. 3: header then Put → whole.
	// 5: not cached (read by a fresh cache) → header, dropped once committed.
	v1, _, _ := c.Get(siren(1))
	v1.Seq, v1.Tag = 2, 'h'
	c.PutHeader(siren(1), v1)
	v2, _, _ := c.Get(siren(2))
	v2.Body = "changed"
	c.Put(siren(2), v2)
	v2.Seq = 2
	c.PutHeader(siren(2), v2)
	v3, _, _ := c.Get(siren(3))
	v3.Seq = 2
	c.PutHeader(siren(3), v3)
	v3.Body = "grown"
	c.Put(siren(3), v3)
	if est := c.DirtyBytesEstimate(); est > 3*(9+310) {
		t.Fatalf("dirty estimate %d counts the header entry as a whole state", est)
	}
	c.SetEncodeFull(true)
	puts := c.Encode()
	kinds := map[string]string{}
	for _, kv := range puts {
		kinds[kv.SIREN] = fmt.Sprintf("header=%v len=%d full=%d", kv.Header, len(kv.Value), len(kv.Full))
	}
	want := map[string]string{
		siren(1): "header=true len=2 full=302",
		siren(2): "header=false len=9 full=0",
		siren(3): "header=false len=7 full=0",
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("puts %v\nwant %v", kinds, want)
	}
	if err := c.CommitEncoded(puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	fresh := NewCache[*vstate](s, 7, vcodec{}, 100)
	for i, w := range []vstate{{2, 'h', body}, {2, 'a', "changed"}, {2, 'a', "grown"}, {1, 'a', body}} {
		v, ok, err := fresh.Get(siren(i + 1))
		if err != nil || !ok || *v != w {
			t.Fatalf("%s: %+v %v %v, want %+v", siren(i+1), v, ok, err, w)
		}
	}
	// Uncached: a sweep over the store (Each) changes siren 4's header.
	other := NewCache[*vstate](s, 7, vcodec{}, 0)
	if err := other.Each("", func(k string, v *vstate) error {
		if k == siren(4) {
			v.Seq, v.Tag = 5, 'e'
			other.PutHeader(k, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	puts = other.Encode()
	if len(puts) != 1 || !puts[0].Header || puts[0].Full != nil {
		t.Fatalf("uncached PutHeader encoded %+v", puts)
	}
	if err := other.CommitEncoded(puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if other.Len() != 0 {
		t.Fatalf("a transient header entry stayed cached (%d entries)", other.Len())
	}
	if b, _ := s.Get(7, siren(4)); !bytes.Equal(b, enc(5, 'e', body)) {
		t.Fatalf("siren 4 stored %q", b)
	}

	// A store without MergeHeader: PutHeader writes whole states.
	plain := openT(t, t.TempDir())
	defer plain.Close()
	pc := NewCache[*vstate](plain, 7, vcodec{}, 100)
	pc.Put(siren(1), &vstate{1, 'a', body})
	if _, err := pc.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	pv, _, _ := pc.Get(siren(1))
	pv.Seq = 2
	pc.PutHeader(siren(1), pv)
	if puts := pc.Encode(); len(puts) != 1 || puts[0].Header || len(puts[0].Value) != 302 {
		t.Fatalf("PutHeader without MergeHeader encoded %+v", puts)
	}
}

// TestStaleHeadersBeyondTheCleanupBudgetAreIgnored: a commit that fills the
// store's transaction limits leaves the header keys its whole writes
// superseded (no room to delete them); reads ignore them all the same.
func TestStaleHeadersBeyondTheCleanupBudgetAreIgnored(t *testing.T) {
	// Values inline (a value in the value log costs a commit only its pointer).
	s, err := Open(Options{Dir: t.TempDir(), MergeHeader: vmerge, MemTableSize: 1 << 20, ValueThreshold: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 10
	per := int(s.MaxCommitBytes())/n - 20 // ten whole writes fill the commit
	var base, hdrs, whole []KV
	for i := 0; i < n; i++ {
		base = append(base, KV{SIREN: siren(i), Value: enc(1, 'a', "b")})
		hdrs = append(hdrs, KV{SIREN: siren(i), Value: []byte{2, 'h'}, Header: true})
		whole = append(whole, KV{SIREN: siren(i), Value: enc(3, 'w', strings.Repeat("w", per-2))})
	}
	for _, puts := range [][]KV{base, hdrs, whole} {
		if err := s.Commit(0, puts, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
	}
	if k, _ := s.Headers(0); k != n {
		t.Fatalf("%d header keys left, want all %d (no cleanup budget)", k, n)
	}
	seen := 0
	if err := s.Scan(0, func(k string, v []byte) error {
		seen++
		if v[0] != 3 || v[1] != 'w' || len(v) != per {
			t.Fatalf("%s: stale header applied: %q", k, v[:2])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(0, siren(4)); v[1] != 'w' || seen != n {
		t.Fatalf("Get %q, scanned %d", v[:2], seen)
	}
}

// TestCacheKnowsWhereHeadersAre: the cache learns from its reads and commits
// whether a SIREN has a header key, so a whole write deletes a header it read
// without looking for it, and skips the look-up when there is none; a header
// the cache does not know of (written by another cache) is still found and
// deleted. After each commit the store holds exactly the header keys expected
// and every read gives the newest state.
func TestCacheKnowsWhereHeadersAre(t *testing.T) {
	s := openH(t, t.TempDir())
	defer s.Close()
	c := NewCache[*vstate](s, 7, vcodec{}, 100)
	for i := 1; i <= 3; i++ {
		c.Put(siren(i), &vstate{1, 'a', "body"})
	}
	hdrOf := func(k string) hdrState {
		if e := c.m[k]; e != nil {
			return e.hdr
		}
		return 99
	}
	commit := func(wantHeaders int) {
		t.Helper()
		puts := c.Encode()
		if err := c.CommitPending(puts, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
		if err := c.MarkCommitted(puts); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Headers(7); err != nil || n != wantHeaders {
			t.Fatalf("%d header keys (%v), want %d", n, err, wantHeaders)
		}
	}
	commit(0)
	if h := hdrOf(siren(1)); h != hdrNone {
		t.Fatalf("after a whole write in a partition without headers: %d", h)
	}
	// 1 and 2 get a header; 3 a header written by another cache.
	for i := 1; i <= 2; i++ {
		v, _, _ := c.Get(siren(i))
		v.Seq, v.Tag = 2, 'h'
		c.PutHeader(siren(i), v)
	}
	commit(2)
	if hdrOf(siren(1)) != hdrStored || hdrOf(siren(3)) != hdrNone {
		t.Fatalf("after the header commit: %d %d", hdrOf(siren(1)), hdrOf(siren(3)))
	}
	putHeaderElsewhere(t, s, siren(3), 2, 'o')
	if n, _ := s.Headers(7); n != 3 {
		t.Fatalf("%d header keys, want 3", n)
	}
	// A fresh cache reads 1 (header) and 2 (header); 3 is read too.
	c = NewCache[*vstate](s, 7, vcodec{}, 100)
	for i := 1; i <= 3; i++ {
		v, ok, err := c.Get(siren(i))
		if err != nil || !ok || v.Seq != 2 {
			t.Fatalf("%s: %+v %v %v", siren(i), v, ok, err)
		}
		if h := hdrOf(siren(i)); h != hdrStored {
			t.Fatalf("%s read with its header: hint %d", siren(i), h)
		}
	}
	// Whole writes of 1 and 3 delete their headers (known), 2 keeps its own.
	for _, i := range []int{1, 3} {
		v, _, _ := c.Get(siren(i))
		v.Seq, v.Body = 3, "whole"
		c.Put(siren(i), v)
	}
	commit(1)
	if hdrOf(siren(1)) != hdrNone || hdrOf(siren(2)) != hdrStored {
		t.Fatalf("after the whole writes: %d %d", hdrOf(siren(1)), hdrOf(siren(2)))
	}
	// Another cache writes a header for 1 behind this one's back (not
	// something a partition's single owner does): this cache's hint says
	// none, so its next whole write leaves the stale header, which reads
	// ignore (older seq than the whole state).
	putHeaderElsewhere(t, s, siren(1), 4, 'x')
	v, _, _ := c.Get(siren(1))
	v.Seq, v.Body = 5, "again"
	c.Put(siren(1), v)
	commit(2)
	fresh := NewCache[*vstate](s, 7, vcodec{}, 100)
	for i, want := range []vstate{{5, 'h', "again"}, {2, 'h', "body"}, {3, 'o', "whole"}} {
		got, ok, err := fresh.Get(siren(i + 1))
		if err != nil || !ok || *got != want {
			t.Fatalf("%s: %+v %v %v, want %+v", siren(i+1), got, ok, err, want)
		}
	}
	// An unknown hint (a SIREN never read: Put straight away) looks the
	// header up and deletes it.
	c = NewCache[*vstate](s, 7, vcodec{}, 100)
	c.Put(siren(2), &vstate{6, 'n', "new"})
	if hdrOf(siren(2)) != hdrUnknown {
		t.Fatalf("a Put without a read knows the header: %d", hdrOf(siren(2)))
	}
	commit(1)
	if hdrOf(siren(2)) != hdrNone {
		t.Fatalf("after the look-up: %d", hdrOf(siren(2)))
	}
}

// putHeaderElsewhere writes a header (seq, tag) for siren of partition 7 through a cache of its
// own, as a day-change sweep does.
func putHeaderElsewhere(t *testing.T, s *Store, siren string, seq, tag byte) {
	t.Helper()
	other := NewCache[*vstate](s, 7, vcodec{}, 0)
	if err := other.Each("", func(k string, v *vstate) error {
		if k == siren {
			v.Seq, v.Tag = seq, tag
			other.PutHeader(k, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
}

// TestHeaderIndexFollowsTheOwnersWrites: the owner's cache skips the header look-up of a miss
// when its index says there is none. Random whole writes, header writes (of states read back
// after their eviction: a clean budget of 2), deletions and re-creations, committed in the
// background (CommitPending, MarkCommitted) or at once; after every commit each SIREN read
// through the cache and through Store.Get (which always looks) must be the model's state.
func TestHeaderIndexFollowsTheOwnersWrites(t *testing.T) {
	s := openH(t, t.TempDir())
	defer s.Close()
	const n = 12
	// Headers stored before the cache exists: the index learns them at its first miss.
	for i := 0; i < n; i++ {
		if err := s.Commit(7, []KV{{SIREN: siren(i), Value: enc(1, 'a', "body")}}, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(7, []KV{{SIREN: siren(0), Value: []byte{2, 'p'}, Header: true}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	model := map[string]vstate{}
	for i := 0; i < n; i++ {
		model[siren(i)] = vstate{1, 'a', "body"}
	}
	model[siren(0)] = vstate{2, 'p', "body"}
	c := NewCache[*vstate](s, 7, vcodec{}, 2)
	rng := rand.New(rand.NewSource(7))
	seq := map[string]byte{}
	for k, v := range model {
		seq[k] = v.Seq
	}
	for round := 0; round < 300; round++ {
		for op := 0; op < 1+rng.Intn(4); op++ {
			k := siren(rng.Intn(n))
			v, found, err := c.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			want, exists := model[k]
			if found != exists || (found && *v != want) {
				t.Fatalf("round %d: cache Get %s = %+v %v, model %+v %v", round, k, v, found, want, exists)
			}
			seq[k]++
			switch r := rng.Intn(10); {
			case !found:
				nv := vstate{seq[k], 'n', fmt.Sprintf("new%d", round)}
				c.Put(k, &nv)
				model[k] = nv
			case r < 5:
				v.Seq, v.Tag = seq[k], byte('a'+rng.Intn(26))
				c.PutHeader(k, v)
				model[k] = *v
			case r < 9:
				v.Seq, v.Body = seq[k], fmt.Sprintf("whole%d", round)
				c.Put(k, v)
				model[k] = *v
			default:
				c.Delete(k)
				delete(model, k)
			}
		}
		puts := c.Encode()
		if rng.Intn(2) == 0 {
			if err := c.CommitEncoded(puts, Checkpoint{}); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := c.CommitPending(puts, Checkpoint{}); err != nil {
				t.Fatal(err)
			}
			if err := c.MarkCommitted(puts); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			k := siren(i)
			b, err := s.Get(7, k)
			if err != nil {
				t.Fatal(err)
			}
			want, exists := model[k]
			if (b != nil) != exists || (exists && !bytes.Equal(b, enc(want.Seq, want.Tag, want.Body))) {
				t.Fatalf("round %d: stored %s = %q, model %+v %v", round, k, b, want, exists)
			}
		}
	}
	if !c.hdrs.known {
		t.Fatal("the cache never used its header index")
	}
	headers, err := s.Headers(7)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.hdrs.set) < headers {
		t.Fatalf("index holds %d SIRENs, the store %d header keys", len(c.hdrs.set), headers)
	}
	t.Logf("%d header keys stored, %d indexed", headers, len(c.hdrs.set))
}
