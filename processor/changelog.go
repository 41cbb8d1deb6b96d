package processor

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/state"
)

// The changelog (like Kafka Streams' store changelogs) makes a partition's
// state portable: partition p of the compacted changelog topic holds every
// state change of task p (key = SIREN, value = state bytes) and, after each
// commit's states, a checkpoint record (key cpKey, value = the encoded
// state.Checkpoint: input offsets and task meta). Replaying the changelog up
// to its last checkpoint record rebuilds the partition exactly, offsets
// included.
//
// Write order per commit: outputs → changelog states → changelog checkpoint
// (all acked) → Badger transaction. States after the last checkpoint record
// belong to a commit that did not finish; a restore ignores them. A task that
// starts while such trailing records exist writes a start marker (a unique
// key, never compacted away) so that later restores also discard them.
//
// Badger's checkpoint stores the changelog position it corresponds to as
// Offsets[changelog topic], so a restarted instance restores only the tail.
var (
	cpKey          = []byte("\x00checkpoint")
	startKeyPrefix = []byte("\x00start:")
)

// maxChunkBytes keeps one produce request under the broker's default 1 MiB
// message.max.bytes.
const maxChunkBytes = 900 << 10

type changelog struct {
	client *kafka.Client
	topic  string
}

// produce appends records to partition p in order (acks=all) and returns the
// offset after the last one.
func (c *changelog) produce(ctx context.Context, p int32, recs []kafka.Record) (int64, error) {
	var next int64 = -1
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) {
			sz := 64
			if recs[n].Key != nil {
				sz += int(recs[n].Key.Len())
			}
			if recs[n].Value != nil {
				sz += int(recs[n].Value.Len())
			}
			if n > 0 && size+sz > maxChunkBytes {
				break
			}
			size += sz
			n++
		}
		resp, err := c.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        c.topic,
			Partition:    int(p),
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(recs[:n]...),
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err != nil {
			return -1, fmt.Errorf("changelog %s/%d: %w", c.topic, p, err)
		}
		next = resp.BaseOffset + int64(n)
		recs = recs[n:]
	}
	return next, nil
}

// record builds a changelog record; the Bytes readers are consumed once, so
// records are rebuilt on every attempt.
func record(key, val []byte) kafka.Record {
	r := kafka.Record{Key: kafka.NewBytes(key)}
	if val != nil {
		r.Value = kafka.NewBytes(val)
	}
	return r
}

// writeChangelog publishes a commit's states and its checkpoint, retrying
// until ctx ends (progress pauses; nothing is committed past it).
func (t *task) writeChangelog(ctx context.Context, puts []state.KV, cp state.Checkpoint) (int64, error) {
	cpBytes := state.AppendCheckpoint(nil, cp)
	for attempt := 0; ; attempt++ {
		recs := make([]kafka.Record, 0, len(puts)+1)
		for _, kv := range puts {
			v := kv.Value
			if kv.Header {
				// The changelog holds whole states: a restore writes them
				// as the base, newer than any header key left behind.
				if kv.Full == nil {
					return -1, fmt.Errorf("partition %d: header put of %s without its full state", t.opt.partition, kv.SIREN)
				}
				v = kv.Full
			}
			recs = append(recs, record([]byte(kv.SIREN), v))
		}
		recs = append(recs, record(cpKey, cpBytes))
		next, err := t.changelog.produce(ctx, t.opt.partition, recs)
		if err == nil {
			return next, nil
		}
		if ctx.Err() != nil {
			return -1, fmt.Errorf("partition %d: %w (state not committed)", t.opt.partition, err)
		}
		t.log.Warn("changelog write failed; retrying (progress is paused)", zap.Error(err), zap.Int("attempt", attempt+1))
		sleepCtx(ctx, backoff(attempt))
	}
}

// RestoreStats describes one restore.
type RestoreStats struct {
	Partition int32
	Full      bool // from the start of the changelog (local state missing)
	From, End int64
	Records   int64
	SIRENs    int64 // states applied
	Elapsed   time.Duration
}

