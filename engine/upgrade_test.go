package engine

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The v1 goldens are state encodings written by the last build whose
// StateVersion was 1 (commit 37a9dd9): an existing state dir or changelog
// holds such bytes, and they must keep decoding. They cannot be rewritten by
// a later build; -update-v1 refuses unless StateVersion is 1.
var updateV1 = flag.Bool("update-v1", false, "rewrite testdata/state-v1/*.bin (only from a StateVersion 1 build)")

// v1Case is one golden: the events that built the state, fed through
// Memory from an empty task.
type v1Case struct {
	name  string
	siren string
	evs   func() []Event
}

func v1Cases() []v1Case {
	normal, hot, busy, wide := mkSIREN(101), mkSIREN(202), mkSIREN(303), mkSIREN(505)
	return []v1Case{
		{"profile", mkSIREN(404), func() []Event {
			return []Event{profileEv(mkSIREN(404), at(d0, 1), -1, "")}
		}},
		{"normal", normal, func() []Event {
			var evs []Event
			add := func(ev Event) { ev.EventID = fmt.Sprintf("n-%d", len(evs)); evs = append(evs, ev) }
			add(profileEv(normal, at(d0-95, 0), 12, "BASIC_SIM"))
			for d := d0 - 89; d <= d0; d++ {
				pc := "75001"
				if d%3 == 0 {
					pc = "69001"
				}
				add(usageEv(normal, at(d, 10), pc, 2e8+int64(d%7)*1e7, 4))
				if d == d0-40 {
					add(outageStartEv(normal, "o-1", at(d, 11), "75001"))
				}
				if d == d0-39 {
					add(outageResolvedEv(normal, "o-1", at(d, 2), -1, "75001"))
					add(claimEv(normal, at(d, 3), 25_000, "o-1"))
				}
				if d == d0-20 {
					add(profileEv(normal, at(d, 1), 14, "PRO"))
				}
				if d == d0-2 {
					add(outageStartEv(normal, "o-2", at(d, 12), "13001"))
				}
			}
			return evs
		}},
		// busy: hourly usage at four sites, 9 days (864 event ids: exact).
		{"busy", busy, func() []Event {
			var evs []Event
			for d := d0 - 8; d <= d0; d++ {
				for hr := 0; hr < 24; hr++ {
					for site := 0; site < 4; site++ {
						ev := usageEv(busy, at(d, hr)+int64(site)*60_000, fmt.Sprintf("7500%d", site), 1e7, 2)
						ev.EventID = fmt.Sprintf("b-%d-%d-%d", d, hr, site)
						evs = append(evs, ev)
					}
				}
			}
			return evs
		}},
		// hot: 6000 usage events over the last three days (more event ids
		// than a v2 state keeps exactly).
		{"hot", hot, func() []Event {
			var evs []Event
			evs = append(evs, profileEv(hot, at(d0-3, 0), 40, "PRO"))
			evs[0].EventID = "h-p"
			for i := 0; i < 6000; i++ {
				ev := usageEv(hot, at(d0-2, 0)+int64(i)*40_000, "75002", 1e6, 30)
				ev.EventID = fmt.Sprintf("h-%d", i)
				evs = append(evs, ev)
			}
			return evs
		}},
		// wide: more postal codes and open outages than a v2 state keeps.
		{"wide", wide, func() []Event {
			var evs []Event
			for i := 0; i < 300; i++ {
				ev := usageEv(wide, at(d0-1, 0)+int64(i)*1000, fmt.Sprintf("%05d", 10000+i), 1e6, 1)
				ev.EventID = fmt.Sprintf("w-u-%d", i)
				evs = append(evs, ev)
			}
			for i := 0; i < 200; i++ {
				ev := outageStartEv(wide, fmt.Sprintf("out-%03d", i), at(d0, 0)+int64(i)*1000, "")
				ev.EventID = fmt.Sprintf("w-o-%d", i)
				evs = append(evs, ev)
			}
			return evs
		}},
	}
}

// feedV1 builds the case's state through Memory.
func feedV1(tb testing.TB, c v1Case) *Memory {
	m := NewMemory(nil, Config{})
	for _, ev := range c.evs() {
		if ev.EventID == "" {
			ev.EventID = fmt.Sprint("x-", ev.EventTime)
		}
		if err := m.Apply(&ev, Record{Key: []byte(ev.SIREN)}); err != nil {
			tb.Fatalf("%s: %+v: %v", c.name, ev, err)
		}
	}
	return m
}

func v1Path(name string) string { return filepath.Join("testdata", "state-v1", name+".bin") }

func TestWriteStateV1Goldens(t *testing.T) {
	if !*updateV1 {
		t.Skip("-update-v1 not set")
	}
	writeGoldens(t, 1, v1Path)
}

