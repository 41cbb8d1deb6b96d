package state

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// eachModel is what a cache should hold: live SIREN -> N.
type eachModel map[string]int64

// want returns the "k=N" list Each(after) must give.
func (m eachModel) want(after string) []string {
	var r []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		if k > after {
			r = append(r, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return r
}

func eachList(t *testing.T, c *Cache[*counter], after string) []string {
	t.Helper()
	var got []string
	if err := c.Each(after, func(k string, v *counter) error {
		got = append(got, fmt.Sprintf("%s=%d", k, v.N))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// completeCacheT returns a complete cache over n stored SIRENs siren(0),
// siren(2), ... siren(2n-2) (even numbers: odd ones are free to add), N = i.
func completeCacheT(t *testing.T, n, maxClean int) (*Store, *Cache[*counter], eachModel) {
	t.Helper()
	s, c := newCacheT(t, maxClean)
	m := eachModel{}
	var puts []KV
	for i := 0; i < 2*n; i += 2 {
		puts = append(puts, KV{SIREN: siren(i), Value: (counterCodec{}).Marshal(nil, &counter{N: int64(i)})})
		m[siren(i)] = int64(i)
	}
	if err := s.Commit(7, puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if c.Complete() {
		t.Fatal("complete before a full pass")
	}
	if got, want := eachList(t, c, ""), m.want(""); !slices.Equal(got, want) {
		t.Fatalf("filling pass = %v, want %v", got, want)
	}
	if !c.Complete() {
		t.Fatal("not complete after a full pass that fits")
	}
	return s, c, m
}

func TestCacheEachCompleteOrderAndAfter(t *testing.T) {
	_, c, m := completeCacheT(t, 50, 1000)
	check := func(stage string) {
		t.Helper()
		afters := []string{"", siren(0), siren(1), siren(37), siren(38), siren(98), siren(99), siren(500), "~", " "}
		for k := range m { // every live key as after
			afters = append(afters, k)
		}
		for _, after := range afters {
			if got, want := eachList(t, c, after), m.want(after); !slices.Equal(got, want) {
				t.Fatalf("%s: Each(%q) = %v\nwant %v", stage, after, got, want)
			}
		}
		if !c.Complete() {
			t.Fatalf("%s: no longer complete", stage)
		}
	}
	check("filled")

	// New SIRENs before, between and after the stored ones, and an update.
	for _, i := range []int{-1, 1, 37, 99, 1001} {
		k := siren(i)
		if i < 0 {
			k = "000"
		}
		c.Put(k, &counter{N: int64(i)})
		m[k] = int64(i)
	}
	c.Put(siren(10), &counter{N: 1010})
	m[siren(10)] = 1010
	check("after Puts")

	// Deletions: dirty tombstones first, then committed (removed from the map).
	for _, i := range []int{0, 38, 37, 98} {
		c.Delete(siren(i))
		delete(m, siren(i))
	}
	c.Delete(siren(777)) // never existed
	check("after Deletes")
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	check("after Flush")

	// Deleted and committed, then added again: listed once.
	c.Put(siren(38), &counter{N: 3838})
	m[siren(38)] = 3838
	c.Put(siren(0), &counter{N: 1})
	c.Delete(siren(0))
	c.Put(siren(0), &counter{N: 2})
	m[siren(0)] = 2
	check("re-added, dirty")
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	check("re-added, flushed")

	// Many removals: the sorted list is compacted.
	for i := 0; i < 100; i += 4 {
		c.Delete(siren(i))
		delete(m, siren(i))
	}
	if _, err := c.Flush(Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	check("after many removals")
	if c.keysGone != 0 || len(c.keys) != c.Len() {
		t.Fatalf("not compacted: %d keys, %d gone, %d entries", len(c.keys), c.keysGone, c.Len())
	}

	// More SIRENs added than the list held: rebuilt from scratch.
	for i := range 1100 {
		k := "z" + siren(i)
		c.Put(k, &counter{N: int64(i)})
		m[k] = int64(i)
	}
	if c.keysOK {
		t.Fatal("sorted keys kept through 1100 additions to a list of 40")
	}
	check("after a burst of additions")
}

// fn may Put or Delete the SIREN it is given; an entry deleted during the
// pass before its turn is skipped; an error stops the pass.
func TestCacheEachCompleteMutationsDuringPass(t *testing.T) {
	_, c, m := completeCacheT(t, 20, 100)
	c.Put(siren(5), &counter{N: 5}) // added after completion: in the merged list
	m[siren(5)] = 5
	var got []string
	err := c.Each("", func(k string, v *counter) error {
		got = append(got, k)
		switch k {
		case siren(4):
			c.Delete(k)
			delete(m, k)
			c.Delete(siren(10)) // a later one: skipped
			delete(m, siren(10))
		case siren(6):
			v.N = 600
			c.Put(k, v)
			m[k] = 600
		case siren(8):
			c.Put(k, &counter{N: 800})
			m[k] = 800
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{siren(0), siren(2), siren(4), siren(5), siren(6), siren(8)}
	for i := 12; i < 40; i += 2 {
		want = append(want, siren(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pass visited %v\nwant %v", got, want)
	}
	if got, want := eachList(t, c, ""), m.want(""); !slices.Equal(got, want) {
		t.Fatalf("next pass = %v, want %v", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err = c.Each(siren(6), func(k string, v *counter) error {
		n++
		if k == siren(14) {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 { // 8, 12, 14
		t.Fatalf("Each stopped with %v after %d", err, n)
	}
}

// Eviction ends complete mode (and its sorted list); a full pass that fits
// makes the cache complete again with the right order.
func TestCacheEachCompleteAgainAfterEviction(t *testing.T) {
	s, c, m := completeCacheT(t, 10, 12)
	_ = eachList(t, c, "") // builds the sorted list
	if !c.keysOK {
		t.Fatal("no sorted list in complete mode")
	}
	for i := 1; i < 10; i += 2 {
		c.Put(siren(i), &counter{N: int64(i)})
		m[siren(i)] = int64(i)
	}
	if _, err := c.Flush(Checkpoint{}); err != nil { // 15 clean > 12: evicts
		t.Fatal(err)
	}
	if c.Complete() || c.keysOK {
		t.Fatal("still complete after eviction")
	}
	if err := c.EachUnordered(func(string, *counter) error { return nil }); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("EachUnordered on an incomplete cache: %v", err)
	}
	if got, want := eachList(t, c, siren(3)), m.want(siren(3)); !slices.Equal(got, want) {
		t.Fatalf("incomplete Each = %v, want %v", got, want)
	}
	// Room for all again.
	c2 := NewCache[*counter](s, 7, counterCodec{}, 100)
	if got, want := eachList(t, c2, ""), m.want(""); !slices.Equal(got, want) || !c2.Complete() {
		t.Fatalf("refill = %v (complete %v), want %v", got, c2.Complete(), want)
	}
	c2.Put(siren(100), &counter{N: 100})
	m[siren(100)] = 100
	if got, want := eachList(t, c2, siren(9)), m.want(siren(9)); !slices.Equal(got, want) {
		t.Fatalf("complete again = %v, want %v", got, want)
	}
	c2.Reset()
	if c2.Complete() || c2.keysOK || c2.keys != nil {
		t.Fatal("Reset kept complete mode")
	}
}

func TestCacheEachUnordered(t *testing.T) {
	_, c := newCacheT(t, 100)
	c.Put("a", &counter{N: 1})
	err := c.EachUnordered(func(string, *counter) error {
		t.Fatal("fn called on an incomplete cache")
		return nil
	})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "partition 7") {
		t.Fatalf("EachUnordered on a new cache: %v", err)
	}

	_, c, m := completeCacheT(t, 30, 100)
	c.Put(siren(1), &counter{N: 1})
	m[siren(1)] = 1
	c.Delete(siren(2)) // dirty tombstone
	delete(m, siren(2))
	c.Delete(siren(4))
	delete(m, siren(4))
	if _, err := c.Flush(Checkpoint{}); err != nil { // siren(2), siren(4) leave the map
		t.Fatal(err)
	}
	c.Delete(siren(6)) // stays a dirty tombstone
	delete(m, siren(6))
	seen := map[string]int{}
	err = c.EachUnordered(func(k string, v *counter) error {
		seen[k]++
		if want, ok := m[k]; !ok || v.N != want {
			t.Fatalf("%s = %d, model %d %v", k, v.N, want, ok)
		}
		switch k { // fn may Put or Delete the SIREN it is given
		case siren(8):
			c.Delete(k)
		case siren(10):
			v.N = 1000
			c.Put(k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(m) {
		t.Fatalf("visited %d SIRENs, want %d", len(seen), len(m))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s visited %d times", k, n)
		}
	}
	delete(m, siren(8))
	m[siren(10)] = 1000
	if got, want := eachList(t, c, ""), m.want(""); !slices.Equal(got, want) {
		t.Fatalf("Each after EachUnordered = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := c.EachUnordered(func(string, *counter) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("EachUnordered stopped with %v after %d", err, n)
	}
}

// Random Puts, Deletes, Flushes and passes (some mutating the SIREN they
// are given) over a small key space, so SIRENs are added, removed and added
// again many times: every complete-mode pass equals the model.
func TestCacheEachCompleteRandomOpsMatchModel(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		_, c, m := completeCacheT(t, 20, 1000)
		r := rand.New(rand.NewSource(seed))
		passes := 0
		for step := range 4000 {
			k := siren(r.Intn(60))
			switch op := r.Intn(20); {
			case op < 7:
				n := r.Int63n(1000)
				c.Put(k, &counter{N: n})
				m[k] = n
			case op < 11:
				c.Delete(k)
				delete(m, k)
			case op < 13:
				if _, err := c.Flush(Checkpoint{}); err != nil {
					t.Fatal(err)
				}
			case op < 17:
				after := ""
				if r.Intn(3) > 0 {
					after = siren(r.Intn(62) - 1)
				}
				if got, want := eachList(t, c, after), m.want(after); !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Each(%q) = %v\nwant %v", seed, step, after, got, want)
				}
				passes++
			default: // a pass that mutates what it is given
				var got []string
				err := c.Each("", func(k string, v *counter) error {
					got = append(got, k)
					switch r.Intn(6) {
					case 0:
						c.Delete(k)
						delete(m, k)
					case 1:
						v.N++
						c.Put(k, v)
						m[k] = v.N
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if i > 0 && got[i-1] >= got[i] {
						t.Fatalf("seed %d step %d: pass out of order: %v", seed, step, got)
					}
				}
			}
			if !c.Complete() {
				t.Fatalf("seed %d step %d: no longer complete", seed, step)
			}
		}
		if passes < 500 {
			t.Fatalf("only %d passes", passes)
		}
	}
}
