package schemas

import "github.com/sirenstream/sirenstream/engine"

// Decoders of the outcome inputs (spec §8): offer_response (id 5) and
// contract_event (id 6).

func decodeOfferResponse(d *dec, ev *engine.Event) error {
	const rec = "OfferResponse"
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
	if ev.Offer, err = d.str(); err != nil {
		return fieldErr(rec, "offer", off, err)
	}
	off = d.p
	if ev.HasSourceEventID, err = d.branch(); err != nil {
		return fieldErr(rec, "source_event_id", off, err)
	}
	if ev.HasSourceEventID {
		if ev.SourceEventID, err = d.str(); err != nil {
			return fieldErr(rec, "source_event_id", off, err)
		}
	}
	off = d.p
	ch, err := d.enum(len(channelSymbols))
	if err != nil {
		return fieldErr(rec, "channel", off, err)
	}
	ev.Channel = engine.Channel(ch)
	off = d.p
	st, err := d.enum(len(responseSymbols))
	if err != nil {
		return fieldErr(rec, "status", off, err)
	}
	ev.ResponseStatus = engine.ResponseStatus(st)
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	off = d.p
	if ev.ValueCents, err = d.long(); err != nil {
		return fieldErr(rec, "value_cents", off, err)
	}
	return nil
}

func decodeContractEvent(d *dec, ev *engine.Event) error {
	const rec = "ContractEvent"
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
	typ, err := d.enum(len(contractSymbols))
	if err != nil {
		return fieldErr(rec, "type", off, err)
	}
	ev.ContractType = engine.ContractType(typ)
	off = d.p
	if ev.HasPlan, err = d.branch(); err != nil {
		return fieldErr(rec, "plan", off, err)
	}
	if ev.HasPlan {
		if ev.Plan, err = d.str(); err != nil {
			return fieldErr(rec, "plan", off, err)
		}
	}
	off = d.p
	if ev.MRRCents, err = d.long(); err != nil {
		return fieldErr(rec, "mrr_cents", off, err)
	}
	off = d.p
	if ev.EventTime, err = d.long(); err != nil {
		return fieldErr(rec, "event_time", off, err)
	}
	return nil
}

// enum reads an enum index below n.
func (d *dec) enum(n int) (int32, error) {
	v, err := d.int()
	if err != nil {
		return 0, err
	}
	if v < 0 || int(v) >= n {
		return 0, errEnum
	}
	return v, nil
}

func appendOptString(dst []byte, has bool, s string) []byte {
	if !has {
		return append(dst, 0)
	}
	return appendString(append(dst, 2), s)
}
