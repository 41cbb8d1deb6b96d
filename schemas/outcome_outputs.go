package schemas

import (
	"fmt"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/sirenstream/sirenstream/engine"
)

// Outcome groups (offer_outcome.group).
const (
	GroupTreatment = "TREATMENT"
	GroupControl   = "CONTROL"
)

// AppendOfferOutcome appends o as a Confluent-framed offer_outcome record
// (schema id 102).
func AppendOfferOutcome(dst []byte, o *engine.Outcome) []byte {
	dst = AppendHeader(dst, IDOfferOutcome)
	dst = appendString(dst, o.EventID)
	dst = appendString(dst, o.SIREN)
	dst = appendString(dst, o.Offer)
	g := GroupTreatment
	if o.Control {
		g = GroupControl
	}
	dst = appendString(dst, g)
	dst = appendLong(dst, o.EligibleAt)
	dst = appendLong(dst, o.ClosedAt)
	dst = appendBool(dst, o.Converted)
	dst = appendBool(dst, o.Churned)
	dst = appendLong(dst, o.MRRDeltaCents)
	dst = appendString(dst, o.RulesVersion)
	return appendString(dst, o.HoldoutID)
}

// UpliftRow is one uplift record (schema id 103) and one row of GET
// /v1/uplift. JSON tags are the Avro field names.
type UpliftRow struct {
	Day                   string   `json:"day"`
	RulesVersion          string   `json:"rules_version"`
	HoldoutID             string   `json:"holdout_id"`
	Offer                 string   `json:"offer"`
	TreatmentEligible     int64    `json:"treatment_eligible"`
	TreatmentConverted    int64    `json:"treatment_converted"`
	TreatmentChurned      int64    `json:"treatment_churned"`
	TreatmentRevenueCents int64    `json:"treatment_revenue_cents"`
	ControlEligible       int64    `json:"control_eligible"`
	ControlConverted      int64    `json:"control_converted"`
	ControlChurned        int64    `json:"control_churned"`
	ControlRevenueCents   int64    `json:"control_revenue_cents"`
	ConversionLift        float64  `json:"conversion_lift"`
	ConversionLiftLow     float64  `json:"conversion_lift_low"`
	ConversionLiftHigh    float64  `json:"conversion_lift_high"`
	RelativeLift          *float64 `json:"relative_lift"`
	ChurnLift             float64  `json:"churn_lift"`
	ChurnLiftLow          float64  `json:"churn_lift_low"`
	ChurnLiftHigh         float64  `json:"churn_lift_high"`
	ControlShare          float64  `json:"control_share"`
}

// AppendUplift appends r as a Confluent-framed uplift record (id 103).
func AppendUplift(dst []byte, r *UpliftRow) []byte {
	dst = AppendHeader(dst, IDUplift)
	for _, s := range []string{r.Day, r.RulesVersion, r.HoldoutID, r.Offer} {
		dst = appendString(dst, s)
	}
	for _, n := range []int64{r.TreatmentEligible, r.TreatmentConverted, r.TreatmentChurned, r.TreatmentRevenueCents,
		r.ControlEligible, r.ControlConverted, r.ControlChurned, r.ControlRevenueCents} {
		dst = appendLong(dst, n)
	}
	dst = appendDouble(dst, r.ConversionLift)
	dst = appendDouble(dst, r.ConversionLiftLow)
	dst = appendDouble(dst, r.ConversionLiftHigh)
	if r.RelativeLift == nil {
		dst = append(dst, 0)
	} else {
		dst = appendDouble(append(dst, 2), *r.RelativeLift)
	}
	dst = appendDouble(dst, r.ChurnLift)
	dst = appendDouble(dst, r.ChurnLiftLow)
	dst = appendDouble(dst, r.ChurnLiftHigh)
	return appendDouble(dst, r.ControlShare)
}

// AppendSirenDaily appends d, a Task.View of a SIREN at a day change, as a
// Confluent-framed siren_daily record (id 104) for the stream day dayMs.
func AppendSirenDaily(dst []byte, d *engine.Decision, dayMs int64) []byte {
	return AppendSirenDailyOn(dst, d, Date(dayMs))
}

// AppendSirenDailyOn is AppendSirenDaily with the day given as its Date
// (a day change formats it once for all its SIRENs).
func AppendSirenDailyOn(dst []byte, d *engine.Decision, date string) []byte {
	dst = AppendHeader(dst, IDSirenDaily)
	dst = appendString(dst, d.SIREN)
	dst = appendString(dst, date)
	dst = appendMetrics(dst, &d.Metrics)
	dst = appendSegments(dst, d.Segments)
	dst = appendStrings(dst, d.Offers)
	dst = appendBool(dst, d.ControlGroup)
	return appendString(dst, d.RulesVersion)
}

// Date formats a Unix ms time as its UTC date, YYYY-MM-DD.
func Date(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateOnly) }

// DecodeRecord decodes a Confluent-framed value of any embedded schema
// (inputs and outputs) into goavro's native form. For tests, tools and the
// demo: it allocates per field.
func DecodeRecord(b []byte) (map[string]any, int, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, 0, fmt.Errorf("%w: not Confluent-framed", ErrMalformed)
	}
	id := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
	text, ok := Schema(id)
	if !ok {
		return nil, id, fmt.Errorf("%w: schema id %d", ErrUnknownSchema, id)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, id, err
	}
	native, rest, err := codec.NativeFromBinary(b[5:])
	if err != nil {
		return nil, id, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(rest) > 0 {
		return nil, id, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	m, _ := native.(map[string]any)
	return m, id, nil
}
