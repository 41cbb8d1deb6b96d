package state

import (
	"strconv"
	"testing"
)

// TestCachePutTransientIsDroppedOnceCommitted: entries created by PutTransient
// are written like any other and then leave memory; a SIREN that was cached,
// or is Put again before the commit, stays cached.
func TestCachePutTransientIsDroppedOnceCommitted(t *testing.T) {
	s, c := newCacheT(t, 100)
	c.Put(siren(1), &counter{N: 1}) // hot: cached before the pass
	if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	c.PutTransient(siren(1), &counter{N: 10}) // already cached: stays
	c.PutTransient(siren(2), &counter{N: 20}) // cold: dropped after commit
	c.PutTransient(siren(3), &counter{N: 30})
	c.Put(siren(3), &counter{N: 31}) // Put again: ordinary
	if c.Len() != 3 {
		t.Fatalf("Len before commit = %d", c.Len())
	}
	puts, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(puts) != 3 {
		t.Fatalf("%d puts, want 3", len(puts))
	}
	if c.Len() != 2 || c.DirtyCount() != 0 {
		t.Fatalf("after commit: %d cached, %d dirty; want 2, 0", c.Len(), c.DirtyCount())
	}
	// Everything was written; the dropped SIREN reads back from the store.
	for i, want := range map[int]int64{1: 10, 2: 20, 3: 31} {
		b, err := s.Get(7, siren(i))
		if err != nil || b == nil {
			t.Fatalf("stored %s: %v %v", siren(i), b, err)
		}
		v, found, err := c.Get(siren(i))
		if err != nil || !found || v.N != want {
			t.Fatalf("Get(%s) = %+v, %v, %v; want %d", siren(i), v, found, err, want)
		}
	}
}

// TestCachePutTransientLeavesACompleteCacheIncomplete: dropping a live SIREN
// means the cache no longer holds the whole partition.
func TestCachePutTransientLeavesACompleteCacheIncomplete(t *testing.T) {
	_, c := newCacheT(t, 100)
	for i := 0; i < 5; i++ {
		c.Put(siren(i), &counter{N: int64(i)})
	}
	if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Each("", func(string, *counter) error { return nil }); err != nil || !c.Complete() {
		t.Fatalf("complete = %v, %v", c.Complete(), err)
	}
	c.PutTransient(siren(9), &counter{N: 9})
	if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 2}}); err != nil {
		t.Fatal(err)
	}
	if c.Complete() {
		t.Fatal("cache still complete after dropping a live SIREN")
	}
	var got []string
	if err := c.Each("", func(k string, v *counter) error { got = append(got, k+"="+strconv.FormatInt(v.N, 10)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[5] != siren(9)+"=9" {
		t.Fatalf("Each after the drop = %v", got)
	}
}
