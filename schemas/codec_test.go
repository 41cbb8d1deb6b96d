package schemas

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sirenstream/sirenstream/engine"
)

func TestEmbeddedSchemasParseWithGoavro(t *testing.T) {
	for id, name := range map[int]string{IDUsage: "sirenstream.Usage", IDOutage: "sirenstream.Outage", IDClaim: "sirenstream.Claim",
		IDProfile: "sirenstream.Profile", IDSegmentChange: "sirenstream.SegmentChange",
		IDOfferResponse: "sirenstream.OfferResponse", IDContractEvent: "sirenstream.ContractEvent", IDOfferOutcome: "sirenstream.OfferOutcome",
		IDUplift: "sirenstream.Uplift", IDSirenDaily: "sirenstream.SirenDaily", IDTick: "sirenstream.ClockTick"} {
		c := goavroCodec(t, id)
		if !strings.Contains(c.CanonicalSchema(), `"name":"`+name+`"`) {
			t.Errorf("id %d: canonical form %s lacks record %s", id, c.CanonicalSchema(), name)
		}
	}
	if _, ok := Schema(8); ok {
		t.Error("Schema(8) reported a schema")
	}
}

// The hand-written resolution table must list the .avsc fields in order.
func TestReaderFieldsMatchAvsc(t *testing.T) {
	for k := engine.Kind(0); k < numKinds; k++ {
		s, _ := Schema(IDForKind(k))
		var rec struct {
			Fields []struct {
				Name    string          `json:"name"`
				Type    json.RawMessage `json:"type"`
				Default json.RawMessage `json:"default"`
			} `json:"fields"`
		}
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Fields) != len(readerFields[k]) {
			t.Fatalf("%s: avsc has %d fields, table %d", kindName(k), len(rec.Fields), len(readerFields[k]))
		}
		for i, f := range rec.Fields {
			rf := readerFields[k][i]
			if f.Name != rf.name {
				t.Errorf("%s field %d: avsc %q, table %q", kindName(k), i, f.Name, rf.name)
			}
			hasDefault := string(f.Default) == "null" || (rf.typ == rLong0 && string(f.Default) == "0" && string(f.Type) == `"long"`)
			if hasDefault != rf.typ.optional() || (hasDefault && rf.typ != rLong0 && !strings.HasPrefix(string(f.Type), `["null"`)) {
				t.Errorf("%s.%s: default %s type %s, table says %s", kindName(k), f.Name, f.Default, f.Type, rf.typ)
			}
		}
	}
}

func TestKindIDMapping(t *testing.T) {
	for k := engine.Kind(0); k < numKinds; k++ {
		id := IDForKind(k)
		got, ok := KindForID(id)
		if !ok || got != k {
			t.Errorf("KindForID(IDForKind(%d)=%d) = %d, %v", k, id, got, ok)
		}
	}
	if _, ok := KindForID(IDSegmentChange); ok {
		t.Error("KindForID(101) is not an input kind")
	}
	if IDForKind(9) != 0 {
		t.Error("IDForKind(9) != 0")
	}
}

