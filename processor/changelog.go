package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/state"
)

// The changelog (like Kafka Streams' store changelogs) makes a partition's
// state portable: partition p of the compacted changelog topic
// (<group>-changelog by default) holds every state change of task p (key =
// SIREN, value = state bytes) and, after each commit's states, a checkpoint
// record (key cpKey, value = the encoded state.Checkpoint: input offsets,
// task meta and the group that wrote it, see isolation.go). Replaying the
// changelog up to its last checkpoint record rebuilds the partition exactly,
// offsets included.
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

// changelog is one task's view of its changelog partition: it writes each
// commit's states and checkpoint, restores the local state, and aborts the
// records of a commit that never finished.
type changelog struct {
	client    *kafka.Client
	kafka     Kafka
	topic     string
	partition int32
	store     *state.Store
	log       *zap.Logger
	metrics   Metrics
	// maxBytes bounds one produce batch (recordLimits.changelog; 0: Kafka's
	// default limit).
	maxBytes int
	// group is the consumer group, named in each checkpoint record;
	// legacyWarn is shared by the tasks of a Processor (isolation.go).
	group      string
	legacyWarn *sync.Once
	// next is the changelog offset after this task's last checkpoint record.
	next int64
}

// produce appends records to partition p in order (acks=all) and returns the
// offset after the last one. Records go in chunks of at most maxBytes, one
// produce request each; a record larger than maxBytes is refused without
// being sent (errRecordTooLarge), as is one the broker refuses for its size.
func (c *changelog) produce(ctx context.Context, p int32, recs []kafka.Record) (int64, error) {
	maxBytes := c.maxBytes
	if maxBytes <= 0 {
		maxBytes = budget(DefaultMaxMessageBytes)
	}
	var next int64 = -1
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) {
			sz := recordOverhead
			if recs[n].Key != nil {
				sz += int(recs[n].Key.Len())
			}
			if recs[n].Value != nil {
				sz += int(recs[n].Value.Len())
			}
			if sz > maxBytes {
				var key []byte
				if recs[n].Key != nil {
					key, _ = kafka.ReadAll(recs[n].Key)
				}
				return -1, c.tooLarge(fmt.Sprintf("record %q", key), sz, maxBytes, nil)
			}
			if n > 0 && size+sz > maxBytes {
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
		if errors.Is(err, kafka.MessageSizeTooLarge) {
			return -1, c.tooLarge(fmt.Sprintf("chunk of %d records", n), size, maxBytes, err)
		}
		if err != nil {
			return -1, fmt.Errorf("changelog %s/%d: %w", c.topic, p, err)
		}
		next = resp.BaseOffset + int64(n)
		recs = recs[n:]
	}
	return next, nil
}

