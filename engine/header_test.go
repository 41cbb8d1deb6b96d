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
	checked := 0
	day := Day(evs[0].EventTime)
	for _, ev := range evs {
		if d := Day(ev.EventTime); d > day {
			day = d
			for _, k := range h.advance(ev.EventTime) {
				st := h.states[k]
				base := st.AppendBinary(nil)
				oldHdr := st.AppendHeader(nil)
				if !h.task.Evaluate(st, &h.dec) {
					continue
				}
				want := st.AppendBinary(nil)
				got, err := MergeHeader(nil, base, st.AppendHeader(nil))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: merged %x (%v), want %x", k, got, err, want)
				}
				stale, err := MergeHeader([]byte("x"), want, oldHdr)
				if err != nil || !bytes.Equal(stale, append([]byte("x"), want...)) {
					t.Fatalf("%s: a stale header changed the state: %x (%v)", k, stale, err)
				}
				checked++
			}
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
