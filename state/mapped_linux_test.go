//go:build linux

package state

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// residentTableKB sums the resident kB of this process's mappings of .sst files under dir
// (/proc/self/smaps).
func residentTableKB(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	var kb int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if strings.Contains(f[0], "-") && len(f) >= 5 { // a mapping header line
			in = len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") && strings.HasSuffix(f[5], ".sst")
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			kb += v
		}
	}
	return kb
}

// filledStore opens a store in a fresh directory (closed by the test's cleanup) and commits n
// states of ~800 B (like a SIREN's) to partition 0, each value prefixed with "i:"; it skips the
// test when the release is disabled.
func filledStore(t *testing.T, n int) (dir string, s *Store, val []byte) {
	t.Helper()
	dir = t.TempDir()
	// States inline in the tables (the default puts them in the value log, vlog_linux_test.go).
	s, err := Open(Options{Dir: dir, MemTableSize: 8 << 20, ValueThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.mapped == nil {
		t.Skip("release disabled")
	}
	val = bytes.Repeat([]byte("0123456789abcdef"), 50)
	for i := 0; i < n; i += 500 {
		puts := make([]KV, 0, 500)
		for j := i; j < min(i+500, n); j++ {
			v := append([]byte(strconv.Itoa(j)+":"), val...)
			puts = append(puts, KV{SIREN: siren(j), Value: v})
		}
		if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, s, val
}

// TestScanReleasesTablePages: a scan of a store much bigger than releaseScanBytes leaves few
// of its table pages resident (Badger maps the tables; without the release a full scan keeps
// the whole store resident), and the data read through the mapping stays intact afterwards.
func TestScanReleasesTablePages(t *testing.T) {
	const n = 120_000 // ~100 MB of states
	dir, s, val := filledStore(t, n)
	if err := s.db.Flatten(2); err != nil { // memtables → tables
		t.Fatal(err)
	}
	// Disable the release, scan: the tables are resident (this is what the release fixes).
	s.stopReleaseLoop()
	m := s.mapped
	s.mapped = nil
	count := 0
	scan := func() {
		count = 0
		if err := s.Scan(0, func(siren string, v []byte) error {
			if want := strconv.Itoa(count) + ":"; !bytes.HasPrefix(v, []byte(want)) || len(v) != len(want)+len(val) {
				t.Fatalf("state %s: %q… (%d bytes)", siren, v[:min(len(v), 12)], len(v))
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
	scan()
	without := residentTableKB(t, dir)
	if without < 40<<10 {
		t.Skipf("only %d kB of tables resident after a full scan without release: cannot tell", without)
	}
	s.mapped = m
	scan()
	with := residentTableKB(t, dir)
	t.Logf("resident table pages after a full scan: %d kB without release, %d kB with (%d releases)", without, with, m.n.Load())
	if m.off.Load() {
		t.Skip("kernel refuses MADV_DONTNEED")
	}
	// One release every releaseScanBytes read; what the last window faulted
	// in may stay until the next release (at most one a second at a scan's end).
	if with > without*3/4 || with > (releaseScanBytes+8<<20)>>10 {
		t.Fatalf("resident table pages after a scan with release: %d kB (without: %d kB)", with, without)
	}
	scan() // data read back through the released mapping is intact
}

// TestIdleStoreReleasesNewTables: tables written by flushes and compactions are written
// through mmap, so their pages are resident in this process; with no commit or scan to release
// them (an idle task), the store's background loop does, within a few seconds.
func TestIdleStoreReleasesNewTables(t *testing.T) {
	dir, s, _ := filledStore(t, 100_000)    // ~80 MB of states
	if err := s.db.Flatten(2); err != nil { // memtables → tables, compacted: all new files
		t.Fatal(err)
	}
	var lsm int64
	for _, ti := range s.db.Tables() {
		lsm += int64(ti.OnDiskSize)
	}
	peak := residentTableKB(t, dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		kb := residentTableKB(t, dir)
		peak = max(peak, kb)
		if kb <= 8<<10 {
			t.Logf("tables %d kB; resident %d kB after the flatten at most, %d kB now (%d releases)", lsm>>10, peak, kb, s.mapped.n.Load())
			if s.mapped.n.Load() == 0 {
				t.Fatal("resident pages dropped without a release: the test cannot tell")
			}
			return
		}
		if s.mapped.off.Load() {
			t.Skip("kernel refuses MADV_DONTNEED")
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d kB of table pages still resident 10 s after the last write (tables: %d kB, %d releases)", kb, lsm>>10, s.mapped.n.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mappedTables lists the base names of the .sst files under dir mapped by this process.
func mappedTables(t *testing.T, dir string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") && strings.HasSuffix(f[5], ".sst") {
			out[strings.TrimPrefix(f[5], dir+"/")] = true
		}
	}
	return out
}

// TestPinTablesKeepsThemMapped: what makes MADV_DONTNEED safe. Every table pinTables
// reports stays mapped until done, even when a compaction replaces it meanwhile; tables
// created after the pin are not reported; after done, replaced tables are unmapped.
func TestPinTablesKeepsThemMapped(t *testing.T) {
	dir, err := os.MkdirTemp("", "pin")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, MemTableSize: 4 << 20, ValueThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := bytes.Repeat([]byte("x"), 700)
	write := func(from int) {
		for i := from; i < from+20_000; i += 400 {
			puts := make([]KV, 0, 400)
			for j := i; j < i+400; j++ {
				puts = append(puts, KV{SIREN: siren(j), Value: val})
			}
			if err := s.Commit(0, puts, Checkpoint{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Flatten(2); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	var pinned []string
	// A compaction may still run (L0 is compacted at each flush): let them settle first (on a
	// loaded machine one could replace every table between the listing and the pin), and count
	// only a table present both before and after the pin as existing when it was taken.
	settleCompactions(t, s)
	before := map[uint64]bool{}
	for _, ti := range s.db.Tables() {
		before[ti.ID] = true
	}
	keep, done := s.pinTables()
	for _, ti := range s.db.Tables() {
		if !before[ti.ID] {
			continue
		}
		name := fmt.Sprintf("%06d.sst", ti.ID)
		if !keep(name) {
			t.Fatalf("table %s existed before the pin but is not reported pinned", name)
		}
		pinned = append(pinned, name)
	}
	if len(pinned) == 0 {
		t.Fatal("no tables to pin")
	}
	// Overwrite every key and compact: the pinned tables leave the LSM tree.
	write(0)
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	replaced := 0
	live := map[uint64]bool{}
	for _, ti := range s.db.Tables() {
		live[ti.ID] = true
	}
	maps := mappedTables(t, dir)
	for _, name := range pinned {
		if !maps[name] {
			t.Fatalf("pinned table %s was unmapped before done", name)
		}
		var id uint64
		fmt.Sscanf(name, "%06d.sst", &id)
		if !live[id] {
			replaced++
		}
	}
	for id := range live {
		name := fmt.Sprintf("%06d.sst", id)
		if !slices.Contains(pinned, name) && keep(name) {
			t.Fatalf("table %s created after the pin is reported pinned", name)
		}
	}
	done()
	if replaced == 0 {
		t.Skip("compaction replaced no pinned table: cannot tell")
	}
	maps = mappedTables(t, dir)
	for _, name := range pinned {
		var id uint64
		fmt.Sscanf(name, "%06d.sst", &id)
		if !live[id] && maps[name] {
			t.Fatalf("replaced table %s still mapped after done", name)
		}
	}
	t.Logf("%d tables pinned, %d of them replaced by a compaction while pinned", len(pinned), replaced)
}