// tooLarge is the error of a changelog write refused for its size: what (a
// record or a chunk) is size bytes, the chunk limit maxBytes. A state is
// never split over several records: the engine bounds every SIREN's state
// far below Kafka's default limit, so this is a configuration error (a
// changelog topic with a tiny max.message.bytes, or one lowered since
// start). It stops the task loudly instead of retrying forever; nothing of
// the commit is stored.
func (c *changelog) tooLarge(what string, size, maxBytes int, cause error) error {
	if cause == nil {
		cause = errRecordTooLarge
	} else {
		cause = fmt.Errorf("%w: %w", errRecordTooLarge, cause)
	}
	return fmt.Errorf("changelog %s/%d: %s of about %d bytes exceeds %d bytes (max.message.bytes less the batch header, read at start): %w; raise the changelog topic's max.message.bytes and restart",
		c.topic, c.partition, what, size, maxBytes, cause)
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
func (c *changelog) write(ctx context.Context, puts []state.KV, cp state.Checkpoint) (int64, error) {
	cp.Group = c.group // the restore of another group refuses it
	cpBytes := state.AppendCheckpoint(nil, cp)
	for attempt := 0; ; attempt++ {
		recs := make([]kafka.Record, 0, len(puts)+1)
		for _, kv := range puts {
			v := kv.Value
			if kv.Header {
				// The changelog holds whole states: a restore writes them
				// as the base, newer than any header key left behind.
				if kv.Full == nil {
					return -1, fmt.Errorf("partition %d: header put of %s without its full state", c.partition, kv.SIREN)
				}
				v = kv.Full
			}
			recs = append(recs, record([]byte(kv.SIREN), v))
		}
		recs = append(recs, record(cpKey, cpBytes))
		next, err := c.produce(ctx, c.partition, recs)
		if err == nil {
			return next, nil
		}
		if errors.Is(err, errRecordTooLarge) {
			return -1, fmt.Errorf("partition %d: %w (state not committed)", c.partition, err)
		}
		if ctx.Err() != nil {
			return -1, fmt.Errorf("partition %d: %w (state not committed)", c.partition, err)
		}
		c.log.Warn("changelog write failed; retrying (progress is paused)", zap.Error(err), zap.Int("attempt", attempt+1))
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
// checkpoint when it is missing or behind, and seeds an empty changelog with
// a local state that never went to it. Called before the task reads any
// input. A changelog whose checkpoint records name another group is refused
// (ErrOtherGroup) before anything local is dropped.
func (c *changelog) restore(ctx context.Context, client *kafka.Client) (RestoreStats, error) {
	topic := c.topic
	first, last, err := listOffsets(ctx, client, []string{topic}, c.partition)
	if err != nil {
		return RestoreStats{}, err
	}
	start, end := first[0], last[0]
	cp, ok, err := c.store.Checkpoint(c.partition)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("partition %d: load checkpoint: %w", c.partition, err)
	}
	local, hasPos := int64(-1), false
	if ok {
		local, hasPos = cp.Offsets[topic]
	}
	if ok && hasPos && local >= end {
		c.next = local
		return RestoreStats{}, nil // up to date
	}
	if ok && !hasPos && start >= end {
		// The local state never went to this (empty) changelog: an upgrade
		// to <group>-changelog, or a changelog enabled after running
		// without one.
		return RestoreStats{}, c.seed(ctx, cp)
	}
	st := RestoreStats{Partition: c.partition, End: end}
	from := local
	if !ok || !hasPos || local < start {
		st.Full, from = true, start
	}
	st.From = from
	if from >= end {
		c.next = from
		return RestoreStats{}, nil
	}
	c.log.Info("restoring partition state from the changelog",
		zap.String("changelog", topic), zap.Bool("full", st.Full), zap.Int64("from", from), zap.Int64("end", end))
	return c.replay(ctx, st)
}

// replay applies the changelog records of [st.From, st.End) up to the last
// checkpoint record among them. A full restore drops the local state just
// before the first state is applied: after the first checkpoint record's
// group was checked.
func (c *changelog) replay(ctx context.Context, st RestoreStats) (_ RestoreStats, err error) {
	began := time.Now()
	r := changelogReader(c.kafka, c.topic, c.partition)
	defer r.Close()
	if err := r.SetOffset(st.From); err != nil {
		return RestoreStats{}, err
	}
	pending := map[string][]byte{} // states since the last checkpoint record
	var bulk *state.Bulk
	defer func() {
		if err != nil && bulk != nil {
			bulk.Cancel()
		}
	}()
	var lastCP *state.Checkpoint
	lastCPNext := st.From
	report := time.Now()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return RestoreStats{}, fmt.Errorf("partition %d: read changelog at %d: %w", c.partition, st.From, err)
		}
		st.Records++
		switch {
		case bytes.Equal(m.Key, cpKey):
			parsed, err := state.ParseCheckpoint(m.Value)
			if err != nil {
				return RestoreStats{}, fmt.Errorf("partition %d: changelog checkpoint at %d: %w", c.partition, m.Offset, err)
			}
			if err := c.checkpointGroup(parsed, m.Offset); err != nil {
				return RestoreStats{}, err // names partition and offset
			}
			if bulk == nil {
				if st.Full {
					if err := c.store.DropPartition(c.partition); err != nil {
						return RestoreStats{}, fmt.Errorf("partition %d: drop stale state before restore: %w", c.partition, err)
					}
				}
				bulk = c.store.BulkWriter(c.partition)
			}
			for siren, v := range pending {
				if err := bulk.Put(siren, v); err != nil {
					return RestoreStats{}, err
				}
				st.SIRENs++
			}
			clear(pending)
			lastCP, lastCPNext = &parsed, m.Offset+1
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
			c.log.Info("restore progress", zap.Int64("records", st.Records), zap.Int64("of", st.End-st.From))
		}
		c.metrics.RestoreProgress(c.partition, m.Offset+1-st.From, st.End-st.From)
		if m.Offset+1 >= st.End {
			break
		}
	}
	st.Elapsed = time.Since(began)
	if lastCP == nil {
		// Nothing confirmed in the range: keep the local state as it is
		// (a full restore finds none to keep); markStart aborts the
		// trailing records.
		if st.Full {
			if err := c.store.DropPartition(c.partition); err != nil {
				return RestoreStats{}, fmt.Errorf("partition %d: drop stale state before restore: %w", c.partition, err)
			}
		}
		c.next = st.From
		c.log.Info("changelog holds no finished commit after the local state", zap.Int64("records", st.Records))
		return RestoreStats{}, nil
	}
	out := state.Checkpoint{Offsets: map[string]int64{}, Meta: lastCP.Meta}
	for k, v := range lastCP.Offsets {
		out.Offsets[k] = v
	}
	out.Offsets[c.topic] = lastCPNext
	if err := bulk.Finish(out); err != nil {
		return RestoreStats{}, fmt.Errorf("partition %d: finish restore: %w", c.partition, err)
	}
	c.next = lastCPNext
	rate := float64(st.SIRENs) / st.Elapsed.Seconds()
	c.log.Info("restored partition state from the changelog",
		zap.Bool("full", st.Full), zap.Int64("records", st.Records), zap.Int64("sirens", st.SIRENs),
		zap.Duration("elapsed", st.Elapsed), zap.Float64("sirens_per_s", rate))
	return st, nil
}

