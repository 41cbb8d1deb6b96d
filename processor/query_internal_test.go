package processor

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// minimalState is the encoding of a state with seq and segments and nothing
// else (version 3: seq, segments, an empty header extension, flags, then
// empty lists).
func minimalState(t *testing.T, siren string, seq int64, segs engine.Segments) []byte {
	t.Helper()
	b := []byte{engine.StateVersion, byte(seq), byte(segs), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if _, err := engine.UnmarshalState(siren, b); err != nil {
		t.Fatalf("minimal state: %v", err)
	}
	return b
}

// listProcessor is a Processor owning partitions 0 and 1, loaded, over a
// real Badger store, without a broker.
func listProcessor(t *testing.T) (*Processor, *state.Store) {
	t.Helper()
	st, err := OpenStore(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := &Processor{cfg: Config{Store: st, Rules: engine.DefaultRules()}, tasks: map[int32]*task{}, owned: []int32{0, 1}, partitions: 2}
	for _, part := range p.owned {
		tk := &task{}
		tk.progress.p.Loaded = true
		p.tasks[part] = tk
	}
	return p, st
}

func put(t *testing.T, st *state.Store, part int32, seq int64, segs engine.Segments, sirens ...string) {
	t.Helper()
	var kvs []state.KV
	for _, s := range sirens {
		kvs = append(kvs, state.KV{SIREN: s, Value: minimalState(t, s, seq, segs)})
	}
	meta := appendMeta(nil, taskMeta{}, engine.NewTask(engine.DefaultRules(), engine.Config{}))
	if err := st.Commit(part, kvs, state.Checkpoint{Offsets: map[string]int64{"usage": 1}, Meta: meta}); err != nil {
		t.Fatal(err)
	}
}

func pageSIRENs(pg SegmentPage) []string {
	out := []string{}
	for _, r := range pg.Rows {
		out = append(out, r.SIREN)
	}
	return out
}

// TestListSegmentPagesAreStableUnderChange: pages follow SIREN order with
// the cursor = the last SIREN covered, so SIRENs entering or leaving the
// segment between two pages neither shift nor repeat the others: a SIREN
// that stays is listed exactly once, one that enters after the cursor is
// listed, one that enters before it is not (it is on a page already read).
func TestListSegmentPagesAreStableUnderChange(t *testing.T) {
	p, st := listProcessor(t)
	// SIRENs are keys: any 9 bytes sort; ListSegment does not check Luhn.
	put(t, st, 0, 1, engine.MultiSite, "100000001", "100000003", "100000005", "100000007")
	put(t, st, 1, 1, engine.MultiSite, "100000002", "100000004", "100000006", "100000008")
	put(t, st, 1, 1, engine.SLASensitive, "100000009") // another segment

	pg, err := p.ListSegment(engine.MultiSite, "", 3, 0, []int32{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageSIRENs(pg); !reflect.DeepEqual(got, []string{"100000001", "100000002", "100000003"}) || pg.Next != "100000003" {
		t.Fatalf("page 1: %v next %q", got, pg.Next)
	}
	// Between pages: 100000002 (read) leaves, 100000004 (not read) leaves,
	// 100000000 (before the cursor) and 100000010 (after it) enter.
	put(t, st, 1, 2, 0, "100000002", "100000004")
	put(t, st, 0, 1, engine.MultiSite, "100000000")
	put(t, st, 1, 1, engine.MultiSite, "100000010")
	var rest []string
	for cursor := pg.Next; cursor != ""; cursor = pg.Next {
		if pg, err = p.ListSegment(engine.MultiSite, cursor, 3, 0, []int32{0, 1}); err != nil {
			t.Fatal(err)
		}
		rest = append(rest, pageSIRENs(pg)...)
	}
	if want := []string{"100000005", "100000006", "100000007", "100000008", "100000010"}; !reflect.DeepEqual(rest, want) {
		t.Fatalf("pages after the change: %v, want %v", rest, want)
	}
}

// TestListSegmentScanBudgetBoundsAPage: with a budget of states examined per
// partition, a rare segment's page comes back short, its Next says how far
// it got, and paging on finds every member exactly once.
func TestListSegmentScanBudgetBoundsAPage(t *testing.T) {
	p, st := listProcessor(t)
	var want []string
	for i := range 50 {
		s := fmt.Sprintf("2%08d", i)
		segs := engine.Segments(0)
		if i%17 == 5 {
			segs = engine.ChurnRisk
			want = append(want, s)
		}
		put(t, st, int32(i%2), 1, segs, s)
	}
	var got []string
	pages := 0
	pg := SegmentPage{Next: ""}
	for first := true; first || pg.Next != ""; first = false {
		var err error
		if pg, err = p.ListSegment(engine.ChurnRisk, pg.Next, 10, 4, []int32{0, 1}); err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, pageSIRENs(pg)...)
		if len(pg.Rows) > 0 && pg.Next != "" && pg.Next < pg.Rows[len(pg.Rows)-1].SIREN {
			t.Fatalf("next %q before the page's last row", pg.Next)
		}
	}
	if !reflect.DeepEqual(got, want) || pages < 5 {
		t.Fatalf("listed %v in %d pages, want %v in several short pages", got, pages, want)
	}
	// A partition that is not owned or not loaded is reported missing.
	p.tasks[1].progress.p.Loaded = false
	pg, err := p.ListSegment(engine.ChurnRisk, "", 10, 0, []int32{0, 1, 5})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pg.Missing, []int32{1, 5}) || !reflect.DeepEqual(pg.Partitions, []int32{0}) {
		t.Fatalf("missing %v partitions %v, want [1 5] [0]", pg.Missing, pg.Partitions)
	}
}

// BenchmarkListSegmentPage: one page of a segment over a partition of
// 100,000 stored states of ~700 bytes, for a common segment (1 in 5) and a
// rare one (none: the scan budget of 100,000 states bounds the request).
func BenchmarkListSegmentPage(b *testing.B) {
	st, err := OpenStore(state.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := &Processor{cfg: Config{Store: st, Rules: engine.DefaultRules()}, tasks: map[int32]*task{0: {}}, owned: []int32{0}, partitions: 1}
	p.tasks[0].progress.p.Loaded = true
	meta := appendMeta(nil, taskMeta{}, engine.NewTask(engine.DefaultRules(), engine.Config{}))
	const n = 100_000
	var kvs []state.KV
	for i := range n {
		segs := engine.Segments(0)
		if i%5 == 0 {
			segs = engine.MultiSite
		}
		// A header, then filler: only the header is read unless listed.
		v := append([]byte{engine.StateVersion, 1, byte(segs)}, make([]byte, 700)...)
		if segs != 0 {
			v = []byte{engine.StateVersion, 1, byte(segs), 0, 0, 0, 0, 0, 0, 0, 0, 0}
		}
		kvs = append(kvs, state.KV{SIREN: fmt.Sprintf("%09d", i), Value: v})
		if len(kvs) == 2000 || i == n-1 {
			if err := st.Commit(0, kvs, state.Checkpoint{Offsets: map[string]int64{"usage": 1}, Meta: meta}); err != nil {
				b.Fatal(err)
			}
			kvs = kvs[:0]
		}
	}
	for _, c := range []struct {
		name string
		seg  engine.Segments
	}{{"common", engine.MultiSite}, {"rare", engine.ChurnRisk}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.ListSegment(c.seg, "", 100, 100_000, []int32{0}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
