package schemas

import (
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// decodeFast decodes an Avro body written with the project's own schema for
// kind into ev. It allocates once (the body as a string; every string field
// of ev is a substring of it, so keeping one field keeps the whole body
// alive). It overwrites all of ev.
func decodeFast(kind engine.Kind, body []byte, ev *engine.Event) error {
	*ev = engine.Event{Kind: kind}
	d := dec{b: body, s: string(body)}
	var err error
	switch kind {
	case engine.KindUsage:
		err = decodeUsage(&d, ev)
	case engine.KindOutage:
		err = decodeOutage(&d, ev)
	case engine.KindClaim:
		err = decodeClaim(&d, ev)
	case engine.KindProfile:
		err = decodeProfile(&d, ev)
	case engine.KindOfferResponse:
		err = decodeOfferResponse(&d, ev)
	case engine.KindContractEvent:
		err = decodeContractEvent(&d, ev)
	case engine.KindTick:
		off := d.p
		if ev.EventTime, err = d.long(); err != nil {
			err = fieldErr("ClockTick", "event_time", off, err)
		}
	default:
		return fmt.Errorf("%w: kind %d is not an input kind", ErrWrongSchema, kind)
	}
	if err != nil {
		return err
	}
	return d.end()
}

func decodeUsage(d *dec, ev *engine.Event) error {
	const rec = "Usage"
	var err error
	off := d.p
	if ev.EventID, err = d.str(); err != nil {
		return fieldErr(rec, "event_id", off, err)
	}
	off = d.p
	if ev.SIREN, err = d.str(); err != nil {
		return fieldErr(rec, "siren", off, err)
	}
	off = d.p
	if ev.SiteID, err = d.str(); err != nil {
		return fieldErr(rec, "site_id", off, err)
	}
	off = d.p
	if ev.PostalCode, err = d.str(); err != nil {
		return fieldErr(rec, "postal_code", off, err)
	}
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	off = d.p
	if ev.BytesUp, err = d.long(); err != nil {
		return fieldErr(rec, "bytes_up", off, err)
	}
	off = d.p
	if ev.BytesDown, err = d.long(); err != nil {
		return fieldErr(rec, "bytes_down", off, err)
	}
	off = d.p
	if ev.HasActiveSIMs, err = d.branch(); err != nil {
		return fieldErr(rec, "active_sims", off, err)
	}
	if ev.HasActiveSIMs {
		if ev.ActiveSIMs, err = d.int(); err != nil {
			return fieldErr(rec, "active_sims", off, err)
		}
	}
	return nil
}

func decodeOutage(d *dec, ev *engine.Event) error {
	const rec = "Outage"
	var err error
	off := d.p
	if ev.EventID, err = d.str(); err != nil {
		return fieldErr(rec, "event_id", off, err)
	}
	off = d.p
	if ev.OutageID, err = d.str(); err != nil {
		return fieldErr(rec, "outage_id", off, err)
	}
	off = d.p
	if ev.SIREN, err = d.str(); err != nil {
		return fieldErr(rec, "siren", off, err)
	}
	off = d.p
	if ev.SiteID, err = d.str(); err != nil {
		return fieldErr(rec, "site_id", off, err)
	}
	off = d.p
	if ev.PostalCode, err = d.str(); err != nil {
		return fieldErr(rec, "postal_code", off, err)
	}
	off = d.p
	st, err := d.int()
	if err != nil {
		return fieldErr(rec, "status", off, err)
	}
	switch st {
	case 0:
		ev.Status = engine.OutageStarted
	case 1:
		ev.Status = engine.OutageResolved
	default:
		return fieldErr(rec, "status", off, errEnum)
	}
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	off = d.p
	if ev.HasStartedAt, err = d.branch(); err != nil {
		return fieldErr(rec, "started_at", off, err)
	}
	if ev.HasStartedAt {
		if ev.StartedAt, err = d.long(); err != nil {
			return fieldErr(rec, "started_at", off, err)
		}
	}
	return nil
}

func decodeClaim(d *dec, ev *engine.Event) error {
	const rec = "Claim"
	var err error
	off := d.p
	if ev.EventID, err = d.str(); err != nil {
		return fieldErr(rec, "event_id", off, err)
	}
	off = d.p
	if ev.ClaimID, err = d.str(); err != nil {
		return fieldErr(rec, "claim_id", off, err)
	}
	off = d.p
	if ev.SIREN, err = d.str(); err != nil {
		return fieldErr(rec, "siren", off, err)
	}
	off = d.p
	if ev.HasOutageID, err = d.branch(); err != nil {
		return fieldErr(rec, "outage_id", off, err)
	}
	if ev.HasOutageID {
		if ev.OutageID, err = d.str(); err != nil {
			return fieldErr(rec, "outage_id", off, err)
		}
	}
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	off = d.p
	if ev.AmountCents, err = d.long(); err != nil {
		return fieldErr(rec, "amount_cents", off, err)
	}
	return nil
}

func decodeProfile(d *dec, ev *engine.Event) error {
	const rec = "Profile"
	var err error
	off := d.p
	if ev.EventID, err = d.str(); err != nil {
		return fieldErr(rec, "event_id", off, err)
	}
	off = d.p
	if ev.SIREN, err = d.str(); err != nil {
		return fieldErr(rec, "siren", off, err)
	}
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	off = d.p
	if ev.HasWorkforce, err = d.branch(); err != nil {
		return fieldErr(rec, "workforce", off, err)
	}
	if ev.HasWorkforce {
		if ev.Workforce, err = d.int(); err != nil {
			return fieldErr(rec, "workforce", off, err)
		}
	}
	off = d.p
	if ev.Plan, err = d.str(); err != nil {
		return fieldErr(rec, "plan", off, err)
	}
	return nil
}

// AppendEvent appends ev as a Confluent-framed record with the fixed schema id
// of ev.Kind (1–4) and returns the extended buffer. It does not allocate when
// dst has room. Fields not used by ev.Kind are not written; a union is null
// when its Has flag is false. Errors: an unknown Kind or an invalid Status.
func AppendEvent(dst []byte, ev *engine.Event) ([]byte, error) {
	id := IDForKind(ev.Kind)
	if id == 0 {
		return dst, fmt.Errorf("schemas: encode: unknown event kind %d", ev.Kind)
	}
	if ev.Kind == engine.KindOutage && ev.Status > engine.OutageResolved {
		return dst, fmt.Errorf("schemas: encode: invalid outage status %d", ev.Status)
	}
	if ev.Channel > engine.ChannelBill || ev.ResponseStatus > engine.ResponseWithheld || ev.ContractType > engine.ContractRenewal {
		return dst, fmt.Errorf("schemas: encode: invalid enum (channel %d, status %d, type %d)", ev.Channel, ev.ResponseStatus, ev.ContractType)
	}
	dst = AppendHeader(dst, id)
	switch ev.Kind {
	case engine.KindUsage:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.SIREN)
		dst = appendString(dst, ev.SiteID)
		dst = appendString(dst, ev.PostalCode)
		dst = appendLong(dst, ev.EventTime)
		dst = appendLong(dst, ev.BytesUp)
		dst = appendLong(dst, ev.BytesDown)
		dst = appendOptInt(dst, ev.HasActiveSIMs, ev.ActiveSIMs)
	case engine.KindOutage:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.OutageID)
		dst = appendString(dst, ev.SIREN)
		dst = appendString(dst, ev.SiteID)
		dst = appendString(dst, ev.PostalCode)
		dst = appendInt(dst, int32(ev.Status))
		dst = appendLong(dst, ev.EventTime)
		if ev.HasStartedAt {
			dst = append(dst, 2) // union branch 1, zigzag
			dst = appendLong(dst, ev.StartedAt)
		} else {
			dst = append(dst, 0)
		}
	case engine.KindClaim:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.ClaimID)
		dst = appendString(dst, ev.SIREN)
		if ev.HasOutageID {
			dst = append(dst, 2)
			dst = appendString(dst, ev.OutageID)
		} else {
			dst = append(dst, 0)
		}
		dst = appendLong(dst, ev.EventTime)
		dst = appendLong(dst, ev.AmountCents)
	case engine.KindProfile:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.SIREN)
		dst = appendLong(dst, ev.EventTime)
		dst = appendOptInt(dst, ev.HasWorkforce, ev.Workforce)
		dst = appendString(dst, ev.Plan)
	case engine.KindOfferResponse:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.SIREN)
		dst = appendString(dst, ev.Offer)
		dst = appendOptString(dst, ev.HasSourceEventID, ev.SourceEventID)
		dst = appendInt(dst, int32(ev.Channel))
		dst = appendInt(dst, int32(ev.ResponseStatus))
		dst = appendLong(dst, ev.EventTime)
		dst = appendLong(dst, ev.ValueCents)
	case engine.KindContractEvent:
		dst = appendString(dst, ev.EventID)
		dst = appendString(dst, ev.SIREN)
		dst = appendInt(dst, int32(ev.ContractType))
		dst = appendOptString(dst, ev.HasPlan, ev.Plan)
		dst = appendLong(dst, ev.MRRCents)
		dst = appendLong(dst, ev.EventTime)
	case engine.KindTick:
		dst = appendLong(dst, ev.EventTime)
	}
	return dst, nil
}

func appendOptInt(dst []byte, has bool, v int32) []byte {
	if !has {
		return append(dst, 0)
	}
	return appendInt(append(dst, 2), v)
}

func appendOptDouble(dst []byte, has bool, v float64) []byte {
	if !has {
		return append(dst, 0)
	}
	return appendDouble(append(dst, 2), v)
}
