package load

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll reads every partition of topic from its first offset up to the end
// offset at the time of the call, partition by partition (ascending), in
// offset order.
func ReadAll(ctx context.Context, brokers []string, transport *kafka.Transport, dialer *kafka.Dialer, topic string) ([]kafka.Message, error) {
	if transport == nil {
		// Not kafka-go's default transport: it caches metadata for 6 s, so a
		// topic created moments ago would look missing.
		t := &kafka.Transport{MetadataTTL: time.Second}
		defer t.CloseIdleConnections()
		transport = t
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	n := len(meta.Topics[0].Partitions)
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < n; p++ {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets %s: %w", topic, err)
	}
	first, last := make([]int64, n), make([]int64, n)
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		first[po.Partition], last[po.Partition] = po.FirstOffset, po.LastOffset
	}
	var out []kafka.Message
	for p := 0; p < n; p++ {
		if last[p] <= first[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: p, Dialer: dialer,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
		})
		if err := r.SetOffset(first[p]); err != nil {
			r.Close()
			return nil, err
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last[p] {
				break
			}
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