// goavro encodes (as any other producer would) → our fast path decodes.
func TestFastDecodeReadsGoavroBytes(t *testing.T) {
	c := newCodec(t, Config{})
	for name, want := range sampleEvents() {
		t.Run(name, func(t *testing.T) {
			id := IDForKind(want.Kind)
			b := goavroFrame(t, goavroCodec(t, id), id, goavroNative(&want))
			var got engine.Event
			if err := c.Decode(context.Background(), want.Kind, b, &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != want {
				t.Fatalf("Decode:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// Our encoder writes exactly goavro's bytes, and goavro reads ours back.
func TestEncodeEventMatchesGoavro(t *testing.T) {
	c := newCodec(t, Config{})
	for name, ev := range sampleEvents() {
		t.Run(name, func(t *testing.T) {
			id := IDForKind(ev.Kind)
			gc := goavroCodec(t, id)
			ours, err := c.EncodeEvent(nil, &ev)
			if err != nil {
				t.Fatal(err)
			}
			theirs := goavroFrame(t, gc, id, goavroNative(&ev))
			if !bytes.Equal(ours, theirs) {
				t.Fatalf("bytes differ:\nours   %x\ngoavro %x", ours, theirs)
			}
			native, rest, err := gc.NativeFromBinary(ours[headerLen:])
			if err != nil || len(rest) != 0 {
				t.Fatalf("goavro decode of our bytes: %v, %d bytes left", err, len(rest))
			}
			// Resolve goavro's natives with the slow path's converter.
			e := &entry{id: id, codec: gc}
			e.plans[ev.Kind] = makePlan(id, ev.Kind, mustWriterFields(t, id))
			var got engine.Event
			if err := e.decodeSlow(ev.Kind, ours[headerLen:], &got); err != nil {
				t.Fatal(err)
			}
			if got != ev {
				t.Fatalf("goavro decoded %v →\n got %+v\nwant %+v", native, got, ev)
			}
		})
	}
}

func mustWriterFields(t testing.TB, id int) map[string]wtype {
	t.Helper()
	s, _ := Schema(id)
	w, err := parseWriterRecord(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEncodeEventRejectsBadInput(t *testing.T) {
	if _, err := AppendEvent(nil, &engine.Event{Kind: 7}); err == nil {
		t.Error("unknown kind encoded")
	}
	dst := []byte("keep")
	out, err := AppendEvent(dst, &engine.Event{Kind: engine.KindOutage, Status: 2})
	if err == nil || string(out) != "keep" {
		t.Errorf("invalid status: err %v, dst %q", err, out)
	}
}

func segmentChangeNative(d *engine.Decision) map[string]any {
	strs := func(ss []string) []any {
		out := []any{}
		for _, s := range ss {
			out = append(out, s)
		}
		return out
	}
	optD := func(has bool, v float64) any {
		if !has {
			return nil
		}
		return goavro.Union("double", v)
	}
	m := d.Metrics
	metrics := map[string]any{
		"traffic_30d_bytes": m.Traffic30dBytes, "traffic_prev_30d_bytes": m.TrafficPrev30dBytes,
		"traffic_velocity": optD(m.HasTrafficVelocity, m.TrafficVelocity), "digital_intensity": optD(m.HasDigitalIntensity, m.DigitalIntensity),
		"intensity_basis": nil, "intensity_percentile": optD(m.HasIntensityPercentile, m.IntensityPercentile), "workforce": nil,
		"outages_90d": m.Outages90d, "open_outages": m.OpenOutages, "recovery_exposure_hours_90d": m.RecoveryExposureHours90d,
		"max_recovery_hours_90d": m.MaxRecoveryHours90d, "claims_365d": m.Claims365d, "claim_amount_365d_cents": m.ClaimAmount365dCents,
		"distinct_postal_codes_90d": m.DistinctPostalCodes90d,
		"claims_per_outage_365d":    optD(m.HasClaimsPerOutage365d, m.ClaimsPerOutage365d),
		"claim_hours_ratio_365d":    optD(m.HasClaimHoursRatio365d, m.ClaimHoursRatio365d),
	}
	if m.IntensityBasis != "" {
		metrics["intensity_basis"] = goavro.Union("string", m.IntensityBasis)
	}
	if m.HasWorkforce {
		metrics["workforce"] = goavro.Union("int", m.Workforce)
	}
	reasons := []any{}
	for _, r := range d.Reasons {
		reasons = append(reasons, map[string]any{"segment": r.Segment, "metric": r.Metric, "value": r.Value, "threshold": r.Threshold})
	}
	var triggerTopic any
	if d.TriggerTopic != "" {
		triggerTopic = goavro.Union("string", d.TriggerTopic)
	}
	return map[string]any{
		"event_id": d.EventID, "siren": d.SIREN, "seq": d.Seq, "event_time": ts(d.EventTime),
		"segments": strs(SegmentNames(d.Segments)), "previous_segments": strs(SegmentNames(d.Previous)),
		"added": strs(SegmentNames(d.Added)), "removed": strs(SegmentNames(d.Removed)),
		"metrics": metrics, "reasons": reasons, "offers": strs(d.Offers), "control_group": d.ControlGroup,
		"rules_version": d.RulesVersion,
		"offers_added":  strs(d.OffersAdded), "offers_removed": strs(d.OffersRemoved), "trigger": d.Trigger,
		"trigger_topic": triggerTopic,
	}
}

// expectedSegmentChange is what DecodeSegmentChange must return for d.
func expectedSegmentChange(d *engine.Decision) *SegmentChange {
	m := d.Metrics
	sc := &SegmentChange{
		EventID: d.EventID, SIREN: d.SIREN, Seq: d.Seq, EventTime: d.EventTime,
		Segments: SegmentNames(d.Segments), PreviousSegments: SegmentNames(d.Previous),
		Added: SegmentNames(d.Added), Removed: SegmentNames(d.Removed),
		Metrics: SegmentMetrics{
			Traffic30dBytes: m.Traffic30dBytes, TrafficPrev30dBytes: m.TrafficPrev30dBytes,
			Outages90d: m.Outages90d, OpenOutages: m.OpenOutages, RecoveryExposureHours90d: m.RecoveryExposureHours90d,
			MaxRecoveryHours90d: m.MaxRecoveryHours90d, Claims365d: m.Claims365d, ClaimAmount365dCents: m.ClaimAmount365dCents,
			DistinctPostalCodes90d: m.DistinctPostalCodes90d,
		},
		Reasons:      []ReasonRec{},
		Offers:       append([]string{}, d.Offers...),
		ControlGroup: d.ControlGroup, RulesVersion: d.RulesVersion,
		OffersAdded: append([]string{}, d.OffersAdded...), OffersRemoved: append([]string{}, d.OffersRemoved...),
		Trigger: d.Trigger,
	}
	if d.TriggerTopic != "" {
		sc.TriggerTopic = &d.TriggerTopic
	}
	if m.HasTrafficVelocity {
		sc.Metrics.TrafficVelocity = &m.TrafficVelocity
	}
	if m.HasDigitalIntensity {
		sc.Metrics.DigitalIntensity = &m.DigitalIntensity
	}
	if m.IntensityBasis != "" {
		sc.Metrics.IntensityBasis = &m.IntensityBasis
	}
	if m.HasIntensityPercentile {
		sc.Metrics.IntensityPercentile = &m.IntensityPercentile
	}
	if m.HasWorkforce {
		sc.Metrics.Workforce = &m.Workforce
	}
	if m.HasClaimsPerOutage365d {
		sc.Metrics.ClaimsPerOutage365d = &m.ClaimsPerOutage365d
	}
	if m.HasClaimHoursRatio365d {
		sc.Metrics.ClaimHoursRatio365d = &m.ClaimHoursRatio365d
	}
	for _, r := range d.Reasons {
		sc.Reasons = append(sc.Reasons, ReasonRec(r))
	}
	return sc
}

func TestSegmentChangeMatchesGoavro(t *testing.T) {
	gc := goavroCodec(t, IDSegmentChange)
	for name, d := range map[string]*engine.Decision{"full": sampleDecision(), "nulls": sampleDecisionNulls()} {
		t.Run(name, func(t *testing.T) {
			ours := AppendSegmentChange(nil, d)
			theirs := goavroFrame(t, gc, IDSegmentChange, segmentChangeNative(d))
			if !bytes.Equal(ours, theirs) {
				t.Fatalf("bytes differ:\nours   %x\ngoavro %x", ours, theirs)
			}
			if _, rest, err := gc.NativeFromBinary(ours[headerLen:]); err != nil || len(rest) != 0 {
				t.Fatalf("goavro decode of our bytes: %v, %d left", err, len(rest))
			}
			got, err := DecodeSegmentChange(theirs)
			if err != nil {
				t.Fatal(err)
			}
			if want := expectedSegmentChange(d); !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Fatalf("DecodeSegmentChange:\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

// Multi-block arrays (as Java writers may produce) decode too.
func TestDecodeSegmentChangeMultiBlockArrays(t *testing.T) {
	d := sampleDecisionNulls()
	b := AppendSegmentChange(nil, d)
	// Rebuild with segments = 2 blocks: [-1 (count) , size, "A"] [1, "B"] [0].
	var m []byte
	m = AppendHeader(m, IDSegmentChange)
	m = appendString(m, d.EventID)
	m = appendString(m, d.SIREN)
	m = appendLong(m, d.Seq)
	m = appendLong(m, d.EventTime)
	m = appendLong(m, -1)
	m = appendLong(m, 2)
	m = appendString(m, "A")
	m = appendLong(m, 1)
	m = appendString(m, "B")
	m = append(m, 0)
	prefix := len(AppendHeader(nil, 0)) + len(appendString(nil, d.EventID)) + len(appendString(nil, d.SIREN)) +
		len(appendLong(nil, d.Seq)) + len(appendLong(nil, d.EventTime)) + 1
	m = append(m, b[prefix:]...)
	sc, err := DecodeSegmentChange(m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sc.Segments, []string{"A", "B"}) {
		t.Fatalf("segments %q", sc.Segments)
	}
	if _, err := DecodeSegmentChange(append(m, 0)); engine.DLQReason(err) != "malformed" {
		t.Fatalf("trailing byte: %v", err)
	}
	ev, _ := AppendEvent(nil, &engine.Event{Kind: engine.KindUsage})
	if _, err := DecodeSegmentChange(ev); engine.DLQReason(err) != "wrong_schema" {
		t.Fatalf("usage bytes: %v", err)
	}
}

func TestAppendSegmentChangeDeterministicAndAllocFree(t *testing.T) {
	d := sampleDecision()
	a := AppendSegmentChange(nil, d)
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() { buf = AppendSegmentChange(buf[:0], d) })
	if allocs != 0 {
		t.Errorf("AppendSegmentChange allocates %.0f times with a big enough dst", allocs)
	}
	if !bytes.Equal(a, buf) {
		t.Error("same decision, different bytes")
	}
}

func TestSegmentNamesSorted(t *testing.T) {
	names := SegmentNames(0xff)
	if len(names) != 6 || !sort.StringsAreSorted(names) {
		t.Fatalf("SegmentNames(0xff) = %q", names)
	}
	for i, n := range names {
		s, ok := segmentsFromNames([]string{n})
		if !ok || s != 1<<i {
			t.Errorf("%s → %b", n, s)
		}
	}
}

func TestDecodeFastAllocs(t *testing.T) {
	c := newCodec(t, Config{})
	for name, ev := range sampleEvents() {
		b, _ := AppendEvent(nil, &ev)
		var got engine.Event
		allocs := testing.AllocsPerRun(200, func() {
			if err := c.Decode(context.Background(), ev.Kind, b, &got); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 1 {
			t.Errorf("%s: %.0f allocs per Decode, want ≤ 1", name, allocs)
		}
	}
}

// Golden bytes of a fixed event per schema: a change to the wire format shows
// up here. Regenerate with: go test ./schemas -run Golden -update
func TestGolden(t *testing.T) {
	cases := map[string][]byte{
		"segment_change":       AppendSegmentChange(nil, sampleDecision()),
		"segment_change_nulls": AppendSegmentChange(nil, sampleDecisionNulls()),
	}
	for name, ev := range sampleEvents() {
		b, err := AppendEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		cases[name] = b
	}
	for name, b := range cases {
		path := filepath.Join("testdata", name+".golden")
		got := hex.EncodeToString(b) + "\n"
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if got != string(want) {
			t.Errorf("%s: bytes changed\n got %s want %s", name, got, want)
		}
	}
}

// TestDecodesVersion1SegmentChanges: records written before version 2 (no
// offers_added, offers_removed, trigger, trigger_topic) decode with the
// defaults — the compatibility the schema's defaults promise.
func TestDecodesVersion1SegmentChanges(t *testing.T) {
	h, err := os.ReadFile(filepath.Join("testdata", "segment_change_v1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := DecodeSegmentChange(b)
	if err != nil {
		t.Fatalf("version-1 record: %v", err)
	}
	if sc.Trigger != "" || sc.TriggerTopic != nil || sc.OffersAdded == nil || len(sc.OffersAdded) != 0 || len(sc.OffersRemoved) != 0 {
		t.Fatalf("version-1 record decoded without the v2 defaults: %+v", sc)
	}
	if sc.EventID != "732829320-3" || sc.RulesVersion != "2026-01-01.1" || len(sc.Offers) != 2 {
		t.Fatalf("version-1 record misread: %+v", sc)
	}
}
