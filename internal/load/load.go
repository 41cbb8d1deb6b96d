// Package load produces generated events to Kafka as a real producer would:
// Confluent-framed Avro values, key = SIREN, murmur2 partitioning, acks=all.
// Used by the generate and demo commands and by end-to-end tests.
package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/schemas"
)

// Stats counts what Produce wrote.
type Stats struct {
	Records int64
	Bad     int64
	ByTopic map[string]int64 // keyed by gen's topic names
	Elapsed time.Duration
	// FirstEventMs and LastEventMs are the event times of the first and
	// last record produced.
	FirstEventMs, LastEventMs int64
}

// Writer builds a producer with the settings every sirenstream producer uses.
func Writer(brokers []string, transport *kafka.Transport) *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    5000,
		BatchBytes:   4 << 20,
	}
	if transport != nil { // a typed nil in the interface would crash kafka-go
		w.Transport = transport
	}
	return w
}

// Produce generates cfg's events and writes them with w in batches of batch
// records (default 20000). Topic names are mapped by topicOf (nil = gen's
// names). The Kafka record timestamp is the event time, as a backfill
// producer would set it.
func Produce(ctx context.Context, w *kafka.Writer, cfg gen.Config, topicOf func(string) string, batch int) (Stats, error) {
	return ProduceWith(ctx, w, cfg, Options{TopicOf: topicOf, Batch: batch})
}

// Options tune ProduceWith.
type Options struct {
	TopicOf func(string) string // nil: gen's topic names
	Batch   int                 // records per write (default 20000)
	// SchemaIDs frames records with registry-assigned ids (see Register)
	// instead of the fixed ids 1-4.
	SchemaIDs map[engine.Kind]uint32
	// Limit stops after this many records (0: everything gen generates).
	Limit int64
}

// ProduceWith is Produce with options.
func ProduceWith(ctx context.Context, w *kafka.Writer, cfg gen.Config, o Options) (Stats, error) {
	topicOf, batch := o.TopicOf, o.Batch
	if batch <= 0 {
		batch = 20000
	}
	st := Stats{ByTopic: map[string]int64{}}
	start := time.Now()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return st, err
	}
	msgs := make([]kafka.Message, 0, batch)
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce %d records: %w", len(msgs), err)
		}
		msgs = msgs[:0]
		return nil
	}
	err = gen.Generate(cfg, func(r *gen.Record) error {
		if o.Limit > 0 && st.Records >= o.Limit {
			return gen.ErrStop
		}
		val, err := codec.EncodeEvent(nil, &r.Event)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", r.Topic, r.Event.EventID, err)
		}
		if id, ok := o.SchemaIDs[r.Event.Kind]; ok {
			binary.BigEndian.PutUint32(val[1:5], id)
		}
		topic := r.Topic
		if topicOf != nil {
			topic = topicOf(topic)
		}
		msgs = append(msgs, kafka.Message{
			Topic: topic,
			Key:   []byte(r.Event.SIREN),
			Value: val,
			Time:  time.UnixMilli(r.Event.EventTime),
		})
		if st.Records == 0 {
			st.FirstEventMs = r.Event.EventTime
		}
		st.LastEventMs = r.Event.EventTime
		st.Records++
		st.ByTopic[r.Topic]++
		if r.Bad != "" {
			st.Bad++
		}
		if len(msgs) >= batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	st.Elapsed = time.Since(start)
	return st, err
}
