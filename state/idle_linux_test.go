package state

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestQuietSpell: the idle pass runs once per quiet spell, at its first quiet tick, and again
// only after a write.
func TestQuietSpell(t *testing.T) {
	var q quietSpell
	for i, c := range []struct {
		writes  uint64
		settled bool
		want    bool
	}{
		{0, true, false},  // the first tick only records
		{0, true, true},   // a quiet interval: the pass
		{0, true, false},  // still quiet: done already
		{3, true, false},  // writes
		{5, true, false},  // more writes
		{5, false, false}, // quiet, compactions behind: later
		{5, false, false},
		{5, true, true}, // caught up: the pass
		{5, true, false},
		{6, true, false},
		{6, true, true},
	} {
		if got := q.quiet(c.writes, c.settled); got != c.want {
			t.Fatalf("tick %d (writes %d, settled %v): quiet = %v, want %v", i, c.writes, c.settled, got, c.want)
		}
	}
}

// TestIdleGCCollectsWhatTheBusyGCLeaves: value-log files a third garbage stay while the store
// is busy (the GC's ratio is one half) and go in the pass the GC loop runs once the writes
// stop; every state still reads back.
func TestIdleGCCollectsWhatTheBusyGCLeaves(t *testing.T) {
	const n = 6_000
	_, s := vlogStore(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: 50 * time.Millisecond})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	writeRound(t, s, n, 0, val)
	// Rewrite a third of the states, spread over every file of round 0.
	rewritten := func(j int) bool { return j%3 == 0 }
	for i := 0; i < n; i += 500 {
		var puts []KV
		for j := i; j < i+500; j++ {
			if rewritten(j) {
				puts = append(puts, KV{SIREN: siren(j), Value: append([]byte("1:"+strconv.Itoa(j)+":"), val...)})
			}
		}
		if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(n + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// Small states (kept in the LSM tree) in another partition: memtable flushes and
	// compactions, which tell the GC where the garbage is.
	_, before := s.Size() // the pass may run as soon as the last Commit returns
	passes := s.IdleGCPasses()
	small := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < 30_000; i += 1000 {
		puts := make([]KV, 0, 1000)
		for j := i; j < i+1000; j++ {
			puts = append(puts, KV{SIREN: siren(j), Value: small})
		}
		if err := s.Commit(1, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The quiet spell starts now.
	awaitIdlePass(t, s, passes, before, 9, n*(len(val)+12))
	checkRounds(t, s, n, func(j int) int {
		if rewritten(j) {
			return 1
		}
		return 0
	}, val)
}

// awaitIdlePass waits for the store's next idle pass after passes (at most minutes: never fail
// on a slow machine) and wants it to leave the value log under tenths/10 of before.
func awaitIdlePass(t *testing.T, s *Store, passes uint64, before int64, tenths int64, live int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Minute); s.IdleGCPasses() == passes; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no idle GC pass within 5 minutes of the last write")
		}
	}
	_, after := s.Size()
	t.Logf("value log %d kB before the idle pass, %d kB after (%d kB live)", before>>10, after>>10, live>>10)
	if after >= before*tenths/10 {
		t.Fatalf("the idle pass left the value log at %d kB (was %d kB)", after>>10, before>>10)
	}
}

// TestIdleGCFlushesTheMemtables: a store whose last writes all sit in its memtable (so no
// compaction has told the GC where their garbage is) still gets its files collected by the
// idle pass, which flushes the memtables first; the flush leaves no key behind.
func TestIdleGCFlushesTheMemtables(t *testing.T) {
	const n = 6_000
	_, s := vlogStore(t, Options{MemTableSize: 16 << 20, ValueLogFileSize: 1 << 20, GCInterval: 50 * time.Millisecond})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	passes := s.IdleGCPasses()
	writeRound(t, s, n, 0, val)
	writeRound(t, s, n, 1, val)
	_, before := s.Size()
	awaitIdlePass(t, s, passes, before, 7, n*(len(val)+12))
	checkRound(t, s, n, 1, val)
	if err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(flushMarker)
		return err
	}); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Fatalf("flush marker after the pass: %v", err)
	}
}

// TestFlushNeverFailsAWrite: memtable flushes (which make Badger refuse writes while they run)
// interleaved with Commits and bulk restores from other goroutines: no write fails, every state
// is there.
func TestFlushNeverFailsAWrite(t *testing.T) {
	_, s := vlogStore(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: time.Hour})
	val := bytes.Repeat([]byte("v"), 300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	// writer runs round(r) for r = 0, 1, … until stop closes or a round fails.
	writer := func(round func(r int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := round(r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	writer(func(r int) error { // commits to partition 0
		if r%8 == 0 {
			time.Sleep(time.Millisecond) // room for the flushes' TryLock
		}
		puts := []KV{{SIREN: siren(r % 500), Value: append([]byte(strconv.Itoa(r)), val...)}}
		return s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(r)}})
	})
	writer(func(r int) error { // bulk restores of partition 1
		defer time.Sleep(time.Millisecond)
		b := s.BulkWriter(1)
		for i := 0; i < 200; i++ {
			if err := b.Put(siren(1000+i), val); err != nil {
				return err
			}
		}
		return b.Finish(Checkpoint{Offsets: map[string]int64{"usage": int64(r)}})
	})
	flushes := 0
	for start := time.Now(); flushes < 20 && time.Since(start) < 5*time.Minute; time.Sleep(time.Millisecond) {
		ok, err := s.flushMemtables()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			flushes++
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a write failed during flushes: %v", err)
	}
	t.Logf("%d flushes", flushes)
	if flushes == 0 {
		t.Fatal("no flush got the write lock in 5 minutes")
	}
	for _, p := range []int32{0, 1} {
		if n, err := s.Count(p); err != nil || n == 0 {
			t.Fatalf("partition %d: %d states, %v", p, n, err)
		}
	}
}

// TestNoIdleGC: with Options.NoIdleGC the loop runs no idle pass; Store.IdleGC runs one.
func TestNoIdleGC(t *testing.T) {
	_, s := vlogStore(t, Options{GCInterval: 10 * time.Millisecond, NoIdleGC: true})
	writeRound(t, s, 100, 0, bytes.Repeat([]byte("v"), 300))
	time.Sleep(200 * time.Millisecond) // 20 intervals without a write
	if n := s.IdleGCPasses(); n != 0 {
		t.Fatalf("%d idle passes with NoIdleGC", n)
	}
	if _, err := s.IdleGC(); err != nil {
		t.Fatal(err)
	}
	if n := s.IdleGCPasses(); n != 1 {
		t.Fatalf("%d idle passes after IdleGC", n)
	}
}
