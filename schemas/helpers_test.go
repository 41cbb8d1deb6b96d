package schemas

import (
	"flag"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/sirenstream/sirenstream/engine"
)

var update = flag.Bool("update", false, "rewrite testdata golden files and fuzz seeds")

// goavroCodec parses the embedded schema with the fixed id.
func goavroCodec(t testing.TB, id int) *goavro.Codec {
	t.Helper()
	s, ok := Schema(id)
	if !ok {
		t.Fatalf("no embedded schema %d", id)
	}
	c, err := goavro.NewCodec(s)
	if err != nil {
		t.Fatalf("goavro.NewCodec(%d): %v", id, err)
	}
	return c
}

func newCodec(t testing.TB, cfg Config) *Codec {
	t.Helper()
	c, err := NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	t0 = int64(1767225600123) // 2026-01-01T00:00:00.123Z
	t1 = int64(1767229200456)
)

// sampleEvents covers every kind with null and non-null unions and values
// that need multi-byte and negative varints.
func sampleEvents() map[string]engine.Event {
	return map[string]engine.Event{
		"usage": {Kind: engine.KindUsage, EventID: "u-1", SIREN: "732829320", SiteID: "site-7", PostalCode: "75011",
			EventTime: t0, BytesUp: 123456789012, BytesDown: 9, ActiveSIMs: 42, HasActiveSIMs: true},
		"usage_null": {Kind: engine.KindUsage, EventID: "u-2", SIREN: "732829320", SiteID: "", PostalCode: "69001",
			EventTime: t1, BytesUp: 0, BytesDown: -1},
		"usage_extremes": {Kind: engine.KindUsage, EventID: "é", SIREN: "x", SiteID: "s", PostalCode: "p",
			EventTime: -1, BytesUp: 1<<63 - 1, BytesDown: -1 << 63, ActiveSIMs: -1 << 31, HasActiveSIMs: true},
		"outage_started": {Kind: engine.KindOutage, EventID: "o-1", OutageID: "OUT-9", SIREN: "732829320", SiteID: "site-7",
			PostalCode: "75011", Status: engine.OutageStarted, EventTime: t0},
		"outage_resolved": {Kind: engine.KindOutage, EventID: "o-2", OutageID: "OUT-9", SIREN: "732829320", SiteID: "site-7",
			PostalCode: "75011", Status: engine.OutageResolved, EventTime: t1, StartedAt: t0, HasStartedAt: true},
		"claim": {Kind: engine.KindClaim, EventID: "c-1", ClaimID: "CL-1", SIREN: "732829320", OutageID: "OUT-9",
			HasOutageID: true, EventTime: t1, AmountCents: 150000},
		"claim_null": {Kind: engine.KindClaim, EventID: "c-2", ClaimID: "CL-2", SIREN: "732829320", EventTime: t1, AmountCents: -5},
		"profile": {Kind: engine.KindProfile, EventID: "p-1", SIREN: "732829320", EventTime: t0, Workforce: 12,
			HasWorkforce: true, Plan: "SD_WAN"},
		"profile_null": {Kind: engine.KindProfile, EventID: "p-2", SIREN: "732829320", EventTime: t0, Plan: "BASIC_SIM"},
	}
}

func ts(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// goavroNative is the goavro native form of an event (what a Java/Python
// producer would write).
func goavroNative(ev *engine.Event) map[string]any {
	var m map[string]any
	switch ev.Kind {
	case engine.KindUsage:
		m = map[string]any{"event_id": ev.EventID, "siren": ev.SIREN, "site_id": ev.SiteID, "postal_code": ev.PostalCode,
			"event_time": ts(ev.EventTime), "bytes_up": ev.BytesUp, "bytes_down": ev.BytesDown, "active_sims": nil}
		if ev.HasActiveSIMs {
			m["active_sims"] = goavro.Union("int", ev.ActiveSIMs)
		}
	case engine.KindOutage:
		m = map[string]any{"event_id": ev.EventID, "outage_id": ev.OutageID, "siren": ev.SIREN, "site_id": ev.SiteID,
			"postal_code": ev.PostalCode, "status": statusSymbols[ev.Status], "event_time": ts(ev.EventTime), "started_at": nil}
		if ev.HasStartedAt {
			m["started_at"] = goavro.Union("long.timestamp-millis", ts(ev.StartedAt))
		}
	case engine.KindClaim:
		m = map[string]any{"event_id": ev.EventID, "claim_id": ev.ClaimID, "siren": ev.SIREN, "outage_id": nil,
			"event_time": ts(ev.EventTime), "amount_cents": ev.AmountCents}
		if ev.HasOutageID {
			m["outage_id"] = goavro.Union("string", ev.OutageID)
		}
	case engine.KindProfile:
		m = map[string]any{"event_id": ev.EventID, "siren": ev.SIREN, "event_time": ts(ev.EventTime), "workforce": nil, "plan": ev.Plan}
		if ev.HasWorkforce {
			m["workforce"] = goavro.Union("int", ev.Workforce)
		}
	}
	return m
}

// goavroFrame encodes native with goavro and the Confluent header.
func goavroFrame(t testing.TB, c *goavro.Codec, id int, native any) []byte {
	t.Helper()
	b, err := c.BinaryFromNative(AppendHeader(nil, id), native)
	if err != nil {
		t.Fatalf("goavro encode: %v", err)
	}
	return b
}

func sampleDecision() *engine.Decision {
	return &engine.Decision{
		EventID:   "732829320-3",
		SIREN:     "732829320",
		Seq:       3,
		EventTime: t1,
		Segments:  engine.ChurnRisk | engine.MultiSite | engine.SLASensitive,
		Previous:  engine.MultiSite | engine.DataHungry,
		Added:     engine.ChurnRisk | engine.SLASensitive,
		Removed:   engine.DataHungry,
		Metrics: engine.Metrics{
			Traffic30dBytes: 5_000_000_000, TrafficPrev30dBytes: 4_000_000_000,
			TrafficVelocity: 0.25, HasTrafficVelocity: true,
			DigitalIntensity: 416.5, HasDigitalIntensity: true, IntensityBasis: "workforce",
			IntensityPercentile: 0.91, HasIntensityPercentile: true,
			Workforce: 12, HasWorkforce: true,
			Outages90d: 3, OpenOutages: 1, RecoveryExposureHours90d: 13.5, MaxRecoveryHours90d: 9.25,
			Claims365d: 2, ClaimAmount365dCents: 300000, DistinctPostalCodes90d: 2,
			ClaimsPerOutage365d: 0.5, HasClaimsPerOutage365d: true, ClaimHoursRatio365d: 1.25, HasClaimHoursRatio365d: true,
		},
		Reasons: []engine.Reason{
			{Segment: "CHURN_RISK", Metric: "claims_365d", Value: 2, Threshold: 1},
			{Segment: "MULTI_SITE", Metric: "distinct_postal_codes_90d", Value: 2, Threshold: 2},
		},
		Offers:       []string{"PREMIUM_SLA", "SD_WAN"},
		ControlGroup: true,
		RulesVersion: "2026-01-01.1",
		OffersAdded:  []string{"SD_WAN"},
		Trigger:      engine.TriggerInput,
		TriggerTopic: "claims",
	}
}

// sampleDecisionNulls has every union null and every array empty.
func sampleDecisionNulls() *engine.Decision {
	return &engine.Decision{EventID: "732829320-1", SIREN: "732829320", Seq: 1, EventTime: t0, RulesVersion: "v1"}
}
