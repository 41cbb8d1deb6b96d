package processor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// The outcome outputs of a day change (spec §8): for every SIREN of the
// partition, in the sweep's SIREN order, the eligibilities whose windows
// closed (offer-outcomes, and the same outcome keyed by offer on the uplift
// repartition topic) and the SIREN's daily snapshot (siren-daily). They go
// into the open batch like the sweep's segment changes, so the commit
// protocol covers them: a crash re-runs the day change and re-emits the
// same bytes.

// outcomeOutputs holds a task's reused buffers.
type outcomeOutputs struct {
	closed []engine.Outcome
	// view is the daily snapshot of the SIREN being swept (filled by
	// Task.EvaluateDaily).
	view engine.Decision
	// day and date: the stream day whose Date the last siren-daily record
	// carried.
	day  int32
	date string
	// slab holds the keys and values of siren-daily records (slab).
	slab slab
}

// slab hands out the bytes of output records from large chunks instead of an
// allocation or two each: a record is appended after the previous one, and
// the bytes handed out are never written again (each record is a full slice
// expression: an append to it cannot reach its neighbour). A chunk lives as
// long as one of its records does (until its batch is written).
type slab struct{ buf []byte }

const (
	slabChunk = 64 << 10
	// slabRoom is the room a record needs before it starts in a chunk: a
	// larger record still fits (append moves it to a larger array of its
	// own), only less cheaply.
	slabRoom = 1 << 10
)

// start returns the free tail of the chunk for a record's appends; done(b)
// then takes the record (b is what the appends returned).
func (s *slab) start() []byte {
	if cap(s.buf)-len(s.buf) < slabRoom {
		s.buf = make([]byte, 0, slabChunk)
	}
	return s.buf[len(s.buf):]
}

func (s *slab) done(b []byte) []byte {
	if cap(b) == cap(s.buf)-len(s.buf) { // appended in place: keep the rest
		s.buf = s.buf[:len(s.buf)+len(b)]
	} // else the record outgrew the tail: it has its own array
	return b[:len(b):len(b)]
}

// dayOutputs emits st's closed outcomes and daily snapshot; a state whose
// eligibilities closed is written whole (its header changed without a new
// decision: a header write would not win over the stored state).
//
// Before a replay's EmitFrom (emitfrom.go) the offer outcomes and the daily
// snapshot are withheld like segment changes (their time is the sweep's
// stream time, as a day change's segment changes); the repartition records
// are not: the uplift table is a fold of every outcome, and a replay with
// EmitFrom must measure what a full replay measures.
func (t *task) dayOutputs(siren string, st *engine.State) {
	// With siren-daily on, o.view holds st's daily snapshot: evaluateDay's
	// EvaluateDaily filled it.
	rt := t.opt.routes
	o := &t.outcomes
	o.closed = t.eng.CloseOutcomes(st, o.closed[:0])
	if len(o.closed) > 0 {
		t.cache.PutTransient(siren, st)
	}
	withhold := t.opt.emitFromMs != 0 && t.eng.StreamTime() < t.opt.emitFromMs
	if withhold {
		n := int64(len(o.closed))
		if rt.daily != "" {
			n++
		}
		t.progress.update(func(p *TaskProgress) { p.WithheldOutputs += n })
	}
	for i := range o.closed {
		oc := &o.closed[i]
		if rt.outcomes != "" && !withhold {
			t.com.add(kafka.Message{Topic: rt.outcomes, Key: []byte(oc.SIREN), Value: framed(schemas.AppendOfferOutcome(nil, oc), rt.outcomesID)})
		}
		if rt.repartition != "" {
			t.com.add(kafka.Message{Topic: rt.repartition, Key: []byte(oc.Offer),
				Value: encodeRepartition(t.partition, t.eng.StreamDay(), i, oc)})
		}
		t.cfg.Metrics.Outcome(t.partition, oc.Offer, oc.Control, oc.Converted)
	}
	if rt.daily != "" && !withhold {
		if d := t.eng.StreamDay(); d != o.day || o.date == "" {
			o.day, o.date = d, schemas.Date(int64(d)*engine.DayMs)
		}
		key := o.slab.done(append(o.slab.start(), siren...))
		value := o.slab.done(schemas.AppendSirenDailyOn(o.slab.start(), &o.view, o.date))
		t.com.add(kafka.Message{Topic: rt.daily, Key: key, Value: framed(value, rt.dailyID)})
	}
}

// repartitionRecord is the value of an uplift repartition record: an
// outcome and its position in its source task's output (source partition,
// stream day of the sweep, SIREN, index among the SIREN's outcomes of that
// sweep). Positions grow strictly per source partition, which is what lets
// the aggregator drop the records a restarted task emits again (aggregator.go).
// Internal topic: JSON, read only by this build.
type repartitionRecord struct {
	Source    int32  `json:"src"`
	Day       int32  `json:"day"`
	SIREN     string `json:"siren"`
	Index     int    `json:"i"`
	Offer     string `json:"offer"`
	Control   bool   `json:"control"`
	Converted bool   `json:"converted"`
	Churned   bool   `json:"churned"`
	MRRDelta  int64  `json:"mrr_delta_cents"`
	Rules     string `json:"rules_version"`
	Holdout   string `json:"holdout_id"`
	ClosedAt  int64  `json:"closed_at"`
}

func encodeRepartition(src int32, day int32, i int, o *engine.Outcome) []byte {
	b, _ := json.Marshal(repartitionRecord{Source: src, Day: day, SIREN: o.SIREN, Index: i, Offer: o.Offer,
		Control: o.Control, Converted: o.Converted, Churned: o.Churned, MRRDelta: o.MRRDeltaCents,
		Rules: o.RulesVersion, Holdout: o.HoldoutID, ClosedAt: o.ClosedAt}) // cannot fail: plain fields
	return b
}

// after reports whether r's position is after p's (same source).
func (r *repartitionRecord) after(p *repartitionRecord) bool {
	if r.Day != p.Day {
		return r.Day > p.Day
	}
	if r.SIREN != p.SIREN {
		return r.SIREN > p.SIREN
	}
	return r.Index > p.Index
}

func (r *repartitionRecord) String() string {
	return strconv.Itoa(int(r.Source)) + "/" + strconv.Itoa(int(r.Day)) + "/" + r.SIREN + "/" + strconv.Itoa(r.Index)
}

// ErrHoldoutReshuffle: the holdout configuration would move SIRENs between
// the control and treatment groups under an id the state directory already
// recorded with another salt or share (engine.CheckHoldout).
var ErrHoldoutReshuffle = errors.New("holdout reshuffle refused")

// claimHoldout refuses a holdout whose id the store recorded with another
// salt or share, and records it otherwise (before any SIREN is assigned).
func claimHoldout(st *state.Store, h engine.Holdout) error {
	h = h.WithDefaults()
	stored, err := st.Holdout(h.ID)
	if err != nil {
		return err
	}
	if err := engine.CheckHoldout(h.ID, stored, h); stored != "" && err != nil {
		return fmt.Errorf("%w: %w", ErrHoldoutReshuffle, err)
	}
	if stored == h.Fingerprint() {
		return nil
	}
	return st.SetHoldout(h.ID, h.Fingerprint())
}
