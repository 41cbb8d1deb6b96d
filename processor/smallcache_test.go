package processor_test

import (
	"sync"
	"testing"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
)

// TestReplayWithASmallCacheIsIdentical: a partition much bigger than the
// cache takes the other code paths of the sweep (pass 1 from the store, pass
// 2 merging store and cache, forced commits, sweep chunks resumed from a
// cursor, states changed by the sweep dropped after their commit, Get misses
// read back from Badger). The outputs and the final Badger state must be
// byte-identical to a run whose cache holds every SIREN, and to one whose
// store takes no header-only writes (every sweep change a whole state).
func TestReplayWithASmallCacheIsIdentical(t *testing.T) {
	const parts = 2
	brokers, _ := testkit.Loaded(t, parts, gen.Config{SIRENs: 240, Days: 75, Seed: 5, BadRate: 0.002})
	pass1 := map[string]map[string]int{} // topic → pass 1 source → day changes
	var mu sync.Mutex
	headers := map[string]int{} // topic → header keys left in the store
	replay := func(topic string, cacheSIRENs, commitRecords int) string {
		t.Helper()
		dir := t.TempDir()
		cfg := testkit.Config(t, brokers, dir)
		if topic == "whole-states" {
			if err := cfg.Store.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := state.Open(state.Options{Dir: dir}) // no MergeHeader: no header writes
			if err != nil {
				t.Fatal(err)
			}
			cfg.Store = st
		}
		cfg.CacheSIRENs, cfg.CommitRecords = cacheSIRENs, commitRecords
		pass1[topic] = map[string]int{}
		cfg.OnDayChange = func(dc processor.DayChange) {
			mu.Lock()
			pass1[topic][dc.Pass1]++
			mu.Unlock()
		}
		replayTo(t, cfg, topic)
		for p := int32(0); p < parts; p++ {
			n, err := cfg.Store.Headers(p)
			if err != nil {
				t.Fatal(err)
			}
			headers[topic] += n
		}
		if err := cfg.Store.Close(); err != nil {
			t.Fatal(err)
		}
		return testkit.DumpState(t, dir, parts, "")
	}
	bigState := replay("big-cache", 0, 0)     // defaults: every SIREN fits
	smallState := replay("small-cache", 9, 7) // ~120 SIRENs per partition, 7-record commits and sweep chunks
	wholeState := replay("whole-states", 9, 7)
	// Sweep changes of clean states are written as headers (merged by every
	// read); the reference store takes none. (With a cache that holds the
	// partition a batch spans days, so a sweep finds its states dirty.)
	if headers["small-cache"] == 0 || headers["whole-states"] != 0 {
		t.Fatalf("header keys: %v", headers)
	}
	t.Logf("header keys: %v", headers)
	if wholeState != smallState {
		t.Fatal("final Badger state with header writes differs from the one with whole states")
	}
	// The small cache takes pass 1 from the store on a task's first day
	// change and from the set kept since the previous one afterwards.
	if pass1["small-cache"]["kept set"] == 0 || pass1["small-cache"]["store"] == 0 || pass1["big-cache"]["cache"] == 0 {
		t.Fatalf("pass 1 sources: %v", pass1)
	}
	t.Logf("pass 1 sources: %v", pass1)
	if bigState != smallState {
		t.Fatal("final Badger state differs between a cache that holds the partition and a small one")
	}
	big, small := byPartition(testkit.ReadAllFresh(t, brokers, "big-cache")), byPartition(testkit.ReadAllFresh(t, brokers, "small-cache"))
	n := 0
	for p := 0; p < parts; p++ {
		if len(big[p]) != len(small[p]) {
			t.Fatalf("partition %d: %d segment changes with a big cache, %d with a small one", p, len(big[p]), len(small[p]))
		}
		for i := range big[p] {
			if d := testkit.DiffMessage(big[p][i], small[p][i]); d != "" {
				t.Fatalf("partition %d record %d: %s", p, i, d)
			}
		}
		n += len(big[p])
	}
	if n == 0 {
		t.Fatal("no segment changes")
	}
	t.Logf("%d segment changes identical, final states identical", n)
}
