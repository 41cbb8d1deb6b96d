package engine

import (
	"bytes"
	"testing"
)

// TestMergeHeaderIsTheNewEncoding: for every decision a sweep makes, the
// stored encoding from before the sweep with the new header merged in is
// byte for byte the encoding of the new state, and the old header merged into
// the new encoding changes nothing (stale).
func TestMergeHeaderIsTheNewEncoding(t *testing.T) {
	h := newHarness(t, nil)
	evs := randomEvents(7, 40, 120, 60)
	type stored struct{ base, hdr []byte }
	var before map[string]stored // during a day change: every state before it
	checked := 0
	h.mem.OnDecision = func(d *Decision) {
		if before == nil {
			return // a record's own decision: the whole state changed
		}
		st, b := h.state(d.SIREN), before[d.SIREN]
		want := st.AppendBinary(nil)
		got, err := MergeHeader(nil, b.base, st.AppendHeader(nil))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: merged %x (%v), want %x", d.SIREN, got, err, want)
		}
		stale, err := MergeHeader([]byte("x"), want, b.hdr)
		if err != nil || !bytes.Equal(stale, append([]byte("x"), want...)) {
			t.Fatalf("%s: a stale header changed the state: %x (%v)", d.SIREN, stale, err)
		}
		checked++
	}
	day := Day(evs[0].EventTime)
	for _, ev := range evs {
		if d := Day(ev.EventTime); d > day {
			day = d
			before = map[string]stored{}
			for st := range h.mem.States() {
				before[st.SIREN] = stored{st.AppendBinary(nil), st.AppendHeader(nil)}
			}
			h.mem.DayChange(ev.EventTime)
			before = nil
		}
		_ = h.feed(ev)
	}
	if checked < 20 {
		t.Fatalf("only %d decisions checked", checked)
	}
}

// TestMergeHeaderAcrossVarintWidths: a header whose seq takes more bytes than
// the stored one (127 → 128) still yields the new encoding.
func TestMergeHeaderAcrossVarintWidths(t *testing.T) {
	task := NewTask(nil, Config{})
	st := warmState(t, task, 3)
	st.seq = 127
	base := st.AppendBinary(nil)
	st.seq, st.segs = 128, st.segs^1
	got, err := MergeHeader(nil, base, st.AppendHeader(nil))
	if err != nil || !bytes.Equal(got, st.AppendBinary(nil)) {
		t.Fatalf("merged %x (%v), want %x", got, err, st.AppendBinary(nil))
	}
	if _, err := UnmarshalState(st.SIREN, got); err != nil {
		t.Fatal(err)
	}
}

func TestMergeHeaderRejectsBadInput(t *testing.T) {
	task := NewTask(nil, Config{})
	st := warmState(t, task, 4)
	base := st.AppendBinary(nil)
	st.seq++
	hdr := st.AppendHeader(nil)
	for name, c := range map[string][2][]byte{
		"empty header":    {base, nil},
		"header trailing": {base, append(append([]byte(nil), hdr...), 0)},
		"header version":  {base, append([]byte{9}, hdr[1:]...)},
		"header segments": {base, append(append([]byte(nil), hdr[:len(hdr)-1]...), 0xff)},
		"empty base":      {nil, hdr},
		"truncated base":  {base[:2], hdr},
		"base version":    {append([]byte{9}, base[1:]...), hdr},
	} {
		if _, err := MergeHeader(nil, c[0], c[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPeekHeaderReadsSeqAndSegmentsOfAMergedState(t *testing.T) {
	st := &State{SIREN: "732829320", seq: 3, segs: MultiSite | ChurnRisk}
	full := st.AppendBinary(nil)
	seq, segs, err := PeekHeader(full)
	if err != nil || seq != 3 || segs != MultiSite|ChurnRisk {
		t.Fatalf("PeekHeader(full) = %d, %v, %v", seq, segs, err)
	}
	st.seq, st.segs = 4, SLASensitive
	merged, err := MergeHeader(nil, full, st.AppendHeader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if seq, segs, err = PeekHeader(merged); err != nil || seq != 4 || segs != SLASensitive {
		t.Fatalf("PeekHeader(merged) = %d, %v, %v", seq, segs, err)
	}
	if _, _, err := PeekHeader([]byte{StateVersion}); err == nil {
		t.Fatal("truncated header accepted")
	}
}
