package state

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func siren(i int) string { return fmt.Sprintf("%09d", i) }

func TestOptionsValidateNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"dir required", Options{}, "Dir"},
		{"negative memtable", Options{Dir: "x", MemTableSize: -1}, "MemTableSize"},
		{"one compactor", Options{Dir: "x", NumCompactors: 1}, "NumCompactors"},
		{"stall below L0", Options{Dir: "x", NumLevelZeroTables: 9}, "NumLevelZeroTablesStall"},
		{"threshold above txn", Options{Dir: "x", ValueThreshold: 10 << 20}, "ValueThreshold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	o := Options{Dir: "x"}
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestCommitIsAtomicAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	cp := Checkpoint{Offsets: map[string]int64{"usage": 42, "claims": 7, "outages": 0}, Meta: []byte("meta")}
	puts := []KV{{SIREN: "000000001", Value: []byte("a")}, {SIREN: "000000002", Value: []byte("b")}}
	if err := s.Commit(3, puts, cp); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		got, ok, err := s.Checkpoint(3)
		if err != nil || !ok || !reflect.DeepEqual(got, cp) {
			t.Fatalf("Checkpoint = %+v %v %v, want %+v", got, ok, err, cp)
		}
		for _, kv := range puts {
			v, err := s.Get(3, kv.SIREN)
			if err != nil || !bytes.Equal(v, kv.Value) {
				t.Fatalf("Get(%s) = %q %v", kv.SIREN, v, err)
			}
		}
	}
	check(s)
	// Deletion through a nil value, in the same txn as a new checkpoint.
	cp2 := Checkpoint{Offsets: map[string]int64{"usage": 43}}
	if err := s.Commit(3, []KV{{SIREN: "000000002", Value: nil}}, cp2); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(3, "000000002"); v != nil || err != nil {
		t.Fatalf("deleted SIREN: %q %v", v, err)
	}
	puts = puts[:1]
	cp = cp2
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	check(s)
	if _, ok, _ := s.Checkpoint(4); ok {
		t.Fatal("partition 4 has a checkpoint")
	}
	ps, err := s.Partitions()
	if err != nil || !reflect.DeepEqual(ps, []int32{3}) {
		t.Fatalf("Partitions = %v %v", ps, err)
	}
}

