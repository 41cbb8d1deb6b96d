package engine

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Outcomes (spec §8): each time a SIREN becomes eligible for an offer (an
// offer enters its offer set), an eligibility is kept in its state (header
// extension tag 4) with the SIREN's holdout group, the start time and the
// rules version. Contract events attribute to the open eligibilities:
// a move to the offer's product (Rules.Product) within the conversion
// window converts, a TERMINATION within the churn window churns. Every
// eligible SIREN counts, contacted or not (intention-to-treat): offer
// responses are recorded, never counted. An eligibility closes at the
// first day change at or after start + the longer window + the allowed
// lateness (so a contract event still within the lateness is attributed),
// and becomes an Outcome. Everything is event time: a replay closes the
// same eligibilities at the same stream times.

// Outcome windows (spec §8).
const (
	DefaultConversionWindowMs = 90 * DayMs
	DefaultChurnWindowMs      = 180 * DayMs
)

// MaxEligibilities bounds the open eligibilities of a SIREN: one per offer
// and a few re-entries. A SIREN at the bound gets no new eligibility until
// one closes (counted as BoundEligibilities).
const MaxEligibilities = 16

// Outcome is a closed eligibility (schemas/offer_outcome.avsc).
type Outcome struct {
	EventID       string // "{siren}-{offer}-{eligible_at ms}"
	SIREN         string
	Offer         string
	Control       bool
	EligibleAt    int64 // ms
	ClosedAt      int64 // ms: EligibleAt + the longer window
	Converted     bool
	Churned       bool
	MRRDeltaCents int64
	RulesVersion  string
	HoldoutID     string
	// Contacted: an offer response PRESENTED or ACCEPTED it (informative:
	// uplift counts every eligibility).
	Contacted bool
}

// eligibility is one open eligibility of a SIREN.
type eligibility struct {
	offer     uint8 // index into offerNames
	flags     uint8 // eligControl | eligConverted | eligChurned | eligContacted
	start     int64 // ms
	rules     string
	holdout   string
	mrrAt     int64 // the SIREN's last known mrr at start
	mrrDelta  int64 // mrr after the conversion - mrrAt
	convertAt int64 // ms, when eligConverted
}

const (
	eligControl = 1 << iota
	eligConverted
	eligChurned
	eligContacted
)

// extEligibility: the SIREN's last known mrr and its open eligibilities:
// mrr(v) n(uv) n × {offer(1) flags(1) start(v) rules(str) holdout(str)
// mrr_at(v) mrr_delta(v) convert_at(v)}, in start order.
const extEligibility = 4

// outcomeState is the part of a State the outcomes need (header extension).
type outcomeState struct {
	ho   holdoutRec
	elig []eligibility
	mrr  int64 // last mrr_cents of a contract event
	// cplan is the plan of the SIREN's latest PLAN_CHANGE (by event time,
	// cplanAt ms); "" when none (header extension tag 5, extContractPlan).
	cplan   string
	cplanAt int64
}

func (t *Task) windows() (conv, churn int64) {
	return t.cfg.ConversionWindowMs, t.cfg.ChurnWindowMs
}

// noteEligible opens an eligibility for each offer of added, at the stream
// time, unless one is open for it already (a SIREN that leaves and
// re-enters an offer within its window is one eligibility).
func (t *Task) noteEligible(st *State, added offerSet) {
	if added == 0 || t.streamTime < t.cfg.Holdout.StartMs {
		return
	}
	t.assignHoldout(st)
	for i := range offerNames {
		if added&(1<<i) == 0 || st.openFor(uint8(i)) {
			continue
		}
		if len(st.elig) >= MaxEligibilities {
			t.bounds.add(BoundEligibilities, st.SIREN, 1)
			continue
		}
		var flags uint8
		if st.ho.control {
			flags |= eligControl
		}
		st.elig = append(st.elig, eligibility{
			offer: uint8(i), flags: flags, start: t.streamTime, rules: t.rules.Version,
			holdout: st.ho.id, mrrAt: st.mrr,
		})
	}
}

func (s *State) openFor(offer uint8) bool {
	for i := range s.elig {
		if s.elig[i].offer == offer {
			return true
		}
	}
	return false
}

// applyOutcomeEvent applies an offer response or a contract event.
func (t *Task) applyOutcomeEvent(st *State, ev *Event) {
	conv, churn := t.windows()
	switch ev.Kind {
	case KindOfferResponse:
		if ev.ResponseStatus != ResponsePresented && ev.ResponseStatus != ResponseAccepted {
			return
		}
		for i := range st.elig {
			e := &st.elig[i]
			if offerNames[e.offer] == ev.Offer && ev.EventTime >= e.start {
				e.flags |= eligContacted
			}
		}
	case KindContractEvent:
		for i := range st.elig {
			e := &st.elig[i]
			if ev.EventTime < e.start {
				continue // before the eligibility: not its outcome
			}
			if ev.ContractType == ContractTermination {
				if ev.EventTime < e.start+churn {
					e.flags |= eligChurned
				}
				continue
			}
			if e.flags&eligConverted != 0 || !ev.HasPlan || ev.EventTime >= e.start+conv {
				continue
			}
			if p, ok := t.rules.Product(offerNames[e.offer]); ok && p == ev.Plan {
				e.flags |= eligConverted
				e.convertAt = ev.EventTime
				e.mrrDelta = ev.MRRCents - e.mrrAt
			}
		}
		st.mrr = ev.MRRCents
		st.applyPlanChange(ev)
	}
}

// applyPlanChange records the plan of a PLAN_CHANGE unless a later one is
// recorded: the SIREN now has that product, so the offers selling it stop
// (Task.offers) and the evaluation that follows the event emits the offer
// change. The plan in force is the latest by event time of the profile's
// and the contract's (plan): determinism does not depend on arrival order
// beyond the merge's.
func (s *State) applyPlanChange(ev *Event) {
	if ev.ContractType != ContractPlanChange || !ev.HasPlan || ev.Plan == "" {
		return
	}
	if s.cplan == "" || ev.EventTime >= s.cplanAt {
		if s.cplan != ev.Plan {
			s.cplan = strings.Clone(ev.Plan)
		}
		s.cplanAt = ev.EventTime
	}
}

// currentPlan is the SIREN's plan in force: its latest PLAN_CHANGE's, unless a
// profile is newer (at equal times the contract event wins: the merge
// applies profiles first).
func (s *State) currentPlan() string {
	if s.cplan != "" && (!s.hasProfile || s.cplanAt >= s.profileTime) {
		return s.cplan
	}
	return s.plan
}

// extContractPlan: the plan of the latest PLAN_CHANGE and its event time:
// at(v) plan(str).
const extContractPlan = 5

func appendContractPlanExt(dst []byte, o *outcomeState) []byte {
	if o.cplan == "" {
		return dst
	}
	var buf [binary.MaxVarintLen64]byte
	at := binary.AppendVarint(buf[:0], o.cplanAt)
	dst = binary.AppendUvarint(dst, extContractPlan)
	dst = binary.AppendUvarint(dst, uint64(len(at)+uvarintLen(uint64(len(o.cplan)))+len(o.cplan)))
	dst = append(dst, at...)
	return appendStr(dst, o.cplan)
}

func readContractPlanExt(p []byte, o *outcomeState) error {
	r := reader{b: p}
	o.cplanAt = r.varint()
	o.cplan = r.str()
	if r.err == nil && (o.cplan == "" || len(r.b) != 0) {
		return fmt.Errorf("bad contract plan %x", p)
	}
	return r.err
}

// CloseOutcomes appends to dst the eligibilities of st whose windows
// closed at the stream time (start + the longer window + the allowed
// lateness ≤ stream time), in start then offer order, and removes them from
// st. Call it on every state at each day change (pass 2, beside Evaluate);
// when it returns more than it was given, st's header changed without a new
// decision: the caller writes the whole state (not its header alone).
func (t *Task) CloseOutcomes(st *State, dst []Outcome) []Outcome {
	if len(st.elig) == 0 {
		return dst
	}
	conv, churn := t.windows()
	long := max(conv, churn)
	kept := st.elig[:0]
	for _, e := range st.elig {
		if e.start+long+t.cfg.AllowedLatenessMs > t.streamTime {
			kept = append(kept, e)
			continue
		}
		o := Outcome{
			SIREN: st.SIREN, Offer: offerNames[e.offer], Control: e.flags&eligControl != 0,
			EligibleAt: e.start, ClosedAt: e.start + long,
			Converted: e.flags&eligConverted != 0, Churned: e.flags&eligChurned != 0,
			RulesVersion: e.rules, HoldoutID: e.holdout, Contacted: e.flags&eligContacted != 0,
		}
		if o.Converted {
			o.MRRDeltaCents = e.mrrDelta
		}
		o.EventID = st.SIREN + "-" + o.Offer + "-" + strconv.FormatInt(e.start, 10)
		dst = append(dst, o)
	}
	clear(st.elig[len(kept):])
	st.elig = kept
	return dst
}

// OpenEligibilities returns the number of open eligibilities of st.
func (s *State) OpenEligibilities() int { return len(s.elig) }

func appendEligibilityExt(dst []byte, o *outcomeState) []byte {
	if len(o.elig) == 0 && o.mrr == 0 {
		return dst
	}
	var buf [512]byte
	p := binary.AppendVarint(buf[:0], o.mrr)
	p = binary.AppendUvarint(p, uint64(len(o.elig)))
	for i := range o.elig {
		e := &o.elig[i]
		p = append(p, e.offer, e.flags)
		p = binary.AppendVarint(p, e.start)
		p = appendStr(p, e.rules)
		p = appendStr(p, e.holdout)
		p = binary.AppendVarint(p, e.mrrAt)
		p = binary.AppendVarint(p, e.mrrDelta)
		p = binary.AppendVarint(p, e.convertAt)
	}
	dst = binary.AppendUvarint(dst, extEligibility)
	dst = binary.AppendUvarint(dst, uint64(len(p)))
	return append(dst, p...)
}

func readEligibilityExt(p []byte, o *outcomeState) error {
	r := reader{b: p}
	o.mrr = r.varint()
	n := r.count(5)
	if r.err == nil && n > MaxEligibilities {
		return fmt.Errorf("%d eligibilities (max %d)", n, MaxEligibilities)
	}
	o.elig = make([]eligibility, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		var e eligibility
		e.offer, e.flags = r.byte(), r.byte()
		e.start = r.varint()
		e.rules = r.str()
		e.holdout = r.str()
		e.mrrAt, e.mrrDelta, e.convertAt = r.varint(), r.varint(), r.varint()
		if r.err == nil && (int(e.offer) >= len(offerNames) || e.flags >= 1<<4) {
			return fmt.Errorf("bad eligibility %d", i)
		}
		o.elig = append(o.elig, e)
	}
	if r.err == nil && len(r.b) != 0 {
		return fmt.Errorf("%d trailing bytes after eligibilities", len(r.b))
	}
	return r.err
}

// checkOutcome validates an offer response or a contract event (Check).
func checkOutcome(ev *Event) error {
	switch ev.Kind {
	case KindOfferResponse:
		if ev.Offer == "" {
			return fmt.Errorf("%w: empty offer", ErrInvalidEvent)
		}
		if ev.Channel > ChannelBill || ev.ResponseStatus > ResponseWithheld {
			return fmt.Errorf("%w: unknown channel %d or status %d", ErrInvalidEvent, ev.Channel, ev.ResponseStatus)
		}
		if ev.ValueCents < 0 || ev.ValueCents > maxAmountCents {
			return fmt.Errorf("%w: value_cents %d out of range", ErrInvalidEvent, ev.ValueCents)
		}
	case KindContractEvent:
		if ev.ContractType > ContractRenewal {
			return fmt.Errorf("%w: unknown contract event type %d", ErrInvalidEvent, ev.ContractType)
		}
		if ev.MRRCents < 0 || ev.MRRCents > maxAmountCents {
			return fmt.Errorf("%w: mrr_cents %d out of range", ErrInvalidEvent, ev.MRRCents)
		}
	}
	return nil
}
