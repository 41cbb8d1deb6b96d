package engine

import (
	"fmt"
	"time"
)

const (
	maxBytesPerRecord = 1_000_000_000_000_000 // 1e15
	maxCount          = 10_000_000
	maxAmountCents    = 1_000_000_000_000 // 1e12
	// maxFieldLen bounds the identifier fields (event, site, outage and
	// claim ids, postal code, plan). Some are kept in state: without a bound,
	// a few records with huge strings would grow one SIREN's state past a
	// Badger transaction or a Kafka record and stop the stream.
	maxFieldLen = 256
)

// Check validates ev's fields and lateness without mutating anything. The
// error wraps ErrInvalidSIREN, ErrInvalidEvent or ErrLate (checked in that
// order). Checks that need the SIREN's state (a RESOLVED without any known
// start, or resolved before its STARTED) are done by Step.
func (t *Task) Check(ev *Event) error {
	if !ValidSIREN(ev.SIREN) {
		return fmt.Errorf("%w: %q", ErrInvalidSIREN, ev.SIREN)
	}
	if ev.EventID == "" {
		return fmt.Errorf("%w: empty event_id", ErrInvalidEvent)
	}
	if n := max(len(ev.EventID), len(ev.SiteID), len(ev.PostalCode), len(ev.OutageID), len(ev.ClaimID), len(ev.Plan), len(ev.Offer), len(ev.SourceEventID)); n > maxFieldLen {
		return fmt.Errorf("%w: a string field has %d bytes (max %d)", ErrInvalidEvent, n, maxFieldLen)
	}
	switch ev.Kind {
	case KindUsage:
		if ev.BytesUp < 0 || ev.BytesDown < 0 {
			return fmt.Errorf("%w: negative bytes (up %d, down %d)", ErrInvalidEvent, ev.BytesUp, ev.BytesDown)
		}
		if ev.BytesUp > maxBytesPerRecord || ev.BytesDown > maxBytesPerRecord {
			return fmt.Errorf("%w: huge bytes (up %d, down %d)", ErrInvalidEvent, ev.BytesUp, ev.BytesDown)
		}
		if ev.HasActiveSIMs && (ev.ActiveSIMs < 0 || ev.ActiveSIMs > maxCount) {
			return fmt.Errorf("%w: active_sims %d out of range", ErrInvalidEvent, ev.ActiveSIMs)
		}
	case KindOutage:
		if ev.OutageID == "" {
			return fmt.Errorf("%w: empty outage_id", ErrInvalidEvent)
		}
		if ev.Status != OutageStarted && ev.Status != OutageResolved {
			return fmt.Errorf("%w: unknown outage status %d", ErrInvalidEvent, ev.Status)
		}
		if ev.Status == OutageResolved && ev.HasStartedAt && ev.StartedAt > ev.EventTime {
			return fmt.Errorf("%w: started_at %d after event_time %d", ErrInvalidEvent, ev.StartedAt, ev.EventTime)
		}
	case KindClaim:
		if ev.ClaimID == "" {
			return fmt.Errorf("%w: empty claim_id", ErrInvalidEvent)
		}
		if ev.HasOutageID && ev.OutageID == "" {
			return fmt.Errorf("%w: empty outage_id", ErrInvalidEvent)
		}
		if ev.AmountCents < 0 || ev.AmountCents > maxAmountCents {
			return fmt.Errorf("%w: amount_cents %d out of range", ErrInvalidEvent, ev.AmountCents)
		}
	case KindProfile:
		if ev.HasWorkforce && (ev.Workforce < 0 || ev.Workforce > maxCount) {
			return fmt.Errorf("%w: workforce %d out of range", ErrInvalidEvent, ev.Workforce)
		}
	case KindOfferResponse, KindContractEvent:
		if err := checkOutcome(ev); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidEvent, ev.Kind)
	}
	if t.started && ev.EventTime < t.streamTime {
		return t.lateness(ev)
	}
	return nil
}

// lateness classifies an event older than stream time. Without
// Config.Repair (replays, the in-memory driver): late (ErrLate) when older
// than stream time minus the allowed lateness, else applied. With it (a live
// task): older than the retention of what it updates (usage: UsageDays, the
// rest: HistoryDays) is late; older than the allowed lateness, or from a
// stream day a day change has already closed, needs a repair
// (ErrNeedsRepair): applying it now would differ from a replay, which
// applies it before that day change.
func (t *Task) lateness(ev *Event) error {
	if !t.cfg.Repair {
		if ev.EventTime < t.streamTime-t.cfg.AllowedLatenessMs {
			return fmt.Errorf("%w: event_time %d < stream time %d - lateness %d", ErrLate, ev.EventTime, t.streamTime, t.cfg.AllowedLatenessMs)
		}
		return nil
	}
	keep := int32(t.cfg.HistoryDays)
	if ev.Kind == KindUsage {
		keep = int32(t.cfg.UsageDays)
	}
	day := Day(ev.EventTime)
	if day <= t.StreamDay()-keep {
		return fmt.Errorf("%w: event_time %s is older than the %d days kept (stream time %s)", ErrLate, rfc3339(ev.EventTime), keep, rfc3339(t.streamTime))
	}
	if day < t.StreamDay() || ev.EventTime < t.streamTime-t.cfg.AllowedLatenessMs {
		return fmt.Errorf("%w: event_time %s is behind stream time %s", ErrNeedsRepair, rfc3339(ev.EventTime), rfc3339(t.streamTime))
	}
	return nil
}

// CheckRecord is Check plus the checks that need the Kafka record ev was
// decoded from, in this order: Check (SIREN, fields, lateness); the record
// key must be the event's SIREN (co-partitioning; ErrKeyMismatch); and,
// when Config.MaxFutureSkewMs is not 0 and the record timestamp is known,
// event_time must not be later than the record timestamp plus that skew
// (ErrFuture: deterministic on replay, both times are in the record). It
// mutates nothing and allocates only for an error.
func (t *Task) CheckRecord(ev *Event, rec Record) error {
	if err := t.Check(ev); err != nil {
		return err
	}
	if string(rec.Key) != ev.SIREN {
		return &keyMismatchError{msg: fmt.Sprintf("record key %q is not the event's SIREN %q: co-partitioning needs key = SIREN", rec.Key, ev.SIREN)}
	}
	if skew := t.cfg.MaxFutureSkewMs; skew != 0 && rec.TimestampMs != 0 && ev.EventTime > rec.TimestampMs+skew {
		return fmt.Errorf("%w: event_time %s is more than %s after the record timestamp %s",
			ErrFuture, rfc3339(ev.EventTime), time.Duration(skew)*time.Millisecond, rfc3339(rec.TimestampMs))
	}
	return nil
}

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
