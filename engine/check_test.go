package engine

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	s := mkSIREN(1)
	ok := usageEv(s, at(d0, 1), "75001", 100, 2)
	ok.EventID = "u1"
	mod := func(f func(*Event)) Event { e := ok; f(&e); return e }
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{"valid usage passes", ok, nil},
		{"non-Luhn SIREN is invalid_siren", mod(func(e *Event) { e.SIREN = "732829321" }), ErrInvalidSIREN},
		{"8-digit SIREN is invalid_siren", mod(func(e *Event) { e.SIREN = "73282932" }), ErrInvalidSIREN},
		{"empty event_id", mod(func(e *Event) { e.EventID = "" }), ErrInvalidEvent},
		{"negative bytes_up", mod(func(e *Event) { e.BytesUp = -1 }), ErrInvalidEvent},
		{"negative bytes_down", mod(func(e *Event) { e.BytesDown = -1 }), ErrInvalidEvent},
		{"huge bytes", mod(func(e *Event) { e.BytesDown = 1e15 + 1 }), ErrInvalidEvent},
		{"1e15 bytes is allowed", mod(func(e *Event) { e.BytesDown = 1e15 }), nil},
		{"negative active_sims", mod(func(e *Event) { e.ActiveSIMs = -1 }), ErrInvalidEvent},
		{"too many active_sims", mod(func(e *Event) { e.ActiveSIMs = 10_000_001 }), ErrInvalidEvent},
		{"unknown kind", mod(func(e *Event) { e.Kind = 9 }), ErrInvalidEvent},
		{"outage without outage_id", Event{Kind: KindOutage, EventID: "o", SIREN: s, EventTime: at(d0, 1)}, ErrInvalidEvent},
		{"outage unknown status", Event{Kind: KindOutage, EventID: "o", SIREN: s, OutageID: "x", Status: 7, EventTime: at(d0, 1)}, ErrInvalidEvent},
		{"resolved with started_at after event_time", func() Event {
			e := outageResolvedEv(s, "x", at(d0, 1), at(d0, 2), "")
			e.EventID = "o"
			return e
		}(), ErrInvalidEvent},
		{"resolved without started_at passes Check (Step decides)", func() Event {
			e := outageResolvedEv(s, "x", at(d0, 1), -1, "")
			e.EventID = "o"
			return e
		}(), nil},
		{"negative claim amount", func() Event { e := claimEv(s, at(d0, 1), -1, "x"); e.EventID = "c"; return e }(), ErrInvalidEvent},
		{"claim amount above 1e12", func() Event { e := claimEv(s, at(d0, 1), 1e12+1, "x"); e.EventID = "c"; return e }(), ErrInvalidEvent},
		{"claim without claim_id", func() Event { e := claimEv(s, at(d0, 1), 1, "x"); e.EventID = "c"; e.ClaimID = ""; return e }(), ErrInvalidEvent},
		{"negative workforce", func() Event { e := profileEv(s, at(d0, 1), 0, "P"); e.Workforce = -3; e.EventID = "p"; return e }(), ErrInvalidEvent},
		{"workforce above 1e7", func() Event { e := profileEv(s, at(d0, 1), 10_000_001, "P"); e.EventID = "p"; return e }(), ErrInvalidEvent},
	}
	task := NewTask(nil, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := task.Check(&tt.ev)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if task.Started() || task.StreamTime() != 0 {
		t.Fatal("Check must not mutate")
	}
}

func TestLateRecordsAreRejectedAndChangeNothing(t *testing.T) {
	h := newHarness(t, nil)
	s := mkSIREN(7)
	h.must(usageEv(s, at(d0, 12), "75001", 1e9, 1))
	h.tick(at(d0+10, 0))
	before := h.states[s].AppendBinary(nil)
	// lateness 7 days: the limit is exactly at(d0+3, 0).
	err := h.feed(usageEv(s, at(d0+3, 0)-1, "75002", 1e9, 1))
	if !errors.Is(err, ErrLate) || DLQReason(err) != "late" {
		t.Fatalf("err = %v, want ErrLate", err)
	}
	if string(h.states[s].AppendBinary(nil)) != string(before) {
		t.Fatal("late record changed the state")
	}
	if err := h.feed(usageEv(s, at(d0+3, 0), "75001", 1e9, 1)); err != nil {
		t.Fatalf("record exactly at the lateness limit: %v", err)
	}
	if got := h.view(s).Metrics.Traffic30dBytes; got != 2e9 {
		t.Fatalf("traffic = %d", got)
	}
}

func TestDuplicatesAreRejectedAndNotCountedTwice(t *testing.T) {
	h := newHarness(t, nil)
	s, other := mkSIREN(7), mkSIREN(8)
	ev := usageEv(s, at(d0, 12), "75001", 5e9, 1)
	ev.EventID = "same"
	h.must(ev)
	before := h.states[s].AppendBinary(nil)
	err := h.feed(ev)
	if !errors.Is(err, ErrDuplicate) || DLQReason(err) != "duplicate" {
		t.Fatalf("err = %v", err)
	}
	if string(h.states[s].AppendBinary(nil)) != string(before) {
		t.Fatal("duplicate changed the state")
	}
	// A replay later in the day, and a day later, is still a duplicate.
	h.tick(at(d0+1, 3))
	ev2 := ev
	ev2.EventTime = at(d0+1, 1)
	if err := h.feed(ev2); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("err = %v", err)
	}
	if got := h.view(s).Metrics.Traffic30dBytes; got != 5e9 {
		t.Fatalf("traffic = %d, want 5e9 (counted once)", got)
	}
	// The same event_id on another SIREN is a different event.
	ev3 := ev
	ev3.SIREN = other
	ev3.EventTime = at(d0+1, 4)
	if err := h.feed(ev3); err != nil {
		t.Fatal(err)
	}
}

func TestStepRejectsInconsistentOutages(t *testing.T) {
	s := mkSIREN(3)
	tests := []struct {
		name  string
		prior []Event
		ev    Event
	}{
		{"RESOLVED without started_at nor STARTED", nil, outageResolvedEv(s, "o1", at(d0, 5), -1, "")},
		{"RESOLVED before its STARTED", []Event{outageStartEv(s, "o1", at(d0, 5), "")}, outageResolvedEv(s, "o1", at(d0, 4), -1, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.tick(at(d0, 0))
			h.must(tt.prior...)
			st := h.states[s]
			var before []byte
			if st != nil {
				before = st.AppendBinary(nil)
			}
			err := h.feed(tt.ev)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v", err)
			}
			if st != nil && string(st.AppendBinary(nil)) != string(before) {
				t.Fatal("state changed")
			}
		})
	}
}
