package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/createtopics"
)

// FallbackPartitions is the partition count of new input topics when the
// broker does not tell its default.
const FallbackPartitions = 6

// ErrPartitionMismatch is returned by Partitions when the requested count
// differs from that of the existing topics.
var ErrPartitionMismatch = errors.New("partition count differs from the existing input topics")

// PartitionCount is the partition count a producer of the input topics uses,
// and where it came from.
type PartitionCount struct {
	N int
	// From is "existing topics", "requested", "broker default" (the
	// broker's num.partitions) or "fallback" (FallbackPartitions).
	From string
}

// Partitions decides the partition count of the input topics: that of the
// existing topics (which must agree among themselves and with want, when
// want > 0), else want, else the broker's default for new topics, else
// FallbackPartitions. It reads the metadata of topics (never auto-creating
// one). When none exists and want is 0, it creates topics[0] with the
// partition count unset (CreateTopics v4+, KIP-464: Kafka ≥ 2.4, kfake) and
// replication factor rf (0: the broker's default), so that the broker
// applies its num.partitions, and reads the count from the answer (v5+); the
// caller creates the other topics with that count. (A validate-only request
// would be side-effect free, but kafka-go then waits forever for the topic
// to appear.) transport nil uses a fresh one.
func Partitions(ctx context.Context, brokers []string, transport *kafka.Transport, topics []string, want, rf int) (PartitionCount, error) {
	if transport == nil {
		t := &kafka.Transport{MetadataTTL: time.Second}
		defer t.CloseIdleConnections()
		transport = t
	}
	addr := kafka.TCP(brokers...)
	client := &kafka.Client{Addr: addr, Timeout: 15 * time.Second, Transport: transport}
	for attempt := 0; ; attempt++ {
		have, err := existing(ctx, client, topics)
		if err != nil {
			return PartitionCount{}, err
		}
		if len(have) > 0 {
			return agree(have, want)
		}
		if want > 0 {
			return PartitionCount{N: want, From: "requested"}, nil
		}
		n, reread := createWithDefault(ctx, transport, addr, topics[0], rf)
		switch {
		case n > 0:
			return PartitionCount{N: n, From: "broker default"}, nil
		case !reread || attempt > 0:
			return PartitionCount{N: FallbackPartitions, From: "fallback"}, nil
		}
		// The topic exists now (created by an older protocol version that
		// does not answer the count, or by someone else): read its count.
	}
}

// agree checks that the existing topics agree among themselves and with
// want (when > 0) and returns their count.
func agree(have []topicCount, want int) (PartitionCount, error) {
	n := have[0].n
	for _, h := range have {
		if h.n != n {
			return PartitionCount{}, fmt.Errorf("input topics are not co-partitioned (%s): they must all have the same partition count", describe(have))
		}
	}
	if want > 0 && want != n {
		return PartitionCount{}, fmt.Errorf("%w: requested %d, existing %s", ErrPartitionMismatch, want, describe(have))
	}
	return PartitionCount{N: n, From: "existing topics"}, nil
}

type topicCount struct {
	name string
	n    int
}

func describe(have []topicCount) string {
	parts := make([]string, len(have))
	for i, h := range have {
		parts[i] = fmt.Sprintf("%s=%d", h.name, h.n)
	}
	return strings.Join(parts, " ")
}

// existing returns the partition counts of those of topics that exist, in
// the order of topics. The metadata request never auto-creates a topic.
func existing(ctx context.Context, client *kafka.Client, topics []string) ([]topicCount, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata from %s: %w", client.Addr, err)
	}
	counts := map[string]int{}
	for _, t := range meta.Topics {
		switch {
		case t.Error == nil:
			counts[t.Name] = len(t.Partitions)
		case !errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			return nil, fmt.Errorf("kafka metadata of %s: %w", t.Name, t.Error)
		}
	}
	var have []topicCount
	for _, name := range topics {
		if n, ok := counts[name]; ok {
			have = append(have, topicCount{name, n})
		}
	}
	return have, nil
}

// createWithDefault creates topic with the broker's default partition count
// and replication factor rf (0: the broker's default) and returns the count; 0 when the broker cannot do or tell it (before
// Kafka 2.4, no CREATE permission, an error), with reread set when the topic
// exists nonetheless and its count is to be read from the metadata.
func createWithDefault(ctx context.Context, transport *kafka.Transport, addr net.Addr, topic string, rf int) (n int, reread bool) {
	if rf <= 0 {
		rf = -1
	}
	resp, err := transport.RoundTrip(ctx, addr, &createtopics.Request{
		Topics:    []createtopics.RequestTopic{{Name: topic, NumPartitions: -1, ReplicationFactor: int16(rf)}},
		TimeoutMs: 10000,
	})
	if err != nil {
		return 0, false
	}
	r, ok := resp.(*createtopics.Response)
	if !ok || len(r.Topics) != 1 {
		return 0, false
	}
	if code := r.Topics[0].ErrorCode; code != 0 {
		return 0, kafka.Error(code) == kafka.TopicAlreadyExists
	}
	n = int(r.Topics[0].NumPartitions) // 0 before v5
	return n, n == 0
}
