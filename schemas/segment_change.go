package schemas

import (
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// AppendSegmentChange appends d as a Confluent-framed segment_change record
// (schema id 101) and returns the extended buffer. The bytes are a pure
// function of d: segment arrays come from the bit sets in label order (sorted),
// each array is written as one block, a metrics union is null when its Has
// flag is false and intensity_basis is null when empty. Reasons and Offers are
// written in the order given (the engine keeps Offers sorted). It does not
// allocate when dst has room.
func AppendSegmentChange(dst []byte, d *engine.Decision) []byte {
	dst = AppendHeader(dst, IDSegmentChange)
	dst = appendString(dst, d.EventID)
	dst = appendString(dst, d.SIREN)
	dst = appendLong(dst, d.Seq)
	dst = appendLong(dst, d.EventTime)
	dst = appendSegments(dst, d.Segments)
	dst = appendSegments(dst, d.Previous)
	dst = appendSegments(dst, d.Added)
	dst = appendSegments(dst, d.Removed)

	dst = appendMetrics(dst, &d.Metrics)

	if len(d.Reasons) > 0 {
		dst = appendLong(dst, int64(len(d.Reasons)))
		for i := range d.Reasons {
			r := &d.Reasons[i]
			dst = appendString(dst, r.Segment)
			dst = appendString(dst, r.Metric)
			dst = appendDouble(dst, r.Value)
			dst = appendDouble(dst, r.Threshold)
		}
	}
	dst = append(dst, 0)
	dst = appendStrings(dst, d.Offers)
	dst = appendBool(dst, d.ControlGroup)
	dst = appendString(dst, d.RulesVersion)
	// Version 2.
	dst = appendStrings(dst, d.OffersAdded)
	dst = appendStrings(dst, d.OffersRemoved)
	dst = appendString(dst, d.Trigger)
	if d.TriggerTopic == "" {
		return append(dst, 0)
	}
	return appendString(append(dst, 2), d.TriggerTopic)
}

func appendSegments(dst []byte, s engine.Segments) []byte {
	n := 0
	for i := range segmentNames {
		if s&(1<<i) != 0 {
			n++
		}
	}
	if n > 0 {
		dst = appendLong(dst, int64(n))
		for i, name := range segmentNames {
			if s&(1<<i) != 0 {
				dst = appendString(dst, name)
			}
		}
	}
	return append(dst, 0)
}

// SegmentChange is a decoded segment_change record (spec §3), for tests, the
// replay diff and the demo summary. JSON tags are the Avro field names; a nil
// pointer is an Avro null. Arrays are never nil after DecodeSegmentChange.
type SegmentChange struct {
	EventID          string         `json:"event_id"`
	SIREN            string         `json:"siren"`
	Seq              int64          `json:"seq"`
	EventTime        int64          `json:"event_time"` // Unix ms UTC
	Segments         []string       `json:"segments"`
	PreviousSegments []string       `json:"previous_segments"`
	Added            []string       `json:"added"`
	Removed          []string       `json:"removed"`
	Metrics          SegmentMetrics `json:"metrics"`
	Reasons          []ReasonRec    `json:"reasons"`
	Offers           []string       `json:"offers"`
	ControlGroup     bool           `json:"control_group"`
	RulesVersion     string         `json:"rules_version"`
	// Version 2 (defaults when a version-1 record is decoded).
	OffersAdded   []string `json:"offers_added"`
	OffersRemoved []string `json:"offers_removed"`
	Trigger       string   `json:"trigger"`
	TriggerTopic  *string  `json:"trigger_topic"`
}

// SegmentMetrics is the metrics record of a SegmentChange.
type SegmentMetrics struct {
	Traffic30dBytes          int64    `json:"traffic_30d_bytes"`
	TrafficPrev30dBytes      int64    `json:"traffic_prev_30d_bytes"`
	TrafficVelocity          *float64 `json:"traffic_velocity"`
	DigitalIntensity         *float64 `json:"digital_intensity"`
	IntensityBasis           *string  `json:"intensity_basis"`
	IntensityPercentile      *float64 `json:"intensity_percentile"`
	Workforce                *int32   `json:"workforce"`
	Outages90d               int32    `json:"outages_90d"`
	OpenOutages              int32    `json:"open_outages"`
	RecoveryExposureHours90d float64  `json:"recovery_exposure_hours_90d"`
	MaxRecoveryHours90d      float64  `json:"max_recovery_hours_90d"`
	Claims365d               int32    `json:"claims_365d"`
	ClaimAmount365dCents     int64    `json:"claim_amount_365d_cents"`
	DistinctPostalCodes90d   int32    `json:"distinct_postal_codes_90d"`
	GoldenHourBreaches90d    int32    `json:"golden_hour_breaches_90d"`
	ClaimsPerOutage365d      *float64 `json:"claims_per_outage_365d"`
	ClaimHoursRatio365d      *float64 `json:"claim_hours_ratio_365d"`
}

// ReasonRec is one reasons entry of a SegmentChange.
type ReasonRec struct {
	Segment   string  `json:"segment"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
}

// DecodeSegmentChange decodes a Confluent-framed segment_change value written
// with the project's schema: id 101, or the id a registry gave it
// (RegisterOutput; not looked up: the topic says what the record is). Errors
// are the sentinels of Decode; a fixed input id (1–4) is ErrWrongSchema. Not for the
// hot path: it allocates per field.
func DecodeSegmentChange(b []byte) (*SegmentChange, error) {
	id, body, err := ParseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("schemas: segment_change: %w", err)
	}
	if _, input := KindForID(id); input {
		return nil, fmt.Errorf("schemas: segment_change: %w: schema id %d is an input's, want %d or the id the registry gave the output", ErrWrongSchema, id, IDSegmentChange)
	}
	// The metrics record gained fields in version 2 (golden_hour_breaches_90d,
	// then the SLA rates of rules default-2): without a registry the bytes
	// do not say which layout they have, so a record that does not decode
	// whole with all of them is read again with fewer (a version-1 record,
	// or one written before they were added), which takes their defaults.
	var first error
	for _, layout := range []metricsLayout{metricsRates, metricsGoldenHour, metricsV1} {
		d := dec{b: body, s: string(body)}
		sc := &SegmentChange{}
		err := decodeSegmentChange(&d, sc, layout)
		if err == nil {
			err = d.end()
		}
		if err == nil {
			return sc, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, fmt.Errorf("schemas: segment_change: %w", first)
}

// metricsLayout is a layout of the metrics record, each with the fields of
// the one before.
type metricsLayout uint8

const (
	metricsV1         metricsLayout = iota // version 1
	metricsGoldenHour                      // + golden_hour_breaches_90d
	metricsRates                           // + claims_per_outage_365d, claim_hours_ratio_365d
)

// decodeSegmentChange decodes the body of a segment_change whose metrics
// record has layout.
func decodeSegmentChange(d *dec, sc *SegmentChange, layout metricsLayout) error {
	const rec = "SegmentChange"
	var err error
	str := func(field string, p *string) bool {
		off := d.p
		if *p, err = d.str(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		return true
	}
	long := func(field string, p *int64) bool {
		off := d.p
		if *p, err = d.long(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		return true
	}
	integer := func(field string, p *int32) bool {
		off := d.p
		if *p, err = d.int(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		return true
	}
	double := func(field string, p *float64) bool {
		off := d.p
		if *p, err = d.double(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		return true
	}
	strs := func(field string, p *[]string) bool {
		off := d.p
		if *p, err = d.strings(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		if *p == nil {
			*p = []string{}
		}
		return true
	}
	optDouble := func(field string, p **float64) bool {
		off := d.p
		var has bool
		if has, err = d.branch(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false
		}
		if has {
			var v float64
			if !double(field, &v) {
				return false
			}
			*p = &v
		}
		return true
	}
	optBranch := func(field string) (bool, bool) {
		off := d.p
		var has bool
		if has, err = d.branch(); err != nil {
			err = fieldErr(rec, field, off, err)
			return false, false
		}
		return has, true
	}

	m := &sc.Metrics
	ok := str("event_id", &sc.EventID) &&
		str("siren", &sc.SIREN) &&
		long("seq", &sc.Seq) &&
		long("event_time", &sc.EventTime) &&
		strs("segments", &sc.Segments) &&
		strs("previous_segments", &sc.PreviousSegments) &&
		strs("added", &sc.Added) &&
		strs("removed", &sc.Removed) &&
		long("traffic_30d_bytes", &m.Traffic30dBytes) &&
		long("traffic_prev_30d_bytes", &m.TrafficPrev30dBytes) &&
		optDouble("traffic_velocity", &m.TrafficVelocity) &&
		optDouble("digital_intensity", &m.DigitalIntensity)
	if !ok {
		return err
	}
	if has, ok := optBranch("intensity_basis"); !ok {
		return err
	} else if has {
		var s string
		if !str("intensity_basis", &s) {
			return err
		}
		m.IntensityBasis = &s
	}
	if !optDouble("intensity_percentile", &m.IntensityPercentile) {
		return err
	}
	if has, ok := optBranch("workforce"); !ok {
		return err
	} else if has {
		var v int32
		if !integer("workforce", &v) {
			return err
		}
		m.Workforce = &v
	}
	ok = integer("outages_90d", &m.Outages90d) &&
		integer("open_outages", &m.OpenOutages) &&
		double("recovery_exposure_hours_90d", &m.RecoveryExposureHours90d) &&
		double("max_recovery_hours_90d", &m.MaxRecoveryHours90d) &&
		integer("claims_365d", &m.Claims365d) &&
		long("claim_amount_365d_cents", &m.ClaimAmount365dCents) &&
		integer("distinct_postal_codes_90d", &m.DistinctPostalCodes90d)
	if ok && layout >= metricsGoldenHour {
		ok = integer("golden_hour_breaches_90d", &m.GoldenHourBreaches90d)
	}
	if ok && layout >= metricsRates {
		ok = optDouble("claims_per_outage_365d", &m.ClaimsPerOutage365d) &&
			optDouble("claim_hours_ratio_365d", &m.ClaimHoursRatio365d)
	}
	if !ok {
		return err
	}

	sc.Reasons = []ReasonRec{}
	for {
		off := d.p
		n, berr := d.arrayBlock()
		if berr != nil {
			return fieldErr(rec, "reasons", off, berr)
		}
		if n == 0 {
			break
		}
		for i := 0; i < n; i++ {
			var r ReasonRec
			ok := str("reasons.segment", &r.Segment) &&
				str("reasons.metric", &r.Metric) &&
				double("reasons.value", &r.Value) &&
				double("reasons.threshold", &r.Threshold)
			if !ok {
				return err
			}
			sc.Reasons = append(sc.Reasons, r)
		}
	}
	if !strs("offers", &sc.Offers) {
		return err
	}
	off := d.p
	if sc.ControlGroup, err = d.boolean(); err != nil {
		return fieldErr(rec, "control_group", off, err)
	}
	if !str("rules_version", &sc.RulesVersion) {
		return err
	}
	// Version 2 fields; a version-1 record ends here and takes the defaults.
	sc.OffersAdded, sc.OffersRemoved = []string{}, []string{}
	if d.p == len(d.b) {
		return nil
	}
	ok = strs("offers_added", &sc.OffersAdded) &&
		strs("offers_removed", &sc.OffersRemoved) &&
		str("trigger", &sc.Trigger)
	if !ok {
		return err
	}
	if has, ok := optBranch("trigger_topic"); !ok {
		return err
	} else if has {
		var s string
		if !str("trigger_topic", &s) {
			return err
		}
		sc.TriggerTopic = &s
	}
	return nil
}

// appendMetrics appends the SegmentMetrics record (segment_change and
// siren_daily share it).
func appendMetrics(dst []byte, m *engine.Metrics) []byte {
	dst = appendLong(dst, m.Traffic30dBytes)
	dst = appendLong(dst, m.TrafficPrev30dBytes)
	dst = appendOptDouble(dst, m.HasTrafficVelocity, m.TrafficVelocity)
	dst = appendOptDouble(dst, m.HasDigitalIntensity, m.DigitalIntensity)
	if m.IntensityBasis == "" {
		dst = append(dst, 0)
	} else {
		dst = appendString(append(dst, 2), m.IntensityBasis)
	}
	dst = appendOptDouble(dst, m.HasIntensityPercentile, m.IntensityPercentile)
	dst = appendOptInt(dst, m.HasWorkforce, m.Workforce)
	dst = appendInt(dst, m.Outages90d)
	dst = appendInt(dst, m.OpenOutages)
	dst = appendDouble(dst, m.RecoveryExposureHours90d)
	dst = appendDouble(dst, m.MaxRecoveryHours90d)
	dst = appendInt(dst, m.Claims365d)
	dst = appendLong(dst, m.ClaimAmount365dCents)
	dst = appendInt(dst, m.DistinctPostalCodes90d)
	dst = appendInt(dst, m.GoldenHourBreaches90d)
	dst = appendOptDouble(dst, m.HasClaimsPerOutage365d, m.ClaimsPerOutage365d)
	return appendOptDouble(dst, m.HasClaimHoursRatio365d, m.ClaimHoursRatio365d)
}