// writeGoldens writes the encodings of v1Cases' states to path(name); only a build whose
// StateVersion is version may write its goldens.
func writeGoldens(t *testing.T, version byte, path func(string) string) {
	if StateVersion != version {
		t.Fatalf("StateVersion is %d: v%d goldens come from a v%d build only", StateVersion, version, version)
	}
	if err := os.MkdirAll(filepath.Dir(path("x")), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range v1Cases() {
		st := feedV1(t, c).State(c.siren)
		if err := os.WriteFile(path(c.name), st.AppendBinary(nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateV1GoldensDecode: every v1 golden decodes, and to the state the
// current code builds from the same events (a v1 state dir keeps working);
// "wide", over the caps of the current code, decodes whole and is brought
// within them by its next event.
func TestStateV1GoldensDecode(t *testing.T) {
	for _, c := range v1Cases() {
		t.Run(c.name, func(t *testing.T) {
			b := readV1(t, c.name)
			old, err := UnmarshalState(c.siren, b)
			if err != nil {
				t.Fatal(err)
			}
			m := feedV1(t, c)
			cur := m.State(c.siren)
			if c.name == "wide" {
				// Nothing of a v1 state is lost: all 300 postal codes and
				// 200 open outages decode, and survive an encoding.
				enc := old.AppendBinary(nil)
				back, err := UnmarshalState(c.siren, enc)
				if err != nil {
					t.Fatal(err)
				}
				for _, st := range []*State{old, back} {
					if len(st.postals) != 300 || len(st.open) != 200 || len(st.usage) != 1 || st.usage[0] != old.usage[0] {
						t.Fatalf("v1 state over the caps: %d postal codes, %d open outages, usage %v", len(st.postals), len(st.open), st.usage)
					}
				}
				if !bytes.Equal(back.AppendBinary(nil), enc) {
					t.Fatal("v1 state over the caps: its encoding decodes to another state")
				}
				return
			}
			// A v1 state does not know the offers it emitted (the first
			// evaluation derives them, see evaluate), and today's rules
			// also emit offer changes (more decisions: a greater seq):
			// compare the rest.
			old.offers, old.offersUnknown, old.seq = cur.offers, false, cur.seq
			// Nor its holdout group and eligibilities (tags 3, 4: recorded
			// by the steps of today's build).
			old.outcomeState = cur.outcomeState
			if got, want := old.AppendBinary(nil), cur.AppendBinary(nil); !bytes.Equal(got, want) {
				t.Fatalf("decoded v1 re-encodes to %d bytes, the same events give %d", len(got), len(want))
			}
			var v1, v2 Decision
			m.Task().View(old, &v1)
			m.Task().View(cur, &v2)
			if !reflect.DeepEqual(v1, v2) {
				t.Fatalf("views differ:\n%+v\n%+v", v1, v2)
			}
		})
	}
}

func readV1(t *testing.T, name string) []byte { return readGolden(t, v1Path(name), 1) }

// readGolden reads a golden state encoding and checks its version byte.
func readGolden(t *testing.T, path string, version byte) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != version {
		t.Fatalf("golden %s has version %d", path, b[0])
	}
	return b
}

// TestStateV1HotKeepsEveryID: the 6001 event ids of the v1 "hot" golden
// (more than DedupExact) are all still duplicates after the upgrade.
func TestStateV1HotKeepsEveryID(t *testing.T) {
	var c v1Case
	for _, c = range v1Cases() {
		if c.name == "hot" {
			break
		}
	}
	st, err := UnmarshalState(c.siren, readV1(t, "hot"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.ids.hash); n > DedupExact || len(st.ids.filters) == 0 {
		t.Fatalf("upgraded set: %d exact ids, %d filters", n, len(st.ids.filters))
	}
	for _, ev := range c.evs() {
		if !st.seen(fnv64aString(ev.EventID)) {
			t.Fatalf("%s forgotten by the upgrade", ev.EventID)
		}
	}
}

// TestStateV1WideIsCappedByItsNextEvent: a v1 state over MaxPostalCodes and
// MaxOpenOutages keeps working; its next new postal code and outage bring
// it within the caps, and the task counts the hits.
func TestStateV1WideIsCappedByItsNextEvent(t *testing.T) {
	siren := mkSIREN(505)
	st, err := UnmarshalState(siren, readV1(t, "wide"))
	if err != nil {
		t.Fatal(err)
	}
	task := NewTask(nil, Config{})
	var dec Decision
	for i, ev := range []Event{
		usageEv(siren, at(d0, 12), "99999", 1, 1),
		outageStartEv(siren, "out-new", at(d0, 13), ""),
	} {
		ev.EventID = fmt.Sprint("next-", i)
		if _, err := task.Step(st, &ev, &dec); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.postals) != MaxPostalCodes || len(st.open) != MaxOpenOutages {
		t.Fatalf("%d postal codes, %d open outages", len(st.postals), len(st.open))
	}
	b := task.Bounds()
	if b.Hits[BoundPostalCodes] != 300+1-MaxPostalCodes || b.Hits[BoundOpenOutages] != 200+1-MaxOpenOutages || b.Last[BoundPostalCodes] != siren {
		t.Fatalf("bounds %+v", b)
	}
}

// TestMergeHeaderUpgradesAV1Base: a day change's header merged into a v1
// state still in the store gives the current encoding of the new decision
// (a v1 body is not a v4 body: the state is decoded and encoded again).
func TestMergeHeaderUpgradesAV1Base(t *testing.T) {
	mergeNewerHeader(t, readV1(t, "normal"), mkSIREN(101))
}

// mergeNewerHeader decodes the older-version state b, makes a newer decision
// (seq+1, a segment flipped), merges its header over b and wants the current
// encoding of the new state; it returns that state.
func mergeNewerHeader(t *testing.T, b []byte, siren string) *State {
	t.Helper()
	st, err := UnmarshalState(siren, b)
	if err != nil {
		t.Fatal(err)
	}
	st.seq++
	st.segs ^= MultiSite
	got, err := MergeHeader(nil, b, st.AppendHeader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != StateVersion {
		t.Fatalf("merged version %d", got[0])
	}
	if !bytes.Equal(got, st.AppendBinary(nil)) {
		t.Fatalf("merged version %d state is not the new state", b[0])
	}
	return st
}
