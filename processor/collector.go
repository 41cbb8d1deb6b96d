package processor

import (
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
}

// collector encodes a task's outputs (Kafka Streams' RecordCollector) into
// the open batch of its committer, which writes them before the state.
type collector struct {
	routes    routes
	partition int32
	batch     *committer
}

func (c *collector) consumed(string)  {}
func (c *collector) processed(string) {}
func (c *collector) skipped()         {}

// change appends a segment change, and the same bytes as a churn alert when
// it adds CHURN_RISK.
func (c *collector) change(d *engine.Decision) {
	val := schemas.AppendSegmentChange(nil, d)
	key := []byte(d.SIREN)
	c.batch.add(kafka.Message{Topic: c.routes.segments, Key: key, Value: val})
	if d.Added&engine.ChurnRisk != 0 && c.routes.churn != "" {
		c.batch.add(kafka.Message{Topic: c.routes.churn, Key: key, Value: val})
	}
}

// deadLetter appends a copy of the record with its original key and bytes
// and the reason and source coordinates as headers.
func (c *collector) deadLetter(topic string, msg *kafka.Message, reason string, cause error) {
	c.batch.add(kafka.Message{
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
	})
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
