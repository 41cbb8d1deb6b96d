package processor

// Kafka client, reader and writer construction, in one place: every
// connection the processor opens is built here from Config.Kafka.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	"go.uber.org/zap"
)

// ReaderConfig is how an input partition is read, by the processor and by
// the bench: fetch up to 8 MiB, wait at most 250 ms for MinBytes, and back
// off 50 ms to 2 s between failed fetches. errorf receives the reader's
// errors (nil: discarded).
func ReaderConfig(k Kafka, topic string, partition int32, errorf func(string, ...any)) kafka.ReaderConfig {
	cfg := kafka.ReaderConfig{
		Brokers:        k.Brokers,
		Topic:          topic,
		Partition:      int(partition),
		Dialer:         k.dialer(),
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  1000,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: 2 * time.Second,
	}
	if errorf != nil {
		cfg.ErrorLogger = kafka.LoggerFunc(errorf)
	}
	return cfg
}

// inputReader reads one input partition for a task.
func inputReader(k Kafka, topic string, partition int32, log *zap.Logger) *kafka.Reader {
	return kafka.NewReader(ReaderConfig(k, topic, partition, log.Sugar().With("topic", topic).Debugf))
}

// changelogReader reads a changelog partition for a restore: bigger fetches,
// no read-ahead queue tuning (a restore reads the partition once).
func changelogReader(k Kafka, topic string, partition int32) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:   k.Brokers,
		Topic:     topic,
		Partition: int(partition),
		Dialer:    k.dialer(),
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   250 * time.Millisecond,
	})
}

// newClient is a kafka-go Client (metadata, offsets, produce to a
// partition) with k's TLS and SASL settings.
func newClient(k Kafka, timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: timeout, Transport: k.transport()}
}

// Message counts per partition batch of the outputs' writers. kafka-go
// allocates a batch's message array at its writer's BatchSize whatever the
// batch then holds (~150 B a message: 750 KB at 5,000), so a live task that
// commits a few outputs every few milliseconds allocated most of the
// process's garbage in those arrays (BENCHMARKS.md round 13). A replay's
// writes hold thousands of outputs (a spill: defaultSpillOutputs, ~2,000
// per partition of a 4-partition topic), and a bigger batch is fewer
// requests.
const (
	smallBatchSize = 128
	largeBatchSize = 2048
)

// outputWriter writes a task's outputs: through a writer of small batches
// when the whole write fits in one of them, else through one of large
// batches. Each write goes through one writer and returns once
// acknowledged, so the order of a task's outputs holds across writers.
type outputWriter struct{ small, large *kafka.Writer }

// newOutputWriter is the outputs' writer (see newWriter).
func newOutputWriter(k Kafka, log *zap.Logger, batchBytes int) *outputWriter {
	return &outputWriter{small: newWriter(k, log, batchBytes, smallBatchSize), large: newWriter(k, log, batchBytes, largeBatchSize)}
}

// WriteMessages writes msgs, in order, and waits for their acknowledgement.
func (w *outputWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) <= smallBatchSize {
		return w.small.WriteMessages(ctx, msgs...)
	}
	return w.large.WriteMessages(ctx, msgs...)
}

// Close closes both writers.
func (w *outputWriter) Close() error {
	return errors.Join(w.small.Close(), w.large.Close())
}

// newWriter is an output writer: acks=all, murmur2 keys, one short-lived
// batch per commit, batches of at most batchSize messages and batchBytes
// (recordLimits.output).
func newWriter(k Kafka, log *zap.Logger, batchBytes, batchSize int) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(k.Brokers...),
		// Java-compatible key partitioning; Consistent hashes a nil key too
		// (DLQ records without key) so placement is deterministic.
		Balancer:     &kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafka.RequireAll,
		// kafka-go's default BatchTimeout is 1s; a task writes a whole commit
		// batch at once and waits, so a short timeout only cuts latency.
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    batchSize,
		// One batch per partition per request: within the smallest output
		// topic's max.message.bytes, read at start. The writer refuses a
		// single message above it (dead letters are cut to fit it).
		BatchBytes:  int64(batchBytes),
		MaxAttempts: 5,
		Transport:   &partitionsCache{next: k.transport(), ttl: partitionsCacheTTL},
		ErrorLogger: kafka.LoggerFunc(log.Sugar().Debugf),
	}
}

// partitionsCacheTTL is how long the writer's partitions cache keeps a
// topic's metadata.
const partitionsCacheTTL = time.Second

// partitionsCache is the writer's transport: kafka-go's Writer asks the
// transport for the metadata of a message's topic once per message (its
// partition count, for the balancer), and the Transport answers each from
// its cache with a fresh copy (~110 allocated bytes and a lock per message:
// a day change writes a siren-daily record per SIREN). partitionsCache keeps
// the answer of such a request (one topic, no auto-creation, no error) for
// ttl and passes every other request on. The Transport's own cache is
// refreshed every MetadataTTL: this one adds at most ttl to how late a
// topic's new partitions are used.
type partitionsCache struct {
	next kafka.RoundTripper
	ttl  time.Duration

	mu     sync.Mutex
	topics map[string]*cachedTopic
}

