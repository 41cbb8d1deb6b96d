package state

import (
	"errors"
	"testing"
)

// The replay identity is one key outside every partition: recorded,
// replaced, kept across a reopen; a read-only store reads it and refuses to
// change it.
func TestReplayIdentityIsRecordedAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if id, err := s.ReplayIdentity(); err != nil || id != "" {
		t.Fatalf("new directory: identity %q %v, want none", id, err)
	}
	if err := s.SetReplayIdentity(""); err == nil {
		t.Fatal("SetReplayIdentity accepted an empty identity")
	}
	for _, id := range []string{"output-topic=a", "output-topic=b"} {
		if err := s.SetReplayIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	if ps, err := s.Partitions(); err != nil || len(ps) != 0 {
		t.Fatalf("Partitions = %v %v", ps, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if id, err := ro.ReplayIdentity(); err != nil || id != "output-topic=b" {
		t.Fatalf("after reopen: identity %q %v", id, err)
	}
	if err := ro.SetReplayIdentity("x"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only SetReplayIdentity: %v", err)
	}
}
