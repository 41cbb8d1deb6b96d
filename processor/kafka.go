package processor

// Kafka client, reader and writer construction, in one place: every
// connection the processor opens is built here from Config.Kafka.

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
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

// newWriter is the outputs' writer: acks=all, murmur2 keys, one short-lived
// batch per commit.
func newWriter(k Kafka, log *zap.Logger) *kafka.Writer {
	return &kafka.Writer{
		Addr: kafka.TCP(k.Brokers...),
		// Java-compatible key partitioning; Consistent hashes a nil key too
		// (DLQ records without key) so placement is deterministic.
		Balancer:     &kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafka.RequireAll,
		// kafka-go's default BatchTimeout is 1s; a task writes a whole commit
		// batch at once and waits, so a short timeout only cuts latency.
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    5000,
		// One batch per partition per request: stay under the broker's
		// default max.message.bytes (1 MiB), or a commit with big dead
		// letters is rejected (MESSAGE_TOO_LARGE) forever and the stream stops.
		BatchBytes:  1_000_000,
		MaxAttempts: 5,
		Transport:   k.transport(),
		ErrorLogger: kafka.LoggerFunc(log.Sugar().Debugf),
	}
}

// listOffsets returns the first and last offsets of partition p of each
// topic, retrying a failed call with backoff (20 attempts).
func listOffsets(ctx context.Context, client *kafka.Client, topics []string, p int32) (first, last []int64, err error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range topics {
		req.Topics[t] = []kafka.OffsetRequest{kafka.FirstOffsetOf(int(p)), kafka.LastOffsetOf(int(p))}
	}
	var resp *kafka.ListOffsetsResponse
	for attempt := 0; ; attempt++ {
		resp, err = client.ListOffsets(ctx, req)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= 20 {
			return nil, nil, fmt.Errorf("partition %d: list offsets: %w", p, err)
		}
		sleepCtx(ctx, backoff(attempt))
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
			return nil, nil, fmt.Errorf("list offsets %s/%d: partition missing from answer", t, p)
		}
	}
	return first, last, nil
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
