package state

import "testing"

// TestCommitPendingWhileTheOwnerGoesOn: the batch in flight is committed with
// CommitPending while the owner keeps putting; Unencoded counts only what the
// in-flight batch does not cover; MarkCommitted leaves re-touched entries
// dirty, so the next batch carries their newer values.
func TestCommitPendingWhileTheOwnerGoesOn(t *testing.T) {
	s, c := newCacheT(t, 100)
	a, b, d := "732829320", "542051180", "356000000"
	c.Put(a, &counter{N: 1})
	c.Put(b, &counter{N: 1})
	if n, _ := c.Unencoded(); n != 2 {
		t.Fatalf("Unencoded before Encode = %d, want 2", n)
	}
	puts := c.Encode()
	if n, by := c.Unencoded(); n != 0 || by != 0 {
		t.Fatalf("Unencoded right after Encode = %d, %d; want 0, 0", n, by)
	}
	c.Put(a, &counter{N: 2}) // touched again while in flight
	c.Put(d, &counter{N: 1}) // new
	if n, _ := c.Unencoded(); n != 1 {
		t.Fatalf("Unencoded with one new entry = %d, want 1 (re-touched in-flight entries are not new)", n)
	}
	if err := c.CommitPending(puts, Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkCommitted(puts); err != nil {
		t.Fatal(err)
	}
	if c.DirtyCount() != 2 {
		t.Fatalf("after MarkCommitted %d dirty, want 2 (a touched again, d new)", c.DirtyCount())
	}
	next := c.Encode()
	if len(next) != 2 || next[0].SIREN != d || next[1].SIREN != a {
		t.Fatalf("next batch = %+v, want d and a", next)
	}
	got, err := s.Get(7, a)
	if err != nil || got == nil {
		t.Fatalf("a not stored: %v", err)
	}
	if v, _ := (counterCodec{}).Unmarshal(a, got); v.N != 1 {
		t.Fatalf("stored a = %d, want the in-flight value 1", v.N)
	}
	if err := c.MarkCommitted(puts); err == nil {
		t.Fatal("MarkCommitted with a batch that is not the last Encode must fail")
	}
}

// TestMissesReadFromASnapshotThatFollowsCommits: the cache reads misses
// through a snapshot (no wait for commits in flight) that is renewed when a
// batch becomes durable, so an entry evicted after its commit is read back
// with its committed value; a snapshot itself does not see later commits.
func TestMissesReadFromASnapshotThatFollowsCommits(t *testing.T) {
	s, c := newCacheT(t, 1)
	a, b := "732829320", "542051180"
	c.Put(a, &counter{N: 1})
	if v, found, err := c.Get(b); err != nil || found || v != nil {
		t.Fatalf("Get(b) before any commit = %v, %v, %v", v, found, err) // opens the first snapshot
	}
	for i, siren := range []string{a, b} {
		if i == 1 {
			c.Put(b, &counter{N: 5})
		}
		puts := c.Encode()
		if err := c.CommitPending(puts, Checkpoint{Offsets: map[string]int64{"usage": int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
		if err := c.MarkCommitted(puts); err != nil {
			t.Fatal(err)
		}
		_ = siren
	}
	// One clean entry kept: a (committed first) was evicted.
	v, found, err := c.Get(a)
	if err != nil || !found || v.N != 1 {
		t.Fatalf("Get(a) after eviction = %v, %v, %v; want the committed 1", v, found, err)
	}
	sn := s.Snapshot()
	defer sn.Close()
	c.Put(a, &counter{N: 9})
	if _, err := c.Flush(Checkpoint{Offsets: map[string]int64{"usage": 3}}); err != nil {
		t.Fatal(err)
	}
	old, err := sn.Get(7, a)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := (counterCodec{}).Unmarshal(a, old); v.N != 1 {
		t.Fatalf("snapshot saw a later commit: a = %d, want 1", v.N)
	}
}
