// Package load produces generated events to Kafka as live producers would:
// Confluent-framed Avro values, key = SIREN, murmur2 partitioning, acks=all,
// the four input topics interleaved in event-time order as they reach the
// broker (or, on request, one topic after another, or trickled at a rate).
// Used by the generate, demo and bench commands and by end-to-end tests.
package load

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
)

// Stats counts what Produce wrote.
type Stats struct {
	Records int64
	Bad     int64
	ByTopic map[string]int64 // keyed by gen's topic names
	Elapsed time.Duration
	// Writes is the number of acknowledged writes (chunks).
	Writes int64
	// FirstEventMs and LastEventMs are the earliest and latest event times
	// produced.
	FirstEventMs, LastEventMs int64
}

// Writer builds a producer with the settings every sirenstream producer uses.
func Writer(brokers []string, transport *kafka.Transport) *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, // 0 would mean 1 s per partial batch
		BatchSize:    5000,
		BatchBytes:   4 << 20,
	}
	if transport != nil { // a typed nil in the interface would crash kafka-go
		w.Transport = transport
	}
	return w
}

// Defaults of Options.
const (
	DefaultChunkRecords = 5000
	DefaultChunkSpan    = time.Hour
)

// ByTopicOrder is the order in which Options.ByTopic loads the topics (gen's
// names): the way platform teams load history, the big feed first.
var ByTopicOrder = [...]string{gen.TopicUsage, gen.TopicProfiles, gen.TopicOutages, gen.TopicClaims, gen.TopicOfferResponses, gen.TopicContractEvents}

// Options tune ProduceWith. The zero value produces everything as fast as
// the broker acknowledges it, interleaved in event-time order.
type Options struct {
	TopicOf func(string) string // nil: gen's topic names
	// Batch caps the records of one chunk (default DefaultChunkRecords);
	// a chunk's values are also capped at 512 KiB, so that it fits the
	// broker's default max.message.bytes even in a single partition.
	Batch int
	// Span caps the event-time span of one chunk (default DefaultChunkSpan;
	// negative: no cap). Records are written chunk by chunk in event-time
	// order and each chunk is acknowledged before the next is sent, so no
	// record reaches the broker after a record more than Span ahead of it
	// in event time, whatever its topic or partition.
	Span time.Duration
	// Rate limits the records per second (0: as fast as the broker acks).
	// A token bucket paces the chunks, which then hold at most 20 ms worth
	// of records: in the first t seconds at most Rate·t records are sent.
	Rate float64
	// ByTopic writes the topics one after another in ByTopicOrder (each in
	// event-time order, generated again per topic) instead of interleaved:
	// the arrival order of a historical load, for order-independence tests.
	ByTopic bool
	// SchemaIDs frames records with registry-assigned ids (see Register)
	// instead of the fixed ids 1-4.
	SchemaIDs map[engine.Kind]uint32
	// Limit stops after this many records in generation order (0:
	// everything gen generates). With ByTopic, the same records are
	// written, topic by topic.
	Limit int64
}

// Validate checks the options; it names the bad field.
func (o *Options) Validate() error {
	switch {
	case o.Batch < 0:
		return fmt.Errorf("load: Batch must be ≥ 0, got %d", o.Batch)
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("load: Rate must be a number ≥ 0, got %v", o.Rate)
	case o.Limit < 0:
		return fmt.Errorf("load: Limit must be ≥ 0, got %d", o.Limit)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Batch == 0 {
		o.Batch = DefaultChunkRecords
	}
	if o.Span == 0 {
		o.Span = DefaultChunkSpan
	}
	if o.Rate > 0 {
		// Trickle: a chunk is at most 20 ms worth of records.
		o.Batch = max(1, min(o.Batch, int(o.Rate/50)))
	}
}

// Produce generates cfg's events and writes them through w, interleaved in
// event-time order in chunks of at most batch records (0: the default).
// Topic names are mapped by topicOf (nil = gen's names). The Kafka record
// timestamp is the event time, as a backfill producer would set it.
func Produce(ctx context.Context, w *kafka.Writer, cfg gen.Config, topicOf func(string) string, batch int) (Stats, error) {
	return ProduceWith(ctx, w, cfg, Options{TopicOf: topicOf, Batch: batch})
}

// ProduceWith is Produce with options. w supplies the connection (Addr,
// Transport), the Balancer, RequiredAcks and Compression; its batching is
// not used: each chunk goes out as one produce request per leader broker
// and is acknowledged before the next, one round trip per chunk. At the
// defaults that is about as fast as unordered 20,000-record writes through
// w (2,000 SIRENs × 120 days: ~2,900 chunks, ~1 s on the embedded broker).
// Records are sent at least once: a chunk retried after a timeout may be
// written twice, as with any Kafka producer without idempotence.
func ProduceWith(ctx context.Context, w *kafka.Writer, cfg gen.Config, o Options) (Stats, error) {
	st := Stats{ByTopic: map[string]int64{}}
	if err := o.Validate(); err != nil {
		return st, err
	}
	o.setDefaults()
	start := time.Now()
	p, err := newProducer(ctx, w, o, &st)
	if err != nil {
		return st, err
	}
	if !o.ByTopic {
		err = p.pass(cfg, "")
	} else {
		for _, topic := range ByTopicOrder {
			if err = p.pass(cfg, topic); err != nil {
				break
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st, err
}
