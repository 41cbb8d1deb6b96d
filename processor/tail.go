package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// TailChanges returns the values of the last n records (at most) of the
// segment-changes topic for input partition part, oldest first: what the
// live page shows as recent changes after a restart or a rebalance. Output
// partition part holds the SIRENs of input partition part only when both
// topics have the same partition count (as EnsureTopics creates them);
// otherwise TailChanges returns an error and reads nothing. Cost: one
// metadata and one ListOffsets round trip, then one fetch of ~n records.
func (p *Processor) TailChanges(ctx context.Context, part int32, n int) ([][]byte, error) {
	topic := p.cfg.Topics.SegmentChanges
	meta, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("tail of %s: metadata: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("tail of %s: topic not found", topic)
	}
	if got, want := len(meta.Topics[0].Partitions), p.Partitions(); got != want {
		return nil, fmt.Errorf("tail of %s: %d partitions, the inputs %d: its partitions do not match the tasks'", topic, got, want)
	}
	first, last, err := listOffsets(ctx, p.client, []string{topic}, part)
	if err != nil {
		return nil, fmt.Errorf("tail of %s: %w", topic, err)
	}
	start := max(first[0], last[0]-int64(n))
	if start >= last[0] {
		return nil, nil
	}
	r := kafka.NewReader(ReaderConfig(p.cfg.Kafka, topic, part, nil))
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return nil, fmt.Errorf("tail of %s/%d: %w", topic, part, err)
	}
	var out [][]byte
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return out, fmt.Errorf("tail of %s/%d: read %d of %d records: %w", topic, part, len(out), last[0]-start, err)
			}
			return out, fmt.Errorf("tail of %s/%d@%d: %w", topic, part, start+int64(len(out)), err)
		}
		out = append(out, m.Value)
		if m.Offset >= last[0]-1 {
			return out, nil
		}
	}
}
