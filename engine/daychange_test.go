package engine

import (
	"bytes"
	"errors"
	"testing"
)

// dayOf feeds a day of usage for n SIRENs (some with SIMs, so scored) at
// day d to m, failing on any error.
func dayOf(t testing.TB, m *Memory, d int32, n int) {
	t.Helper()
	for i := range n {
		s := mkSIREN(1000 + i)
		ev := usageEv(s, at(d, 1+i%20), "75001", int64(1+i)*1e8, int32(i%3))
		ev.EventID = s + "-" + string(rune('a'+d%26))
		if err := m.Apply(&ev, Record{Key: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
}

// Pass 1 from the states, from their encodings and from a kept next-day
// set give the same snapshot (the task meta holds it) and name their source.
func TestPass1SourcesAgree(t *testing.T) {
	plain := NewMemory(nil, Config{})
	kept := NewMemory(nil, Config{})
	kept.Task().KeepNextDay(true)
	for d := d0; d < d0+3; d++ {
		dayOf(t, plain, d, 150)
		dayOf(t, kept, d, 150)
		want := plain.DayChange(at(d+1, 0))
		got := kept.DayChange(at(d+1, 0))
		if want.Source != SourceStates || want.Scored == 0 {
			t.Fatalf("day %d: plain pass 1 %+v", d+1, want)
		}
		wantSource := SourceKept
		if d == d0 {
			wantSource = SourceStates // no set kept before the first day change
		}
		if got.Source != wantSource || got.Scored != want.Scored {
			t.Fatalf("day %d: kept pass 1 %+v, want %s of %d", d+1, got, wantSource, want.Scored)
		}
		if !bytes.Equal(plain.Task().AppendMeta(nil), kept.Task().AppendMeta(nil)) {
			t.Fatalf("day %d: snapshots differ", d+1)
		}
	}

	// The same day change from encoded states.
	enc := NewTask(nil, Config{})
	if err := enc.UnmarshalMeta(plain.Task().AppendMeta(nil)); err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	for st := range plain.States() {
		bufs = append(bufs, st.AppendBinary(nil))
	}
	stats, err := enc.BeginDay(at(d0+4, 0), FromEncoded(func(visit func(string, []byte) error) error {
		for _, b := range bufs {
			if err := visit("", b); err != nil {
				return err
			}
		}
		return nil
	}))
	want := plain.DayChange(at(d0+4, 0))
	if err != nil || stats.Source != SourceEncoded || stats.Scored != want.Scored ||
		!bytes.Equal(enc.AppendMeta(nil), plain.Task().AppendMeta(nil)) {
		t.Fatalf("encoded pass 1 %+v (%v), states %+v", stats, err, want)
	}
}

// A kept set serves only the next day change after the pass 2 that built
// it, in the same process, with keeping on through that pass 2.
func TestKeptSetIsUsedOnlyWhenValid(t *testing.T) {
	setup := func() *Memory {
		m := NewMemory(nil, Config{})
		m.Task().KeepNextDay(true)
		dayOf(t, m, d0, 120)
		m.DayChange(at(d0+1, 0)) // builds the set for d0+2
		dayOf(t, m, d0+1, 120)
		return m
	}
	tests := []struct {
		name   string
		before func(m *Memory) int64 // returns the day change's time
		want   string
	}{
		{"next day", func(m *Memory) int64 { return at(d0+2, 0) }, SourceKept},
		{"a day skipped", func(m *Memory) int64 { return at(d0+3, 0) }, SourceStates},
		{"after a restart", func(m *Memory) int64 {
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			return at(d0+2, 0)
		}, SourceStates},
		{"keeping turned off after the set was kept", func(m *Memory) int64 {
			m.Task().KeepNextDay(false)
			return at(d0+2, 0)
		}, SourceKept},
		{"a step into a new day without a day change", func(m *Memory) int64 {
			var dec Decision
			st := m.State(mkSIREN(1000))
			ev := usageEv(st.SIREN, at(d0+2, 0), "75001", 1, 1)
			ev.EventID = "skip"
			if _, err := m.Task().Step(st, &ev, &dec); err != nil {
				t.Fatal(err)
			}
			return at(d0+2, 1)
		}, SourceStates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setup()
			ms := tt.before(m)
			if got := m.DayChange(ms); got.Source != tt.want {
				t.Fatalf("pass 1 from %q, want %q", got.Source, tt.want)
			}
		})
	}

	// A valid kept set replaces pass 1: pop is not called.
	m := setup()
	stats, err := m.Task().BeginDay(at(d0+2, 0), FromStates(func(func(*State) error) error {
		t.Fatal("pass 1 ran")
		return nil
	}))
	if err != nil || stats.Source != SourceKept || stats.Scored != 80 { // SIRENs with SIMs
		t.Fatalf("BeginDay with a kept set: %+v (%v)", stats, err)
	}

	// Pass 2 with keeping turned off before its end, or resumed without
	// BeginDay (a fresh task), installs nothing.
	empty := FromStates(func(func(*State) error) error { return nil })
	for name, pass2 := range map[string]func(task *Task){
		"keeping turned off during pass 2": func(task *Task) {
			if _, err := task.BeginDay(at(d0+1, 0), empty); err != nil {
				t.Fatal(err)
			}
			task.KeepNextDay(false)
			task.EndDay()
		},
		"pass 2 resumed after a restart": func(task *Task) { task.EndDay() },
	} {
		t.Run(name, func(t *testing.T) {
			task := NewTask(nil, Config{})
			task.KeepNextDay(true)
			pass2(task)
			if task.kept != nil || task.building != nil {
				t.Fatal("a next-day set was installed")
			}
		})
	}
}

// An error of pass 1 (the store's, or a state that does not decode) is
// returned.
func TestBeginDayReturnsPass1Error(t *testing.T) {
	boom := errors.New("store down")
	task := NewTask(nil, Config{})
	if _, err := task.BeginDay(at(d0, 0), FromEncoded(func(func(string, []byte) error) error { return boom })); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	_, err := task.BeginDay(at(d0+1, 0), FromEncoded(func(visit func(string, []byte) error) error {
		return visit("x", []byte{StateVersion + 1})
	}))
	if err == nil {
		t.Fatal("a bad encoding gave no error")
	}
}

// StartsDay: false before the first event, then true for a later day only.
func TestStartsDay(t *testing.T) {
	m := NewMemory(nil, Config{})
	ev := usageEv(mkSIREN(1), at(d0, 5), "75001", 1, 1)
	ev.EventID = "e"
	if m.Task().StartsDay(&ev) {
		t.Fatal("before the first event")
	}
	if err := m.Apply(&ev, Record{Key: []byte(ev.SIREN)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ms   int64
		want bool
	}{{at(d0, 23), false}, {at(d0-1, 23), false}, {at(d0+1, 0), true}, {at(d0+5, 0), true}} {
		ev.EventTime = tt.ms
		if got := m.Task().StartsDay(&ev); got != tt.want {
			t.Errorf("StartsDay(%d) = %v", tt.ms, got)
		}
	}
}
