package engine

import (
	"bytes"
	"flag"
	"path/filepath"
	"testing"
)

// The v3 goldens are state encodings written by the last build whose
// StateVersion was 3 (commit 0cb6c7e), from the same events as the v1
// goldens: a state dir or changelog written before version 4 holds such
// bytes, and they must keep decoding. -update-v3 refuses unless
// StateVersion is 3.
var updateV3 = flag.Bool("update-v3", false, "rewrite testdata/state-v3/*.bin (only from a StateVersion 3 build)")

func v3Path(name string) string { return filepath.Join("testdata", "state-v3", name+".bin") }

func TestWriteStateV3Goldens(t *testing.T) {
	if !*updateV3 {
		t.Skip("-update-v3 not set")
	}
	writeGoldens(t, 3, v3Path)
}

func readV3(t *testing.T, name string) []byte { return readGolden(t, v3Path(name), 3) }

// TestStateV3GoldensDecode: every v3 golden decodes to exactly the state
// the current code builds from the same events (v4 only changed how usage
// buckets are encoded), and its intensity read from the encoding agrees.
func TestStateV3GoldensDecode(t *testing.T) {
	for _, c := range v1Cases() {
		t.Run(c.name, func(t *testing.T) {
			b := readV3(t, c.name)
			old, err := UnmarshalState(c.siren, b)
			if err != nil {
				t.Fatal(err)
			}
			m := feedV1(t, c)
			cur := m.State(c.siren)
			got, want := old.AppendBinary(nil), cur.AppendBinary(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("decoded v3 re-encodes to %d bytes, the same events give %d", len(got), len(want))
			}
			v, ok, err := m.Task().intensityEncoded(b)
			if err != nil {
				t.Fatal(err)
			}
			if wv, wok := m.Task().intensity(cur); v != wv || ok != wok {
				t.Fatalf("intensity of the v3 encoding %v %v, of the state %v %v", v, ok, wv, wok)
			}
		})
	}
}

// TestMergeHeaderUpgradesAV3Base: a header written by this build over a v3
// state still in the store gives the current encoding of the new state (a v3
// body is not a v4 body: it is decoded and encoded again, never glued); a
// stale header leaves the v3 base as it is.
func TestMergeHeaderUpgradesAV3Base(t *testing.T) {
	b := readV3(t, "normal")
	st := mergeNewerHeader(t, b, mkSIREN(101))
	st.seq -= 2
	if got, err := MergeHeader(nil, b, st.AppendHeader(nil)); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("stale header over a v3 base: %v", err)
	}
}

// TestWriteV3IsWhatTheV3BuildWrote: a state written as version 3 (a rolling
// upgrade, CheckWriteVersion) is byte for byte what the v3 build wrote from
// the same events, so an instance still on that build reads it.
func TestWriteV3IsWhatTheV3BuildWrote(t *testing.T) {
	for _, c := range v1Cases() {
		t.Run(c.name, func(t *testing.T) {
			cur := feedV1(t, c).State(c.siren)
			if got, want := cur.AppendBinaryVersion(nil, 3), readV3(t, c.name); !bytes.Equal(got, want) {
				t.Fatalf("version 3 encoding: %d bytes, the v3 build wrote %d", len(got), len(want))
			}
			if got, want := cur.AppendBinaryVersion(nil, StateVersion), cur.AppendBinary(nil); !bytes.Equal(got, want) {
				t.Fatal("AppendBinaryVersion(StateVersion) differs from AppendBinary")
			}
			h := cur.AppendHeaderVersion(nil, 3)
			if n, _, err := headerLen(h); err != nil || n != len(h) || h[0] != 3 {
				t.Fatalf("version 3 header: %v", err)
			}
		})
	}
}

// TestMergeAV3HeaderKeepsVersion3: a header written as version 3 over a
// stored state gives a version 3 state, whatever the base's version (a v4
// base: an instance upgraded before the others), with the header's
// decision; a v4 header over a v3 base still gives version 4.
func TestMergeAV3HeaderKeepsVersion3(t *testing.T) {
	for _, c := range v1Cases() {
		t.Run(c.name, func(t *testing.T) {
			cur := feedV1(t, c).State(c.siren)
			next := *cur
			next.seq++
			next.segs ^= MultiSite
			want := next.AppendBinaryVersion(nil, 3)
			for _, base := range [][]byte{cur.AppendBinary(nil), cur.AppendBinaryVersion(nil, 3)} {
				got, err := MergeHeader(nil, base, next.AppendHeaderVersion(nil, 3))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("v3 header over a v%d base: %v (%d bytes, want %d)", base[0], err, len(got), len(want))
				}
			}
			got, err := MergeHeader(nil, cur.AppendBinaryVersion(nil, 3), next.AppendHeader(nil))
			if err != nil || !bytes.Equal(got, next.AppendBinary(nil)) {
				t.Fatalf("v4 header over a v3 base: %v", err)
			}
		})
	}
}

func TestCheckWriteVersion(t *testing.T) {
	for v, ok := range map[int]bool{1: false, 2: false, 3: true, 4: true, 5: false} {
		if err := CheckWriteVersion(v); (err == nil) != ok {
			t.Errorf("CheckWriteVersion(%d) = %v, want ok %v", v, err, ok)
		}
	}
}
