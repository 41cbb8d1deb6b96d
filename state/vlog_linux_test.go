//go:build linux

package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// residentVlogKB sums the resident kB of this process's mappings of .vlog files under dir, and
// returns the newest file's part apart.
func residentVlogKB(t *testing.T, dir string) (total, newest int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	files, err := vlogFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var top uint32
	for fid := range files {
		top = max(top, fid)
	}
	var in, isTop bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if strings.Contains(f[0], "-") && len(f) >= 5 {
			in = len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") && strings.HasSuffix(f[5], ".vlog")
			if in {
				fid, _ := vlogFid(f[5])
				isTop = fid == top
			}
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			total += v
			if isTop {
				newest += v
			}
		}
	}
	return total, newest
}

// vlogStore opens a store whose states go to small value-log files, in a directory whose path
// is the one /proc/self/maps shows.
func vlogStore(t *testing.T, o Options) (string, *Store) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return dir, s
}

// writeRound commits n states of ~800 B to partition 0, each prefixed with "round:i:".
func writeRound(t *testing.T, s *Store, n, round int, val []byte) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		puts := make([]KV, 0, 500)
		for j := i; j < min(i+500, n); j++ {
			puts = append(puts, KV{SIREN: siren(j), Value: append([]byte(strconv.Itoa(round)+":"+strconv.Itoa(j)+":"), val...)})
		}
		if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(round*n + i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// settleCompactions waits until Badger's compactors have caught up with the writes (at most a
// few minutes: a test never fails because the machine is slow, only if they never do).
func settleCompactions(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Minute); s.CompactionPending() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("Badger compactions did not catch up within 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkRound reads every state back and wants round's values.
func checkRound(t *testing.T, s *Store, n, round int, val []byte) {
	t.Helper()
	checkRounds(t, s, n, func(int) int { return round }, val)
}

// checkRounds reads every state back and wants state j to hold round(j)'s value.
func checkRounds(t *testing.T, s *Store, n int, round func(j int) int, val []byte) {
	t.Helper()
	count := 0
	if err := s.Scan(0, func(sr string, v []byte) error {
		want := strconv.Itoa(round(count)) + ":" + strconv.Itoa(count) + ":"
		if !bytes.HasPrefix(v, []byte(want)) || len(v) != len(want)+len(val) {
			t.Fatalf("state %s: %q… (%d bytes), want %q…", sr, v[:min(len(v), 16)], len(v), want)
		}
		count++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("scanned %d states, want %d", count, n)
	}
}

// TestStatesGoToTheValueLog: with the default options a SIREN-sized state is stored in the value
// log, not in the LSM tree (what keeps compaction from rewriting states).
func TestStatesGoToTheValueLog(t *testing.T) {
	_, s := vlogStore(t, Options{})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	writeRound(t, s, 20_000, 0, val)
	lsm, vlog := s.Size()
	t.Logf("20,000 states of ~810 B: LSM %d kB, value log %d kB", lsm>>10, vlog>>10)
	if vlog < 20_000*800 {
		t.Fatalf("value log holds %d bytes, want the states (≥ %d)", vlog, 20_000*800)
	}
	checkRound(t, s, 20_000, 0, val)
}

// TestValueLogGCBoundsGarbage: every write of a state leaves its previous version in the value
// log; the store's GC rewrites files that are half garbage and deletes them, so rewriting the
// same states over and over keeps the value log within a few times the live states, and every
// state reads back as last written.
func TestValueLogGCBoundsGarbage(t *testing.T) {
	const n, rounds = 5_000, 24
	_, s := vlogStore(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: time.Hour})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	collected, peak := 0, int64(0)
	for r := 0; r < rounds; r++ {
		writeRound(t, s, n, r, val)
		// The GC learns which files hold garbage from compactions, which run in the
		// background: let them catch up first (on a loaded machine they lag behind the writes).
		settleCompactions(t, s)
		k, err := s.GCValueLog()
		if err != nil {
			t.Fatal(err)
		}
		collected += k
		_, vlog := s.Size()
		if r >= rounds/2 { // past the first compactions, which only move tables down
			peak = max(peak, vlog)
		}
	}
	live := int64(n * (len(val) + 12))
	_, vlog := s.Size()
	t.Logf("%d rounds of %d states (%d kB live, %d kB written): value log %d kB at the end, %d kB at most in the second half; %d files collected",
		rounds, n, live>>10, int64(rounds)*live>>10, vlog>>10, peak>>10, collected)
	if collected == 0 {
		t.Fatal("the GC collected no file")
	}
	if peak > 6*live {
		t.Fatalf("value log reached %d kB for %d kB of live states: the GC does not keep up", peak>>10, live>>10)
	}
	checkRound(t, s, n, rounds-1, val)
}

// TestValueLogFilesGoOnlyAtAnIteratorClose: what makes MADV_DONTNEED on value-log pages safe.
// A GC rewrites files but, its guard iterator being open, never deletes (unmaps) them itself:
// the deletion waits for the close of the last open iterator (here a scan's), and that close
// waits while a release holds delMu.
func TestValueLogFilesGoOnlyAtAnIteratorClose(t *testing.T) {
	const n = 5_000
	dir, s := vlogStore(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: time.Hour})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	for r := 0; r < 12; r++ {
		writeRound(t, s, n, r, val)
	}
	time.Sleep(200 * time.Millisecond) // let the last compactions report their discards
	before, err := vlogFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	txn := s.db.NewTransaction(false) // a long scan
	it := txn.NewIterator(badger.IteratorOptions{})
	k, err := s.GCValueLog()
	if err != nil {
		t.Fatal(err)
	}
	if k == 0 {
		s.closeIter(it)
		txn.Discard()
		t.Skip("nothing to collect: cannot tell")
	}
	mid, _ := vlogFiles(dir)
	for fid := range before {
		if !mid[fid] {
			t.Fatalf("value-log file %d deleted by the GC while an iterator was open", fid)
		}
	}
	s.delMu.Lock() // a release in progress
	closed := make(chan struct{})
	go func() {
		s.closeIter(it)
		txn.Discard()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("an iterator closed (and could delete value-log files) during a release")
	case <-time.After(200 * time.Millisecond):
	}
	still, _ := vlogFiles(dir)
	for fid := range before {
		if !still[fid] {
			t.Fatalf("value-log file %d deleted during a release", fid)
		}
	}
	s.delMu.Unlock()
	<-closed
	after, _ := vlogFiles(dir)
	gone := 0
	for fid := range before {
		if !after[fid] {
			gone++
		}
	}
	t.Logf("%d files collected; %d of the %d files deleted at the last iterator's close", k, gone, len(before))
	if gone != k {
		t.Fatalf("%d files deleted after the close, want the %d collected", gone, k)
	}
	checkRound(t, s, n, 11, val)
}

// TestReleaseDropsValueLogPages: reading states faults their value-log pages into the process
// (Badger reads the value log through mmaps); a release drops all of them but the newest
// file's, and the states read back intact through the released mappings.
func TestReleaseDropsValueLogPages(t *testing.T) {
	const n = 60_000 // ~50 MB of states, ~13 files
	dir, s := vlogStore(t, Options{ValueLogFileSize: 4 << 20, GCInterval: time.Hour})
	if s.mapped == nil {
		t.Skip("release disabled")
	}
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	s.stopReleaseLoop()
	m := s.mapped
	s.mapped = nil // no release during the writes and the first read
	writeRound(t, s, n, 0, val)
	checkRound(t, s, n, 0, val)
	without, _ := residentVlogKB(t, dir)
	if without < 20<<10 {
		t.Skipf("only %d kB of the value log resident after a full read: cannot tell", without)
	}
	s.mapped = m
	if !m.maybe(0) {
		t.Fatal("no release ran")
	}
	if m.off.Load() {
		t.Skip("kernel refuses MADV_DONTNEED")
	}
	with, newest := residentVlogKB(t, dir)
	t.Logf("resident value-log pages: %d kB before the release, %d kB after (%d kB of them the newest file)", without, with, newest)
	if with-newest > 256 {
		t.Fatalf("%d kB of older value-log files still resident after a release", with-newest)
	}
	checkRound(t, s, n, 0, val)
}

func badgerIteratorOptions() badger.IteratorOptions { return badger.IteratorOptions{} }

// TestPointReadsReleaseValueLogPages: a random read of a state in the value log makes up to
// 64 KiB resident (the kernel's fault-around maps the cached pages around the one read), so
// cache misses at 1M SIRENs made gigabytes of the value log resident between releases. Reads
// check the file-backed resident set now and then: resident value-log pages stay near
// releaseResidentBytes however many reads there are.
func TestPointReadsReleaseValueLogPages(t *testing.T) {
	const n, gets = 100_000, 30_000
	dir, s := vlogStore(t, Options{ValueLogFileSize: 16 << 20, GCInterval: time.Hour})
	if s.mapped == nil {
		t.Skip("release disabled")
	}
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	writeRound(t, s, n, 0, val)
	writeRound(t, s, n, 1, val) // ~170 MB of value log
	s.mapped.maybe(0)
	sn := s.Snapshot()
	defer sn.Close()
	r := rand.New(rand.NewSource(1))
	peak := int64(0)
	for i := 0; i < gets; i++ {
		j := r.Intn(n)
		v, err := sn.Get(0, siren(j))
		if err != nil {
			t.Fatal(err)
		}
		if want := "1:" + strconv.Itoa(j) + ":"; !bytes.HasPrefix(v, []byte(want)) {
			t.Fatalf("state %d: %q…, want %q…", j, v[:min(len(v), 16)], want)
		}
		if i%5000 == 4999 {
			all, newest := residentVlogKB(t, dir)
			peak = max(peak, all-newest)
		}
	}
	if s.mapped.off.Load() {
		t.Skip("kernel refuses MADV_DONTNEED")
	}
	_, vlog := s.Size()
	t.Logf("%d random reads over %d MB of value log: at most %d kB of older value-log files resident (%d releases)",
		gets, vlog>>20, peak, s.mapped.n.Load())
	if peak > (releaseResidentBytes+16<<20)>>10 {
		t.Fatalf("%d kB of value-log pages resident after point reads, want about %d kB at most", peak, releaseResidentBytes>>10)
	}
}

// TestValueLogReaderMatchesBadger: the pread path (vread.go) returns exactly what Badger's own
// read returns, for states in the value log, inline states and header-merged states, through
// Get, Snapshot.Get and Scan; it is taken for every value-log read (a Badger upgrade that
// changes the layout it relies on fails here rather than silently falling back); and a
// corrupted entry is refused by its checks (Badger's read, which does not check, is used).
func TestValueLogReaderMatchesBadger(t *testing.T) {
	const n = 3000
	_, s := vlogStore(t, Options{GCInterval: time.Hour, ValueLogFileSize: 1 << 20, MemTableSize: 4 << 20})
	want := map[string][]byte{}
	var puts []KV
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte{byte(i)}, 100+i%900) // inline below 256 bytes, value log above
		want[siren(i)] = v
		puts = append(puts, KV{SIREN: siren(i), Value: v})
		if len(puts) == 500 {
			if err := s.Commit(0, puts, Checkpoint{}); err != nil {
				t.Fatal(err)
			}
			puts = puts[:0]
		}
	}
	badgerValue := func(sr string) []byte {
		var out []byte
		if err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(stateKey(nil, 0, sr))
			if err != nil {
				return err
			}
			out, err = item.ValueCopy(nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sn := s.Snapshot()
	defer sn.Close()
	for i := 0; i < n; i++ {
		sr := siren(i)
		g, err := s.Get(0, sr)
		if err != nil {
			t.Fatal(err)
		}
		g2, err := sn.Get(0, sr)
		if err != nil {
			t.Fatal(err)
		}
		if b := badgerValue(sr); !bytes.Equal(g, want[sr]) || !bytes.Equal(g2, want[sr]) || !bytes.Equal(b, want[sr]) {
			t.Fatalf("%s: Get %d bytes, Snapshot.Get %d bytes, Badger %d bytes, want %d", sr, len(g), len(g2), len(b), len(want[sr]))
		}
	}
	count := 0
	if err := s.Scan(0, func(sr string, v []byte) error {
		count++
		if !bytes.Equal(v, want[sr]) {
			t.Fatalf("scan %s: %d bytes, want %d", sr, len(v), len(want[sr]))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	inVlog := 0
	for _, v := range want {
		if len(v) >= int(DefaultValueThreshold) {
			inVlog++
		}
	}
	fast, slow := s.vread.fast.Load(), s.vread.slow.Load()
	t.Logf("%d states (%d in the value log): %d reads by pread, %d fell back", n, inVlog, fast, slow)
	if count != n || fast != int64(3*inVlog) || slow != 0 {
		t.Fatalf("scanned %d; %d pread reads and %d fallbacks, want %d and 0", count, fast, slow, 3*inVlog)
	}

	// A corrupted entry: the CRC check refuses it.
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(stateKey(nil, 0, siren(n-1)))
	if err != nil {
		t.Fatal(err)
	}
	key := item.Key()
	entry := make([]byte, 2+3+len(key)+8+len(want[siren(n-1)])+4)
	if _, ok := parseEntry(entry, key, item.Version()); ok {
		t.Fatal("an all-zero entry passed the checks")
	}

	// A file the fast path cannot open (as after a GC deleted it): Badger's read answers.
	s.vread = newVlogReader(t.TempDir())
	last := siren(n - 1)
	if g, err := s.Get(0, last); err != nil || !bytes.Equal(g, want[last]) {
		t.Fatalf("Get through the fallback: %d bytes, %v; want %d bytes", len(g), err, len(want[last]))
	}
	if s.vread.slow.Load() != 1 || s.vread.fast.Load() != 0 {
		t.Fatalf("fallback reads %d, pread reads %d; want 1 and 0", s.vread.slow.Load(), s.vread.fast.Load())
	}
}

// itemFid is the value-log file an item's value is in (false: inline in the LSM tree).
func itemFid(item *badger.Item) (uint32, bool) {
	vp := valuePlace(item)
	if len(vp) < vptrSize {
		return 0, false
	}
	return binary.NativeEndian.Uint32(vp[0:4]), true
}

// TestReadsFollowAValueTheGCMoved: a point read looks a state up, the value-log GC then moves
// it to another file and deletes the old one before the read of its value (the GC does not wait
// for point reads, only for iterators). The read looks the key up again and gets the state, in
// the same snapshot; before, it got an empty value ("truncated", seen once at 1M SIRENs under
// load). Every read path is checked: the cache's snapshot, Store.Get, scans, checkpoints.
func TestReadsFollowAValueTheGCMoved(t *testing.T) {
	const n = 5_000
	dir, s := vlogStore(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: time.Hour})
	val := bytes.Repeat([]byte("0123456789abcdef"), 50)
	writeRound(t, s, n, 0, val)
	// Every state but the first is written again three times: the first file is then garbage
	// but for the first state, which the GC must move.
	for r := 1; r <= 3; r++ {
		for i := 1; i < n; i += 500 {
			puts := make([]KV, 0, 500)
			for j := i; j < min(i+500, n); j++ {
				puts = append(puts, KV{SIREN: siren(j), Value: append([]byte(strconv.Itoa(r)+":"), val...)})
			}
			if err := s.Commit(0, puts, Checkpoint{}); err != nil {
				t.Fatal(err)
			}
		}
		settleCompactions(t, s)
	}
	want := append([]byte("0:0:"), val...)
	key := stateKey(nil, 0, siren(0))
	sn := s.Snapshot()
	defer sn.Close()
	item, err := sn.txn.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	fid, ok := itemFid(item)
	if !ok {
		t.Fatal("the state is not in the value log")
	}
	// The GC knows a file's garbage once compactions reported it: on a loaded machine that can
	// take a while, so wait (a slow machine takes longer, it does not fail).
	for deadline, moved := time.Now().Add(2*time.Minute), false; !moved; {
		k, err := s.GCValueLog()
		if err != nil {
			t.Fatal(err)
		}
		files, _ := vlogFiles(dir)
		if moved = !files[fid]; !moved && k == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the GC does not collect value-log file %d (files %v)", fid, files)
			}
			time.Sleep(20 * time.Millisecond)
			settleCompactions(t, s)
		}
	}
	if _, err := s.itemValue(nil, item); !errors.Is(err, errMoved) {
		t.Fatalf("reading a value whose file was deleted: %v, want errMoved", err)
	}
	if got, err := s.lookupValue(sn.txn, key, item, nil); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("lookupValue after the move: %q… %v", got[:min(len(got), 8)], err)
	}
	if got, err := sn.Get(0, siren(0)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Snapshot.Get after the move: %q… %v", got[:min(len(got), 8)], err)
	}
	if got, err := s.Get(0, siren(0)); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Store.Get after the move: %q… %v", got[:min(len(got), 8)], err)
	}
	seen := 0
	if err := s.Scan(0, func(k string, v []byte) error {
		if k == siren(0) && !bytes.Equal(v, want) {
			t.Fatalf("Scan after the move: %q…", v[:min(len(v), 8)])
		}
		seen++
		return nil
	}); err != nil || seen != n {
		t.Fatalf("scanned %d states (%v), want %d", seen, err, n)
	}
}