func TestCheckpointEncodingIsDeterministic(t *testing.T) {
	cp := Checkpoint{Offsets: map[string]int64{}, Meta: []byte{1, 2, 3}}
	for i := range 50 {
		cp.Offsets["topic-"+strconv.Itoa(i)] = int64(i * 1000)
	}
	first := encodeCheckpoint(nil, cp)
	for range 20 {
		if !bytes.Equal(encodeCheckpoint(nil, cp), first) {
			t.Fatal("encoding depends on map order")
		}
	}
	got, err := decodeCheckpoint(first)
	if err != nil || !reflect.DeepEqual(got, cp) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for i := range first {
		if _, err := decodeCheckpoint(first[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: err %v, want ErrCorrupt", i, err)
		}
	}
}

func TestScanIsInSIRENOrderAndScanFromResumes(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	r := rand.New(rand.NewSource(1))
	var puts []KV
	for _, i := range r.Perm(500) {
		puts = append(puts, KV{SIREN: siren(i), Value: []byte(strconv.Itoa(i))})
	}
	if err := s.Commit(1, puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	// Neighbouring partitions must not leak into the scan.
	if err := s.Commit(0, []KV{{SIREN: siren(1000), Value: []byte("x")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(2, []KV{{SIREN: "000000000", Value: []byte("y")}}, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Scan(1, func(k string, v []byte) error {
		if string(v) != strconv.Itoa(len(got)) {
			return fmt.Errorf("value of %s = %q", k, v)
		}
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 500 || got[0] != siren(0) || got[499] != siren(499) {
		t.Fatalf("scan returned %d keys, %v…", len(got), got[:3])
	}
	got = got[:0]
	if err := s.ScanFrom(1, siren(249), func(k string, _ []byte) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0] != siren(250) {
		t.Fatalf("ScanFrom(after 249) = %d keys starting %s", len(got), got[0])
	}
	got = got[:0]
	if err := s.ScanFrom(1, "000000249x", func(k string, _ []byte) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0] != siren(250) {
		t.Fatalf("ScanFrom(absent key) = %d keys starting %s", len(got), got[0])
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Scan(1, func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn error: got %v after %d calls", err, n)
	}
	if c, err := s.Count(1); c != 500 || err != nil {
		t.Fatalf("Count = %d %v", c, err)
	}
}

func TestDropPartitionLeavesOtherPartitionsIntact(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	for p := int32(0); p < 3; p++ {
		var puts []KV
		for i := range 300 {
			puts = append(puts, KV{SIREN: siren(i), Value: []byte{byte(p)}})
		}
		if err := s.Commit(p, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(p)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropPartition(1); err != nil {
		t.Fatal(err)
	}
	for p, want := range []int{300, 0, 300} {
		if c, _ := s.Count(int32(p)); c != want {
			t.Fatalf("Count(%d) = %d, want %d", p, c, want)
		}
	}
	if _, ok, _ := s.Checkpoint(1); ok {
		t.Fatal("checkpoint of dropped partition still there")
	}
	if cp, ok, _ := s.Checkpoint(2); !ok || cp.Offsets["usage"] != 2 {
		t.Fatal("checkpoint of partition 2 lost")
	}
	if ps, _ := s.Partitions(); !reflect.DeepEqual(ps, []int32{0, 2}) {
		t.Fatalf("Partitions = %v", ps)
	}
}

func TestBulkRestoreWritesCheckpointLast(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	if err := s.Commit(5, []KV{{SIREN: "old", Value: []byte("x")}}, Checkpoint{Offsets: map[string]int64{"usage": 9}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPartition(5); err != nil {
		t.Fatal(err)
	}
	b := s.BulkWriter(5)
	for i := range 50_000 { // several WriteBatch transactions
		if err := b.Put(siren(i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := s.Checkpoint(5); ok {
		t.Fatal("checkpoint visible before Finish")
	}
	cp := Checkpoint{Offsets: map[string]int64{"usage": 100}}
	if err := b.Finish(cp); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.Checkpoint(5); !ok || got.Offsets["usage"] != 100 {
		t.Fatalf("checkpoint after Finish: %+v %v", got, ok)
	}
	if c, _ := s.Count(5); c != 50_000 {
		t.Fatalf("Count = %d", c)
	}
	if err := b.Put("late", nil); err == nil {
		t.Fatal("Put after Finish succeeded")
	}

	// An abandoned restore leaves no checkpoint, even when the partition had one.
	b = s.BulkWriter(5)
	if err := b.Put(siren(1), []byte("new")); err != nil {
		t.Fatal(err)
	}
	b.Cancel()
	if _, ok, _ := s.Checkpoint(5); ok {
		t.Fatal("cancelled restore left a checkpoint")
	}
}

func TestCommitTooBigFailsWhole(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	if err := s.Commit(0, []KV{{SIREN: "keep", Value: []byte("1")}}, Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	var puts []KV
	var total int64
	val := bytes.Repeat([]byte{'x'}, 300)
	for i := 0; total < 2*s.MaxCommitBytes(); i++ {
		puts = append(puts, KV{SIREN: siren(i), Value: val})
		total += s.PutCost(siren(i), val)
	}
	err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": 2}})
	if !errors.Is(err, ErrTxnTooBig) || !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("err = %v, want ErrTxnTooBig wrapping badger.ErrTxnTooBig", err)
	}
	if c, _ := s.Count(0); c != 1 {
		t.Fatalf("partial commit: %d keys", c)
	}
	if cp, _, _ := s.Checkpoint(0); cp.Offsets["usage"] != 1 {
		t.Fatalf("checkpoint moved to %v", cp.Offsets)
	}
	// At the advertised bounds a commit must fit, for large and for tiny values.
	for _, size := range []int{300, 5000, 1} {
		val := bytes.Repeat([]byte{'y'}, size)
		puts = puts[:0]
		total = 0
		for i := 0; len(puts) < s.MaxCommitEntries(); i++ {
			c := s.PutCost(siren(i), val)
			if total+c > s.MaxCommitBytes() {
				break
			}
			puts = append(puts, KV{SIREN: siren(i), Value: val})
			total += c
		}
		if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": 3}, Meta: make([]byte, 4096)}); err != nil {
			t.Fatalf("commit of %d puts of %d bytes (%d total) at the bound: %v", len(puts), size, total, err)
		}
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) || !bytes.Contains([]byte(err.Error()), []byte(dir)) {
		t.Fatalf("second Open: %v, want ErrLocked naming %s", err, dir)
	}
	_, err = Open(Options{Dir: dir, ReadOnly: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only Open beside a writer: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s = openT(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Child-process helpers: the test binary re-executes itself with stateChildEnv set.
const (
	stateChildEnv = "STATE_TEST_CHILD"
	stateDirEnv   = "STATE_TEST_DIR"
)

func TestMain(m *testing.M) {
	switch os.Getenv(stateChildEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		childHoldLock()
	case "commit":
		childCommitForever()
	}
	os.Exit(3)
}

func childHoldLock() {
	s, err := Open(Options{Dir: os.Getenv(stateDirEnv)})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	fmt.Println("LOCKED")
	time.Sleep(time.Minute) // until killed
	_ = s.Close()
}

// childCommitForever commits batch after batch to partition 0: batch b writes crashBatch SIRENs,
// every value and the checkpoint's offset carrying b, and reports each committed batch on
// stdout. It is killed with SIGKILL while committing.
const crashBatch = 200

func childCommitForever() {
	s, err := Open(Options{Dir: os.Getenv(stateDirEnv)})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	r := rand.New(rand.NewSource(int64(os.Getpid())))
	for b := int64(1); ; b++ {
		puts := make([]KV, crashBatch)
		for i := range puts {
			// Overlapping SIREN sets across batches: a partial batch would show mixed values.
			puts[i] = KV{SIREN: siren(r.Intn(2000)), Value: []byte(fmt.Sprintf("%d/%0300d", b, i))}
		}
		// The batch's own SIRENs are also recorded in a per-batch marker key.
		puts = append(puts, KV{SIREN: fmt.Sprintf("batch-%09d", b), Value: []byte(strconv.Itoa(len(puts)))})
		if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": b}}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println("COMMITTED", b)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while os/exec's goroutine writes the child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

func startChild(t *testing.T, mode, dir string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stateChildEnv+"="+mode, stateDirEnv+"="+dir)
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLockAcrossProcessesAndReleasedOnKill(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startChild(t, "hold", dir)
	waitFor(t, "the child to take the lock", func() bool {
		return bytes.Contains(out.Bytes(), []byte("LOCKED")) || cmd.ProcessState != nil
	})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds the store: %v, want ErrLocked", err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	s := openT(t, dir) // the kernel released the dead process's flock
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashDurabilityAfterSIGKILL(t *testing.T) {
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			dir := t.TempDir()
			cmd, out := startChild(t, "commit", dir)
			// Kill at a varying point while it commits continuously.
			time.Sleep(time.Duration(300+round*250) * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			reported := int64(0)
			for _, line := range bytes.Split(out.Bytes(), []byte("\n")) {
				var b int64
				if _, err := fmt.Sscanf(string(line), "COMMITTED %d", &b); err == nil {
					reported = b
				} else if bytes.HasPrefix(line, []byte("ERR")) {
					t.Fatalf("child: %s", line)
				}
			}
			if reported < 3 {
				t.Fatalf("child committed only %d batches before the kill", reported)
			}

			s := openT(t, dir)
			defer s.Close()
			cp, ok, err := s.Checkpoint(0)
			if err != nil || !ok {
				t.Fatalf("checkpoint after kill: %v %v", ok, err)
			}
			last := cp.Offsets["usage"]
			// Every batch whose Commit returned is durable; at most the one in flight may be extra.
			if last < reported || last > reported+1 {
				t.Fatalf("checkpoint at batch %d, child reported %d committed", last, reported)
			}
			// States agree with the checkpoint: every batch up to it has its marker, none beyond,
			// and no value is from a batch after the checkpoint.
			markers, maxVal := int64(0), int64(0)
			err = s.Scan(0, func(k string, v []byte) error {
				if bytes.HasPrefix([]byte(k), []byte("batch-")) {
					markers++
					return nil
				}
				var b int64
				if _, err := fmt.Sscanf(string(v), "%d/", &b); err != nil {
					return fmt.Errorf("value of %s: %q", k, v)
				}
				maxVal = max(maxVal, b)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if markers != last || maxVal != last {
				t.Fatalf("checkpoint %d but %d batch markers and newest value from batch %d", last, markers, maxVal)
			}
			t.Logf("killed after %d reported batches; recovered checkpoint %d", reported, last)
		})
	}
}

func TestOpenWhereDirIsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notadir")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: path})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Fatalf("Open on a file: %v, want an error naming %s", err, path)
	}
}

func TestReadOnlyStore(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Commit(0, []KV{{SIREN: "a", Value: []byte("1")}}, Checkpoint{Offsets: map[string]int64{"usage": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r1, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(Options{Dir: dir, ReadOnly: true}) // readers share the lock
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if v, _ := r1.Get(0, "a"); string(v) != "1" {
		t.Fatalf("read-only Get = %q", v)
	}
	if err := r1.Commit(0, nil, Checkpoint{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Commit on read-only store: %v", err)
	}
	if err := r1.DropPartition(0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("DropPartition on read-only store: %v", err)
	}
	if err := r1.BulkWriter(0).Put("x", nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Bulk on read-only store: %v", err)
	}
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("writer beside readers: %v, want ErrLocked", err)
	}
	if _, err := Open(Options{Dir: filepath.Join(dir, "missing"), ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing dir succeeded")
	}
}

// copyDir copies the regular files of src (but LOCK) into a new temp dir: a snapshot of a store
// as a kill -9 would leave it when src is open.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockFileName || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestOpenGarbageDirectoryFailsCleanly(t *testing.T) {
	// Build a real store with data in every kind of file, then damage one kind at a time.
	// "closed": after Close (tables, vlog, manifest); "killed": copied while open (WAL .mem files).
	build := func(t *testing.T, closed bool) string {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, ValueThreshold: 64})
		if err != nil {
			t.Fatal(err)
		}
		for b := range 5 {
			var puts []KV
			for i := range 1000 {
				puts = append(puts, KV{SIREN: siren(i), Value: bytes.Repeat([]byte{byte(b)}, 200)})
			}
			if err := s.Commit(0, puts, Checkpoint{Offsets: map[string]int64{"usage": int64(b)}}); err != nil {
				t.Fatal(err)
			}
		}
		if !closed {
			dir = copyDir(t, dir)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	r := rand.New(rand.NewSource(7))
	for _, closed := range []bool{true, false} {
		for _, pattern := range []string{"MANIFEST", "*.vlog", "*.sst", "*.mem", "KEYREGISTRY"} {
			t.Run(fmt.Sprintf("closed=%v/%s", closed, pattern), func(t *testing.T) {
				dir := build(t, closed)
				files, _ := filepath.Glob(filepath.Join(dir, pattern))
				if len(files) == 0 {
					t.Skipf("no %s file", pattern)
				}
				for _, f := range files {
					st, _ := os.Stat(f)
					junk := make([]byte, max(st.Size(), 4096))
					r.Read(junk)
					if err := os.WriteFile(f, junk, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				s, err := Open(Options{Dir: dir, ValueThreshold: 64})
				if err == nil {
					// Badger replays a WAL up to its first bad entry: garbage there loses the
					// unflushed txns, whole. What remains must still agree with its checkpoint.
					defer s.Close()
					cp, ok, cerr := s.Checkpoint(0)
					var bad int
					serr := s.Scan(0, func(_ string, v []byte) error {
						if !ok || int64(v[0]) != cp.Offsets["usage"] {
							bad++
						}
						return nil
					})
					t.Logf("garbage %s: opened; checkpoint %v %v, %d states disagree; errors %v / %v",
						pattern, cp.Offsets, ok, bad, cerr, serr)
					if cerr == nil && serr == nil && bad > 0 {
						t.Fatal("states disagree with the checkpoint")
					}
					return
				}
				t.Logf("garbage %s: %v (corrupt=%v)", pattern, err, errors.Is(err, ErrCorrupt))
				if !bytes.Contains([]byte(err.Error()), []byte(dir)) {
					t.Fatalf("error does not name the dir: %v", err)
				}
				// The lock must have been released.
				if _, err2 := Open(Options{Dir: dir}); errors.Is(err2, ErrLocked) {
					t.Fatal("failed Open kept the lock")
				}
			})
		}
	}
}
func TestSizeReportsSomething(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	lsm, vlog := s.Size()
	if lsm < 0 || vlog < 0 {
		t.Fatalf("Size = %d, %d", lsm, vlog)
	}
}

func TestCountUpToStopsAtTheLimit(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	var puts []KV
	for i := 0; i < 50; i++ {
		puts = append(puts, KV{SIREN: siren(i), Value: []byte("v")})
	}
	if err := s.Commit(1, puts, Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(2, puts[:7], Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p          int32
		limit, out int
	}{{1, -1, 50}, {1, 50, 50}, {1, 49, 50}, {1, 10, 11}, {1, 0, 1}, {2, -1, 7}, {2, 6, 7}, {2, 7, 7}, {3, 5, 0}} {
		n, err := s.CountUpTo(tc.p, tc.limit)
		if err != nil || n != tc.out {
			t.Errorf("CountUpTo(%d, %d) = %d, %v; want %d", tc.p, tc.limit, n, err, tc.out)
		}
	}
	if n, err := s.Count(1); err != nil || n != 50 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}
