package processor

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
)

// countingTripper answers metadata requests for one topic with partitions
// partitions (an error once fail is set) and counts what reaches it.
type countingTripper struct {
	calls      map[string]int
	partitions int
	fail       error
}

func (t *countingTripper) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	switch m := req.(type) {
	case *metadataAPI.Request:
		t.calls[m.TopicNames[0]]++
		if t.fail != nil {
			return nil, t.fail
		}
		return &metadataAPI.Response{Topics: []metadataAPI.ResponseTopic{{Name: m.TopicNames[0], Partitions: make([]metadataAPI.ResponsePartition, t.partitions)}}}, nil
	default:
		t.calls["other"]++
		return &produceAPI.Response{}, nil
	}
}

// The writer's transport answers repeated metadata requests for a topic
// from its cache for ttl, then asks again; errors are not cached and other
// requests always pass.
func TestPartitionsCacheKeepsTopicMetadataForItsTTL(t *testing.T) {
	next := &countingTripper{calls: map[string]int{}, partitions: 4}
	c := &partitionsCache{next: next, ttl: 50 * time.Millisecond}
	ctx := context.Background()
	ask := func(topic string) int {
		t.Helper()
		r, err := c.RoundTrip(ctx, nil, &metadataAPI.Request{TopicNames: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.(*metadataAPI.Response).Topics[0].Partitions)
	}
	for range 100 {
		if n := ask("siren-daily"); n != 4 {
			t.Fatalf("partitions %d, want 4", n)
		}
		ask("segment-changes")
	}
	if next.calls["siren-daily"] != 1 || next.calls["segment-changes"] != 1 {
		t.Fatalf("metadata requests passed on: %v, want one per topic", next.calls)
	}
	for range 3 {
		if _, err := c.RoundTrip(ctx, nil, &produceAPI.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if next.calls["other"] != 3 {
		t.Fatalf("other requests passed on %d times, want 3", next.calls["other"])
	}
	// Auto-creation and multi-topic requests are never answered from the cache.
	if _, err := c.RoundTrip(ctx, nil, &metadataAPI.Request{TopicNames: []string{"siren-daily"}, AllowAutoTopicCreation: true}); err != nil {
		t.Fatal(err)
	}
	if next.calls["siren-daily"] != 2 {
		t.Fatalf("auto-creating request answered from the cache")
	}
	// Past ttl, the clock read of one hit in partitionsCacheClockEvery
	// refreshes the entry.
	time.Sleep(60 * time.Millisecond)
	next.partitions = 8
	asked := 0
	for ask("siren-daily") != 8 {
		if asked++; asked > partitionsCacheClockEvery {
			t.Fatalf("not refreshed after ttl and %d requests", asked)
		}
	}
	// A failed refresh is passed on; the entry stays until one succeeds.
	next.fail = errors.New("broker down")
	time.Sleep(60 * time.Millisecond)
	failed := 0
	for range 2 * partitionsCacheClockEvery {
		if _, err := c.RoundTrip(ctx, nil, &metadataAPI.Request{TopicNames: []string{"siren-daily"}}); err != nil {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d failed requests in %d, want 2 (one refresh attempt per %d hits)", failed, 2*partitionsCacheClockEvery, partitionsCacheClockEvery)
	}
}