// restore brings the local state of the partition up to the changelog's last
// checkpoint when it is missing or behind. Called before the task reads any
// input.
func (t *task) restore(ctx context.Context, client *kafka.Client) error {
	topic := t.changelog.topic
	first, last, err := listOffsets(ctx, client, []string{topic}, t.opt.partition)
	if err != nil {
		return err
	}
	start, end := first[0], last[0]
	cp, ok, err := t.cfg.Store.Checkpoint(t.opt.partition)
	if err != nil {
		return fmt.Errorf("partition %d: load checkpoint: %w", t.opt.partition, err)
	}
	local, hasPos := int64(-1), false
	if ok {
		local, hasPos = cp.Offsets[topic]
	}
	if ok && hasPos && local >= end {
		t.clNext = local
		return nil // up to date
	}
	st := RestoreStats{Partition: t.opt.partition, End: end}
	from := local
	if !ok || !hasPos || local < start {
		st.Full, from = true, start
	}
	st.From = from
	began := time.Now()
	if from >= end {
		t.clNext = from
		return nil
	}
	t.log.Info("restoring partition state from the changelog",
		zap.String("changelog", topic), zap.Bool("full", st.Full), zap.Int64("from", from), zap.Int64("end", end))
	if st.Full {
		if err := t.cfg.Store.DropPartition(t.opt.partition); err != nil {
			return fmt.Errorf("partition %d: drop stale state before restore: %w", t.opt.partition, err)
		}
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   t.cfg.Kafka.Brokers,
		Topic:     topic,
		Partition: int(t.opt.partition),
		Dialer:    t.cfg.Kafka.dialer(),
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	pending := map[string][]byte{} // states since the last checkpoint record
	var bulk *state.Bulk
	var lastCP *state.Checkpoint
	lastCPNext := from
	report := time.Now()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if bulk != nil {
				bulk.Cancel()
			}
			return fmt.Errorf("partition %d: read changelog at %d: %w", t.opt.partition, from, err)
		}
		st.Records++
		switch {
		case bytes.Equal(m.Key, cpKey):
			c, err := state.ParseCheckpoint(m.Value)
			if err != nil {
				return fmt.Errorf("partition %d: changelog checkpoint at %d: %w", t.opt.partition, m.Offset, err)
			}
			if bulk == nil {
				bulk = t.cfg.Store.BulkWriter(t.opt.partition)
			}
			for siren, v := range pending {
				if err := bulk.Put(siren, v); err != nil {
					return err
				}
				st.SIRENs++
			}
			clear(pending)
			lastCP, lastCPNext = &c, m.Offset+1
		case bytes.HasPrefix(m.Key, startKeyPrefix):
			clear(pending) // states of a commit that never finished
		default:
			var v []byte
			if m.Value != nil {
				v = m.Value
			}
			pending[string(m.Key)] = v
		}
		if time.Since(report) > 2*time.Second {
			report = time.Now()
			t.log.Info("restore progress", zap.Int64("records", st.Records), zap.Int64("of", end-from))
		}
		t.cfg.Metrics.RestoreProgress(t.opt.partition, m.Offset+1-from, end-from)
		if m.Offset+1 >= end {
			break
		}
	}
	st.Elapsed = time.Since(began)
	if lastCP == nil {
		// Nothing confirmed in the range: keep the local state as it is;
		// markStart aborts the trailing records.
		t.clNext = from
		t.log.Info("changelog holds no finished commit after the local state", zap.Int64("records", st.Records))
		return nil
	}
	out := state.Checkpoint{Offsets: map[string]int64{}, Meta: lastCP.Meta}
	for k, v := range lastCP.Offsets {
		out.Offsets[k] = v
	}
	out.Offsets[topic] = lastCPNext
	if err := bulk.Finish(out); err != nil {
		return fmt.Errorf("partition %d: finish restore: %w", t.opt.partition, err)
	}
	t.clNext = lastCPNext
	t.count(func(p *TaskProgress) { p.Restore = st })
	rate := float64(st.SIRENs) / st.Elapsed.Seconds()
	t.log.Info("restored partition state from the changelog",
		zap.Bool("full", st.Full), zap.Int64("records", st.Records), zap.Int64("sirens", st.SIRENs),
		zap.Duration("elapsed", st.Elapsed), zap.Float64("sirens_per_s", rate))
	return nil
}

// markStart aborts changelog records written after the last checkpoint by a
// commit that never finished, so no later restore applies them.
func (t *task) markStart(ctx context.Context, client *kafka.Client) error {
	_, last, err := listOffsets(ctx, client, []string{t.changelog.topic}, t.opt.partition)
	if err != nil {
		return err
	}
	if last[0] <= t.clNext {
		return nil
	}
	key := append(append([]byte(nil), startKeyPrefix...), strconv.FormatInt(last[0], 10)...)
	if _, err := t.changelog.produce(ctx, t.opt.partition, []kafka.Record{record(key, []byte{})}); err != nil {
		return err
	}
	t.log.Info("changelog: aborted trailing records of an unfinished commit", zap.Int64("from", t.clNext), zap.Int64("to", last[0]))
	return nil
}
