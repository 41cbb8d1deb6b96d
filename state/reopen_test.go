package state

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReopenWithEmptyMemtableFile: a kill -9 right after Badger created a
// memtable WAL leaves a zero-length NNNNN.mem; the store must still open.
func TestReopenWithEmptyMemtableFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(0, []KV{{SIREN: "732829320", Value: []byte("v")}}, Checkpoint{Offsets: map[string]int64{"usage": 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen with an empty memtable file: %v", err)
	}
	defer s.Close()
	cp, ok, err := s.Checkpoint(0)
	if err != nil || !ok || cp.Offsets["usage"] != 7 {
		t.Fatalf("checkpoint after reopen: %+v %v %v", cp, ok, err)
	}
}

// TestReopenWithUnlistedTableFile: a kill -9 while Badger writes a new table
// leaves an empty or partial .sst that the MANIFEST does not list yet; Badger
// deletes it on open, so our pre-open check must not call it corrupt.
func TestReopenWithUnlistedTableFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(0, []KV{{SIREN: "732829320", Value: []byte("v")}}, Checkpoint{Offsets: map[string]int64{"usage": 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "000777.sst"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "000778.sst"), []byte("partial table bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen with unlisted table files: %v", err)
	}
	defer s.Close()
	if cp, ok, err := s.Checkpoint(0); err != nil || !ok || cp.Offsets["usage"] != 3 {
		t.Fatalf("checkpoint after reopen: %+v %v %v", cp, ok, err)
	}
}
