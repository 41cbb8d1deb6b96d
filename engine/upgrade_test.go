package engine

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	if StateVersion != 1 {
		t.Fatalf("StateVersion is %d: v1 goldens come from a v1 build only", StateVersion)
	}
	if err := os.MkdirAll(filepath.Dir(v1Path("x")), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range v1Cases() {
		st := feedV1(t, c).State(c.siren)
		if err := os.WriteFile(v1Path(c.name), st.AppendBinary(nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateV1GoldensDecode: every v1 golden decodes, and to the state the
// current code builds from the same events (a v1 state dir keeps working).
func TestStateV1GoldensDecode(t *testing.T) {
	for _, c := range v1Cases() {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(v1Path(c.name))
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 1 {
				t.Fatalf("golden has version %d", b[0])
			}
			old, err := UnmarshalState(c.siren, b)
			if err != nil {
				t.Fatal(err)
			}
			m := feedV1(t, c)
			cur := m.State(c.siren)
			if got, want := old.AppendBinary(nil), cur.AppendBinary(nil); !bytes.Equal(got, want) {
				t.Fatalf("decoded v1 re-encodes to %d bytes, the same events give %d", len(got), len(want))
			}
		})
	}
}