type cachedTopic struct {
	resp *metadataAPI.Response
	at   time.Time
	hits int // since at
}

// partitionsCacheClockEvery: the clock is read on one hit in this many (a
// time.Now per message costs more than the rest of the lookup).
const partitionsCacheClockEvery = 256

func (c *partitionsCache) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	m, ok := req.(*metadataAPI.Request)
	if !ok || len(m.TopicNames) != 1 || m.AllowAutoTopicCreation {
		return c.next.RoundTrip(ctx, addr, req)
	}
	topic := m.TopicNames[0]
	c.mu.Lock()
	if e := c.topics[topic]; e != nil {
		e.hits++
		if e.hits%partitionsCacheClockEvery != 0 || time.Since(e.at) < c.ttl {
			resp := e.resp
			c.mu.Unlock()
			return resp, nil
		}
	}
	c.mu.Unlock()
	now := time.Now()
	r, err := c.next.RoundTrip(ctx, addr, req)
	if err != nil {
		return r, err
	}
	if mr, ok := r.(*metadataAPI.Response); ok && len(mr.Topics) == 1 && mr.Topics[0].Name == topic && mr.Topics[0].ErrorCode == 0 {
		c.mu.Lock()
		if c.topics == nil {
			c.topics = map[string]*cachedTopic{}
		}
		c.topics[topic] = &cachedTopic{resp: mr, at: now}
		c.mu.Unlock()
	}
	return r, nil
}

// listOffsets returns the first and last offsets of partition p of each
// topic. A failed call and an error inside the answer are both retried with
// backoff, up to listOffsetsAttempts (about 12 s): kafka-go splits the
// request into sub-requests and reports one that failed (right after a
// broker restart: "[-1] Unknown: an unexpected server error occurred") as
// the partition's error, not as the call's. A configuration error
// (authorization) is returned at once; what remains after the attempts
// restarts the task (faults.go).
func listOffsets(ctx context.Context, client *kafka.Client, topics []string, p int32) (first, last []int64, err error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range topics {
		req.Topics[t] = []kafka.OffsetRequest{kafka.FirstOffsetOf(int(p)), kafka.LastOffsetOf(int(p))}
	}
	for attempt := 0; ; attempt++ {
		first, last, err = listOffsetsOnce(ctx, client, req, topics, p)
		if err == nil || ctx.Err() != nil || attempt+1 >= listOffsetsAttempts || classify(err) != faultTransient {
			return first, last, err
		}
		sleepCtx(ctx, backoff(attempt))
	}
}

// listOffsetsAttempts bounds listOffsets' retries.
const listOffsetsAttempts = 10

func listOffsetsOnce(ctx context.Context, client *kafka.Client, req *kafka.ListOffsetsRequest, topics []string, p int32) (first, last []int64, err error) {
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("partition %d: list offsets: %w", p, err)
	}
	first = make([]int64, len(topics))
	last = make([]int64, len(topics))
	for i, t := range topics {
		found := false
		for _, po := range resp.Topics[t] {
			if int32(po.Partition) != p {
				continue
			}
			if po.Error != nil {
				return nil, nil, fmt.Errorf("list offsets %s/%d: %w", t, p, po.Error)
			}
			first[i], last[i] = po.FirstOffset, po.LastOffset
			found = true
		}
		if !found {
			return nil, nil, fmt.Errorf("list offsets %s/%d: %w", t, p, errPartitionMissing)
		}
	}
	return first, last, nil
}

// DefaultMaxMessageBytes is Kafka's default max.message.bytes (1 MiB plus
// the 12 bytes of a legacy log entry header): the limit assumed for a topic
// whose configuration cannot be read.
const DefaultMaxMessageBytes = 1_048_588

// batchOverhead is the header of a v2 record batch: the broker measures a
// whole batch, header included, against max.message.bytes.
const batchOverhead = 61

// recordOverhead and headerOverhead bound a record's framing in a v2 batch
// beyond its key, value and header bytes: the attributes byte, varints of at
// most 5 bytes for the length, offset delta, key and value lengths and
// header count, 10 for the timestamp delta; 10 per header for its two
// lengths. kafka-go's Writer counts a message (its BatchBytes) within the
// same bound.
const (
	recordOverhead = 40
	headerOverhead = 10
)

