package state

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// A checkpoint that names its group round-trips as version 2; one without a
// group is still version 1, byte for byte what builds before groups wrote,
// and such legacy bytes still parse (with no group).
func TestCheckpointNamesItsGroupAndLegacyRecordsStillParse(t *testing.T) {
	cp := Checkpoint{Offsets: map[string]int64{"usage": 7, "claims": 3}, Meta: []byte{9}}
	// Version 1 as written before groups existed: claims=3, usage=7, meta 9.
	legacy := []byte{1, 2, 6, 'c', 'l', 'a', 'i', 'm', 's', 6, 5, 'u', 's', 'a', 'g', 'e', 14, 1, 9}
	if got := encodeCheckpoint(nil, cp); !bytes.Equal(got, legacy) {
		t.Fatalf("no group: encoding %v, want the version 1 bytes %v", got, legacy)
	}
	got, err := ParseCheckpoint(legacy)
	if err != nil || got.Group != "" || !reflect.DeepEqual(got, cp) {
		t.Fatalf("legacy record: %+v %v", got, err)
	}

	cp.Group = "billing"
	b := AppendCheckpoint(nil, cp)
	if b[0] != checkpointGroupVersion {
		t.Fatalf("with a group: version %d, want %d", b[0], checkpointGroupVersion)
	}
	if got, err := ParseCheckpoint(b); err != nil || !reflect.DeepEqual(got, cp) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for i := range b {
		if _, err := ParseCheckpoint(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: err %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := ParseCheckpoint([]byte{checkpointGroupVersion, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty group name: err %v, want ErrCorrupt", err)
	}
}

// The owner group is recorded once and survives a reopen; a read-only store
// reads it and refuses to change it.
func TestOwnerIsRecordedAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if g, err := s.Owner(); err != nil || g != "" {
		t.Fatalf("new directory: owner %q %v, want none", g, err)
	}
	if err := s.SetOwner(""); err == nil {
		t.Fatal("SetOwner accepted an empty group")
	}
	if err := s.SetOwner("billing"); err != nil {
		t.Fatal(err)
	}
	// The owner key is outside every partition.
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
	if g, err := ro.Owner(); err != nil || g != "billing" {
		t.Fatalf("after reopen: owner %q %v", g, err)
	}
	if err := ro.SetOwner("other"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only SetOwner: %v", err)
	}
}
