package engine

import (
	"errors"
	"testing"
)

// TestLatenessWithRepairs: a live task (Config.Repair) never drops a record
// inside retention: one from a stream day a day change already closed, or
// beyond the allowed lateness, needs a repair; only records older than what
// they update is kept (usage 90 days, the rest 365) are late. A replay
// (Repair off) keeps the spec §4 rule: older than the lateness is late.
func TestLatenessWithRepairs(t *testing.T) {
	s := mkSIREN(7)
	now := at(d0+200, 12)
	usage := func(ms int64) *Event {
		return &Event{Kind: KindUsage, EventID: "u", SIREN: s, EventTime: ms, SiteID: "a", PostalCode: "75001", BytesUp: 1}
	}
	claim := func(ms int64) *Event {
		return &Event{Kind: KindClaim, EventID: "c", SIREN: s, EventTime: ms, ClaimID: "c1", AmountCents: 1}
	}
	for _, tc := range []struct {
		name   string
		repair bool
		ev     *Event
		want   error
	}{
		{"same day, older than stream time: applied", true, usage(at(d0+200, 3)), nil},
		{"previous day: repair", true, usage(at(d0+199, 23)), ErrNeedsRepair},
		{"beyond the lateness, inside usage retention: repair", true, usage(at(d0+150, 0)), ErrNeedsRepair},
		{"older than usage retention: late", true, usage(at(d0+110, 0)), ErrLate},
		{"claim 300 days old, inside its 365 days: repair", true, claim(at(d0-100, 0)), ErrNeedsRepair},
		{"claim older than 365 days: late", true, claim(at(d0-170, 0)), ErrLate},
		{"replay: previous day is applied", false, usage(at(d0+199, 23)), nil},
		{"replay: beyond the lateness is late", false, usage(at(d0+150, 0)), ErrLate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := NewTask(nil, Config{Repair: tc.repair})
			task.advanceTo(now)
			err := task.Check(tc.ev)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrNeedsRepair) && DLQReason(err) != "error" {
				t.Fatalf("a repair is not a dead letter, but DLQReason = %q", DLQReason(err))
			}
		})
	}
}
