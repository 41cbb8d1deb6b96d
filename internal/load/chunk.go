package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/schemas"
)

// maxChunkBytes caps the encoded values of a chunk: even when all of it
// lands in one partition, its record batch stays under the broker's default
// max.message.bytes (1 MiB).
const maxChunkBytes = 512 << 10

// producer writes gen's records chunk by chunk: a chunk is a run of
// consecutive records (all topics) no longer than Batch records, Span of
// event time and maxChunkBytes, sent as one produce request per leader
// broker whose acks are awaited before the next chunk is built. Records of
// one chunk may arrive in any order (on one broker, all at once), but never
// before a record of an earlier chunk: the arrival skew between topics and
// partitions is bounded by the chunk's span.
type producer struct {
	ctx   context.Context
	o     Options
	st    *Stats
	codec *schemas.Codec
	send  *sender
	pace  *bucket // nil: no rate limit

	recs    []rec
	buf     []byte // the chunk's encoded values; recs' values point into it
	firstMs int64  // event time of the chunk's first record
	seen    int64  // records generated in this pass (for Limit)
}

func newProducer(ctx context.Context, w *kafka.Writer, o Options, st *Stats) (*producer, error) {
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return nil, err
	}
	p := &producer{ctx: ctx, o: o, st: st, codec: codec, send: newSender(w), recs: make([]rec, 0, min(o.Batch, 1<<16))}
	if o.Rate > 0 {
		p.pace = newBucket(o.Rate, float64(o.Batch), time.Now())
	}
	return p, nil
}

// pass generates cfg's records and writes those of topic ("" = all).
func (p *producer) pass(cfg gen.Config, topic string) error {
	p.seen = 0
	err := gen.Generate(cfg, func(r *gen.Record) error {
		if p.o.Limit > 0 && p.seen >= p.o.Limit {
			return gen.ErrStop
		}
		p.seen++
		if topic != "" && r.Topic != topic {
			return nil
		}
		return p.add(r)
	})
	if err == nil {
		err = p.flush()
	}
	return err
}

func (p *producer) add(r *gen.Record) error {
	t := r.Event.EventTime
	if len(p.recs) > 0 && (len(p.recs) >= p.o.Batch || len(p.buf) >= maxChunkBytes || p.o.Span > 0 && t-p.firstMs >= p.o.Span.Milliseconds()) {
		if err := p.flush(); err != nil {
			return err
		}
	}
	if len(p.recs) == 0 {
		p.firstMs = t
	}
	off := len(p.buf)
	buf, err := p.codec.EncodeEvent(p.buf, &r.Event)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", r.Topic, r.Event.EventID, err)
	}
	// Values are sub-slices of buf: one that a later append moves stays
	// valid in the old array, and the chunk is written before buf is reused.
	p.buf = buf
	val := buf[off:len(buf):len(buf)]
	if id, ok := p.o.SchemaIDs[r.Event.Kind]; ok {
		binary.BigEndian.PutUint32(val[1:5], id)
	}
	name := r.Topic
	if p.o.TopicOf != nil {
		name = p.o.TopicOf(name)
	}
	p.recs = append(p.recs, rec{topic: name, key: []byte(r.Event.SIREN), value: val, timeMs: t})
	p.count(r)
	return nil
}

func (p *producer) count(r *gen.Record) {
	t := r.Event.EventTime
	if p.st.Records == 0 || t < p.st.FirstEventMs {
		p.st.FirstEventMs = t
	}
	if p.st.Records == 0 || t > p.st.LastEventMs {
		p.st.LastEventMs = t
	}
	p.st.Records++
	p.st.ByTopic[r.Topic]++
	if r.Bad != "" {
		p.st.Bad++
	}
}

// flush writes the chunk and waits for its acks.
func (p *producer) flush() error {
	if len(p.recs) == 0 {
		return nil
	}
	if p.pace != nil {
		if err := p.pace.wait(p.ctx, len(p.recs)); err != nil {
			return err
		}
	}
	if err := p.send.send(p.ctx, p.recs); err != nil {
		return fmt.Errorf("produce %d records (event time from %s): %w", len(p.recs), time.UnixMilli(p.firstMs).UTC().Format(time.RFC3339), err)
	}
	p.st.Writes++
	clear(p.recs) // drop references to keys and values
	p.recs = p.recs[:0]
	p.buf = p.buf[:0]
	return nil
}