// seedChunk is the number of states per produce of a seed.
const seedChunk = 2000

// seed writes every local state of the partition to the empty changelog,
// then a checkpoint record with the local checkpoint cp, and records the
// changelog position in the local checkpoint. Without it the changelog
// would hold only the states written after the switch, and a later restore
// elsewhere would miss every SIREN not written since.
func (c *changelog) seed(ctx context.Context, cp state.Checkpoint) error {
	began := time.Now()
	recs := make([]kafka.Record, 0, seedChunk+1)
	var sirens int64
	flush := func() error {
		next, err := c.produce(ctx, c.partition, recs)
		if err != nil {
			return err
		}
		c.next = next
		recs = recs[:0]
		return nil
	}
	// Kafka is written during the scan (a read): the snapshot lives as long
	// as the seed, once per partition and changelog.
	err := c.store.Scan(c.partition, func(siren string, val []byte) error {
		recs = append(recs, record([]byte(siren), append([]byte(nil), val...)))
		sirens++
		if len(recs) < seedChunk {
			return nil
		}
		return flush()
	})
	if err != nil {
		return fmt.Errorf("partition %d: seed changelog %s: %w", c.partition, c.topic, err)
	}
	cp.Group = c.group
	recs = append(recs, record(cpKey, state.AppendCheckpoint(nil, cp)))
	if err := flush(); err != nil {
		return fmt.Errorf("partition %d: seed changelog %s: %w", c.partition, c.topic, err)
	}
	// Commit drops the merge plan of an interrupted batch: keep it, it
	// still starts at cp's offsets.
	plan, err := c.store.Plan(c.partition)
	if err != nil {
		return fmt.Errorf("partition %d: %w", c.partition, err)
	}
	local := state.Checkpoint{Offsets: make(map[string]int64, len(cp.Offsets)+1), Meta: cp.Meta}
	for k, v := range cp.Offsets {
		local.Offsets[k] = v
	}
	local.Offsets[c.topic] = c.next
	if err := c.store.Commit(c.partition, nil, local); err != nil {
		return fmt.Errorf("partition %d: record the seeded changelog position: %w", c.partition, err)
	}
	if plan != nil {
		if err := c.store.SavePlan(c.partition, plan); err != nil {
			return fmt.Errorf("partition %d: %w", c.partition, err)
		}
	}
	c.log.Info("seeded the empty changelog with the local state (it never went to this changelog)",
		zap.String("changelog", c.topic), zap.Int64("sirens", sirens), zap.Int64("next", c.next),
		zap.Duration("elapsed", time.Since(began)))
	return nil
}

// markStart aborts changelog records written after the last checkpoint by a
// commit that never finished, so no later restore applies them.
func (c *changelog) markStart(ctx context.Context, client *kafka.Client) error {
	_, last, err := listOffsets(ctx, client, []string{c.topic}, c.partition)
	if err != nil {
		return err
	}
	if last[0] <= c.next {
		return nil
	}
	key := append(append([]byte(nil), startKeyPrefix...), strconv.FormatInt(last[0], 10)...)
	if _, err := c.produce(ctx, c.partition, []kafka.Record{record(key, []byte{})}); err != nil {
		return err
	}
	c.log.Info("changelog: aborted trailing records of an unfinished commit", zap.Int64("from", c.next), zap.Int64("to", last[0]))
	return nil
}
