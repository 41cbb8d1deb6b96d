package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestLockErrorNamesTheHoldingProcess: the error of an Open beside another
// process's store names that process's pid, once, without repeated prefixes.
func TestLockErrorNamesTheHoldingProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startChild(t, "hold", dir)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	})
	waitFor(t, "the child to take the lock", func() bool {
		return bytes.Contains(out.Bytes(), []byte("LOCKED")) || cmd.ProcessState != nil
	})
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds the store: %v, want ErrLocked", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, fmt.Sprintf("process %d", cmd.Process.Pid)) || !strings.Contains(msg, dir) {
		t.Fatalf("lock error %q does not name pid %d and %s", msg, cmd.Process.Pid, dir)
	}
	if strings.Count(msg, "state:") != 1 {
		t.Fatalf("lock error %q repeats its prefix", msg)
	}
}

// TestSizeReflectsTheStore: Size counts the files on disk at once (it was
// 0: Badger's DB.Size only works with Badger's metrics enabled).
func TestSizeReflectsTheStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lsm0, vlog0 := s.Size()
	if lsm0 <= 0 || vlog0 <= 0 {
		t.Fatalf("Size of an open store = lsm %d, vlog %d; want both > 0 (manifest, memtable log, value log)", lsm0, vlog0)
	}
	// 4 MB of states in commits that fit one transaction each.
	val := bytes.Repeat([]byte("s"), 2048)
	for c := range 40 {
		puts := make([]KV, 50)
		for i := range puts {
			puts[i] = KV{SIREN: siren(c*50 + i), Value: val}
		}
		if err := s.Commit(0, puts, Checkpoint{}); err != nil {
			t.Fatal(err)
		}
	}
	lsm, vlog := s.Size()
	if grew := (lsm + vlog) - (lsm0 + vlog0); grew < 2<<20 {
		t.Fatalf("Size grew by %d bytes (lsm %d→%d, vlog %d→%d) after 4 MB of states; want ≥ 2 MiB", grew, lsm0, lsm, vlog0, vlog)
	}
	t.Logf("empty store: %d bytes; with 4 MB of states: lsm %d, vlog %d", lsm0+vlog0, lsm, vlog)
}