// recordBytes bounds the bytes m takes in a record batch.
func recordBytes(m *kafka.Message) int {
	n := recordOverhead + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// recordLimits are the byte budgets of a task's writes (recordBytes summed
// over one produce batch), from the max.message.bytes of the topics it
// writes, read at start: a write the broker refuses as too large would fail
// the same way on every retry and stop the partition. Zero fields take
// Kafka's default limit (withDefaults).
type recordLimits struct {
	// output bounds a batch to an output topic (segment changes, churn
	// alerts, dead letters): the smallest of their limits less the batch
	// header, since one writer serves them all (its BatchBytes). A dead
	// letter is cut to fit it (fitDeadLetter).
	output int
	// changelog bounds a batch to the changelog topic (the produce chunk);
	// a state record larger than it refuses the commit (errRecordTooLarge).
	changelog int
}

// budget is what the records of one batch may take on a topic whose
// max.message.bytes is maxMessageBytes.
func budget(maxMessageBytes int) int { return maxMessageBytes - batchOverhead }

func (l recordLimits) withDefaults() recordLimits {
	if l.output <= 0 {
		l.output = budget(DefaultMaxMessageBytes)
	}
	if l.changelog <= 0 {
		l.changelog = budget(DefaultMaxMessageBytes)
	}
	return l
}

// readRecordLimits reads the max.message.bytes of a task's output topics and
// changelog ("": none) and returns its budgets.
func readRecordLimits(ctx context.Context, client *kafka.Client, r routes, changelog string, log *zap.Logger) recordLimits {
	topics := r.topics()
	if changelog != "" {
		topics = append(topics, changelog)
	}
	maxBytes := readMaxMessageBytes(ctx, client, topics, log)
	var l recordLimits
	for _, t := range r.topics() {
		if b := budget(maxBytes[t]); l.output == 0 || b < l.output {
			l.output = b
		}
	}
	if changelog != "" {
		l.changelog = budget(maxBytes[changelog])
	}
	l = l.withDefaults()
	log.Info("record size limits (max.message.bytes less the batch header)",
		zap.Any("max_message_bytes", maxBytes), zap.Int("output_batch_bytes", l.output), zap.Int("changelog_batch_bytes", l.changelog))
	return l
}

// readMaxMessageBytes returns the max.message.bytes of each topic: the
// topic's configuration (DescribeConfigs), else the broker's
// message.max.bytes, else DefaultMaxMessageBytes with a WARN. It never
// fails: the limits only size writes, and a limit below the one assumed
// shows as a write error that stops the task loudly, not as a stuck
// partition.
func readMaxMessageBytes(ctx context.Context, client *kafka.Client, topics []string, log *zap.Logger) map[string]int {
	out := make(map[string]int, len(topics))
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range topics {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t,
			// A broker may list its own message.max.bytes with a topic
			// (kfake does when it is set): the smaller of the two wins.
			ConfigNames: []string{"max.message.bytes", "message.max.bytes"},
		})
	}
	resp, err := describeConfigs(ctx, client, req)
	var missing []string
	for _, t := range topics {
		if v, ok := configBytes(resp, kafka.ResourceTypeTopic, t); ok {
			out[t] = v
		} else {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return out
	}
	v, berr := brokerMaxMessageBytes(ctx, client)
	if berr != nil {
		v = DefaultMaxMessageBytes
		log.Warn("cannot read max.message.bytes of topics nor the broker's message.max.bytes: assuming Kafka's default",
			zap.Strings("topics", missing), zap.Int("max_message_bytes", v), zap.NamedError("topic_error", err), zap.NamedError("broker_error", berr))
	}
	for _, t := range missing {
		out[t] = v
	}
	return out
}

// brokerMaxMessageBytes reads message.max.bytes of the controller.
func brokerMaxMessageBytes(ctx context.Context, client *kafka.Client) (int, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return 0, err
	}
	id := strconv.Itoa(meta.Controller.ID)
	resp, err := describeConfigs(ctx, client, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeBroker, ResourceName: id, ConfigNames: []string{"message.max.bytes"},
	}}})
	if err != nil {
		return 0, err
	}
	if v, ok := configBytes(resp, kafka.ResourceTypeBroker, id); ok {
		return v, nil
	}
	return 0, fmt.Errorf("broker %s: no message.max.bytes in its configuration", id)
}

// describeConfigs sends req, retrying a failed call with backoff (3 attempts).
func describeConfigs(ctx context.Context, client *kafka.Client, req *kafka.DescribeConfigsRequest) (*kafka.DescribeConfigsResponse, error) {
	for attempt := 0; ; attempt++ {
		resp, err := client.DescribeConfigs(ctx, req)
		if err == nil || ctx.Err() != nil || attempt >= 2 {
			return resp, err
		}
		sleepCtx(ctx, backoff(attempt))
	}
}

// configBytes is the smallest positive max.message.bytes or
// message.max.bytes of one resource of resp.
func configBytes(resp *kafka.DescribeConfigsResponse, typ kafka.ResourceType, name string) (int, bool) {
	if resp == nil {
		return 0, false
	}
	best := 0
	for _, r := range resp.Resources {
		if r.ResourceType != int8(typ) || r.ResourceName != name || r.Error != nil {
			continue
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName != "max.message.bytes" && e.ConfigName != "message.max.bytes" {
				continue
			}
			if v, err := strconv.Atoi(e.ConfigValue); err == nil && v > 0 && (best == 0 || v < best) {
				best = v
			}
		}
	}
	return best, best > 0
}

// backoff is the wait before retry number attempt: 50 ms doubling, at most 3 s.
func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 6)
	return min(d, 3*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}
