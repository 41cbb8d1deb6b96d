package schemas

import (
	"context"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

func TestOutcomeInputsRoundTrip(t *testing.T) {
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	evs := []engine.Event{
		{Kind: engine.KindOfferResponse, EventID: "r1", SIREN: "732829320", Offer: engine.OfferSDWanUpsell, SourceEventID: "732829320-3",
			HasSourceEventID: true, Channel: engine.ChannelTelesales, ResponseStatus: engine.ResponseAccepted, EventTime: 1_700_000_000_000, ValueCents: 1234},
		{Kind: engine.KindContractEvent, EventID: "c1", SIREN: "732829320", ContractType: engine.ContractPlanChange, Plan: "SD_WAN", HasPlan: true,
			MRRCents: 99_00, EventTime: 1_700_000_000_001},
		{Kind: engine.KindContractEvent, EventID: "c2", SIREN: "732829320", ContractType: engine.ContractTermination, EventTime: 1_700_000_000_002},
	}
	for _, ev := range evs {
		b, err := AppendEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		var got engine.Event
		if err := c.Decode(context.Background(), ev.Kind, b, &got); err != nil {
			t.Fatal(err)
		}
		if got != ev {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, ev)
		}
		// goavro agrees with the hand-written encoder.
		if _, _, err := DecodeRecord(b); err != nil {
			t.Fatal(err)
		}
	}
	var ev engine.Event
	bad := AppendHeader(nil, IDContractEvent)
	bad = appendString(appendString(bad, "c3"), "732829320")
	bad = appendInt(bad, 7) // no such ContractEventType
	if err := c.Decode(context.Background(), engine.KindContractEvent, bad, &ev); err == nil {
		t.Fatal("an unknown enum symbol decoded")
	}
}

func TestOutcomeOutputsMatchTheirSchemas(t *testing.T) {
	o := engine.Outcome{EventID: "732829320-SD_WAN_UPSELL-1", SIREN: "732829320", Offer: engine.OfferSDWanUpsell, Control: true,
		EligibleAt: 1, ClosedAt: 2, Converted: true, MRRDeltaCents: -5, RulesVersion: "default-1", HoldoutID: "default"}
	m, id, err := DecodeRecord(AppendOfferOutcome(nil, &o))
	if err != nil || id != IDOfferOutcome || m["group"] != GroupControl || m["mrr_delta_cents"] != int64(-5) {
		t.Fatalf("offer_outcome: %v %d %v", m, id, err)
	}
	rel := 0.5
	r := UpliftRow{Day: "2026-03-01", Offer: engine.OfferSDWanUpsell, TreatmentEligible: 10, ControlEligible: 2, RelativeLift: &rel, ControlShare: 0.2}
	m, id, err = DecodeRecord(AppendUplift(nil, &r))
	if err != nil || id != IDUplift || m["control_share"] != 0.2 || m["treatment_eligible"] != int64(10) {
		t.Fatalf("uplift: %v %d %v", m, id, err)
	}
	d := engine.Decision{SIREN: "732829320", Segments: engine.MultiSite, Offers: []string{engine.OfferMultisiteVPN}, RulesVersion: "v"}
	d.Metrics.HasWorkforce, d.Metrics.Workforce = true, 12
	m, id, err = DecodeRecord(AppendSirenDaily(nil, &d, 1_700_000_000_000))
	if err != nil || id != IDSirenDaily || m["day"] != "2023-11-14" || m["control_group"] != false {
		t.Fatalf("siren_daily: %v %d %v", m, id, err)
	}
}
