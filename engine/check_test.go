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
	before := h.state(s).AppendBinary(nil)
	// lateness 7 days: the limit is exactly at(d0+3, 0).
	err := h.feed(usageEv(s, at(d0+3, 0)-1, "75002", 1e9, 1))
	if !errors.Is(err, ErrLate) || DLQReason(err) != "late" {
		t.Fatalf("err = %v, want ErrLate", err)
	}
	if string(h.state(s).AppendBinary(nil)) != string(before) {
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
	before := h.state(s).AppendBinary(nil)
	err := h.feed(ev)
	if !errors.Is(err, ErrDuplicate) || DLQReason(err) != "duplicate" {
		t.Fatalf("err = %v", err)
	}
	if string(h.state(s).AppendBinary(nil)) != string(before) {
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
			st := h.state(s)
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

// CheckRecord: Check, then the record key, then the future, with the
// dead-letter details the processor has always written.
func TestCheckRecord(t *testing.T) {
	s := mkSIREN(1)
	ev := usageEv(s, at(d0, 12), "75001", 100, 2)
	ev.EventID = "u1"
	key := []byte(s)
	ts := at(d0, 12) - 3*3_600_000 // the event is 3 h after its record
	tests := []struct {
		name       string
		cfg        Config
		ev         Event
		rec        Record
		want       error
		reason     string
		detail     string // "" = not checked
		wantPasses bool
	}{
		{name: "matching key, no timestamp", ev: ev, rec: Record{Key: key}, wantPasses: true},
		{name: "Check comes first", ev: func() Event { e := ev; e.SIREN = "732829321"; return e }(), rec: Record{Key: []byte("other")}, want: ErrInvalidSIREN, reason: "invalid_siren"},
		{name: "key is not the SIREN", ev: ev, rec: Record{Key: []byte("42"), TimestampMs: ts}, cfg: Config{MaxFutureSkewMs: 1}, want: ErrKeyMismatch, reason: "key_mismatch",
			detail: `record key "42" is not the event's SIREN "` + s + `": co-partitioning needs key = SIREN`},
		{name: "no key", ev: ev, rec: Record{}, want: ErrKeyMismatch, reason: "key_mismatch",
			detail: `record key "" is not the event's SIREN "` + s + `": co-partitioning needs key = SIREN`},
		{name: "future beyond the skew", ev: ev, rec: Record{Key: key, TimestampMs: ts}, cfg: Config{MaxFutureSkewMs: 3_600_000}, want: ErrFuture, reason: "future",
			detail: "event time in future: event_time 2024-10-04T12:00:00Z is more than 1h0m0s after the record timestamp 2024-10-04T09:00:00Z"},
		{name: "exactly at the skew passes", ev: ev, rec: Record{Key: key, TimestampMs: ts}, cfg: Config{MaxFutureSkewMs: 3 * 3_600_000}, wantPasses: true},
		{name: "skew 0 checks nothing", ev: ev, rec: Record{Key: key, TimestampMs: ts - 100*DayMs}, wantPasses: true},
		{name: "unknown timestamp checks nothing", ev: ev, rec: Record{Key: key}, cfg: Config{MaxFutureSkewMs: 1}, wantPasses: true},
		{name: "a negative skew is used as is", ev: func() Event { e := ev; e.EventTime = ts; return e }(), rec: Record{Key: key, TimestampMs: ts}, cfg: Config{MaxFutureSkewMs: -1}, want: ErrFuture, reason: "future",
			detail: "event time in future: event_time 2024-10-04T09:00:00Z is more than -1ms after the record timestamp 2024-10-04T09:00:00Z"},
		{name: "24h default of the processor", ev: ev, rec: Record{Key: key, TimestampMs: ts - DayMs}, cfg: Config{MaxFutureSkewMs: DayMs}, want: ErrFuture, reason: "future",
			detail: "event time in future: event_time 2024-10-04T12:00:00Z is more than 24h0m0s after the record timestamp 2024-10-03T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := NewTask(nil, tt.cfg)
			err := task.CheckRecord(&tt.ev, tt.rec)
			if tt.wantPasses {
				if err != nil {
					t.Fatalf("CheckRecord = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || DLQReason(err) != tt.reason {
				t.Fatalf("CheckRecord = %v (reason %q), want %v (%q)", err, DLQReason(err), tt.want, tt.reason)
			}
			if tt.detail != "" && err.Error() != tt.detail {
				t.Fatalf("detail\n%s\nwant\n%s", err, tt.detail)
			}
		})
	}
}
