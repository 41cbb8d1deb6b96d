package processor

import (
	"context"
	"slices"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
)

// routes are the output topics of a task (the topology's, or a replay's).
type routes struct {
	segments string // segment changes
	churn    string // churn alerts ("" = none): changes that add CHURN_RISK
	dlq      string // dead letters
	// segmentsID and churnID are the schema ids the outputs are framed with
	// (0: the fixed id 101; with a registry, what it returned for
	// "<topic>-value", see registerOutputs).
	segmentsID, churnID int
	// outcomesID, dailyID and upliftID frame the outcome outputs likewise
	// (0: their fixed ids 102, 104, 103).
	outcomesID, dailyID, upliftID int
	// Outcomes (spec §8, outcomes.go); "" = not written.
	outcomes    string // offer-outcomes
	daily       string // siren-daily
	repartition string // the uplift aggregator's input, key = offer
	uplift      string // the aggregator's output, key = offer
}

// topics are the output topics of r, without empty names.
func (r routes) topics() []string {
	var out []string
	for _, t := range []string{r.segments, r.churn, r.dlq, r.outcomes, r.daily, r.repartition, r.uplift} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// collector encodes a task's outputs (Kafka Streams' RecordCollector) into
// the open batch of its committer, which writes them before the state.
type collector struct {
	routes    routes
	partition int32
	batch     *committer
	// maxBytes is the output budget (recordLimits.output, 0: Kafka's
	// default) a dead letter is cut to fit.
	maxBytes int
}

func (c *collector) consumed(string)  {}
func (c *collector) processed(string) {}
func (c *collector) skipped()         {}

// change appends a segment change, and the same bytes as a churn alert when
// it adds CHURN_RISK. A churn alert also carries the holdout group in the
// header control_group ("true"/"false", hdrControlGroup): alerting systems
// route on headers without decoding the value, and a control SIREN's alert
// must not reach a retention campaign.
func (c *collector) change(d *engine.Decision) {
	val := schemas.AppendSegmentChange(nil, d)
	if id := c.routes.segmentsID; id != 0 {
		schemas.SetSchemaID(val, id)
	}
	key := []byte(d.SIREN)
	c.batch.add(kafka.Message{Topic: c.routes.segments, Key: key, Value: val})
	if d.Added&engine.ChurnRisk != 0 && c.routes.churn != "" {
		alert := val
		if id := c.routes.churnID; id != 0 && id != c.routes.segmentsID {
			alert = slices.Clone(val)
			schemas.SetSchemaID(alert, id)
		}
		c.batch.add(kafka.Message{Topic: c.routes.churn, Key: key, Value: alert,
			Headers: []kafka.Header{{Key: hdrControlGroup, Value: controlValue(d.ControlGroup)}}})
	}
}

// hdrControlGroup is the churn alert header holding the SIREN's holdout
// group: "true" for control, "false" for treatment (spec §8).
const hdrControlGroup = "control_group"

var (
	hdrTrue  = []byte("true")
	hdrFalse = []byte("false")
)

// controlValue returns the control_group header value (shared, read-only).
func controlValue(control bool) []byte {
	if control {
		return hdrTrue
	}
	return hdrFalse
}

// deadLetter appends a copy of the record with its original key and bytes
// and the reason and source coordinates as headers, cut to fit the output
// budget (fitDeadLetter).
func (c *collector) deadLetter(topic string, msg *kafka.Message, reason string, cause error) {
	m := kafka.Message{
		Topic: c.routes.dlq,
		Key:   msg.Key,
		Value: msg.Value,
		Headers: []kafka.Header{
			{Key: "error", Value: []byte(reason)},
			{Key: "error.detail", Value: detailHeader(cause)},
			{Key: "source.topic", Value: []byte(topic)},
			{Key: "source.partition", Value: []byte(strconv.Itoa(int(c.partition)))},
			{Key: "source.offset", Value: []byte(strconv.FormatInt(msg.Offset, 10))},
		},
	}
	maxBytes := c.maxBytes
	if maxBytes <= 0 {
		maxBytes = budget(DefaultMaxMessageBytes)
	}
	fitDeadLetter(&m, maxBytes)
	c.batch.add(m)
}

// Headers of a dead letter cut to fit the DLQ topic's max.message.bytes:
// the input record was accepted, but its copy with our headers may not be,
// and a refused write would be retried forever. The whole record is still
// at source.topic/partition/offset.
const (
	hdrValueTruncated = "value.truncated" // "true": the value is a prefix of the record's
	hdrValueSize      = "value.size"      // the record's value length in bytes (decimal)
	hdrKeyTruncated   = "key.truncated"   // "true": the key is a prefix of the record's
	hdrKeySize        = "key.size"        // the record's key length in bytes (decimal)
)

// fitDeadLetter cuts m to at most maxBytes (recordBytes): its value first,
// then its key when the value alone does not make room, each with headers
// saying so. Its other headers are kept whole (error.detail is capped).
func fitDeadLetter(m *kafka.Message, maxBytes int) {
	cutToFit(m, &m.Value, hdrValueTruncated, hdrValueSize, maxBytes)
	cutToFit(m, &m.Key, hdrKeyTruncated, hdrKeySize, maxBytes)
}

// cutToFit cuts *field, m's value or key, so that m fits maxBytes, and adds
// the headers truncated = "true" and size = its original length when it
// cuts. The bytes are not copied: the cut field is a prefix of the original.
func cutToFit(m *kafka.Message, field *[]byte, truncated, size string, maxBytes int) {
	if len(*field) == 0 || recordBytes(m) <= maxBytes {
		return
	}
	m.Headers = append(m.Headers,
		kafka.Header{Key: truncated, Value: []byte("true")},
		kafka.Header{Key: size, Value: []byte(strconv.Itoa(len(*field)))})
	over := recordBytes(m) - maxBytes
	*field = (*field)[:max(len(*field)-over, 0)]
}

// maxDetail caps the error.detail header: a detail quotes the bad value,
// and a dead letter must stay within the broker's record size limit
// (max.message.bytes) like the input record it carries.
const maxDetail = 512

func detailHeader(cause error) []byte {
	d := cause.Error()
	if len(d) > maxDetail {
		d = d[:maxDetail] + "…(truncated)"
	}
	return []byte(d)
}

// registerOutputs frames r's outputs with the ids of a schema registry: the
// segment_change schema registered under "<topic>-value" of the segment
// changes and churn alerts topics (the fixed id 101 without a registry).
func registerOutputs(ctx context.Context, codec *schemas.Codec, r routes) (routes, error) {
	for _, o := range []struct {
		topic string
		fixed int
		id    *int
	}{
		{r.segments, schemas.IDSegmentChange, &r.segmentsID},
		{r.churn, schemas.IDSegmentChange, &r.churnID},
		{r.outcomes, schemas.IDOfferOutcome, &r.outcomesID},
		{r.daily, schemas.IDSirenDaily, &r.dailyID},
		{r.uplift, schemas.IDUplift, &r.upliftID},
	} {
		if o.topic == "" {
			continue
		}
		id, err := codec.RegisterOutput(ctx, o.topic, o.fixed)
		if err != nil {
			return r, err
		}
		*o.id = id
	}
	return r, nil
}

// framed returns b framed with schema id (0: as it is).
func framed(b []byte, id int) []byte {
	if id != 0 {
		schemas.SetSchemaID(b, id)
	}
	return b
}
