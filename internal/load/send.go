package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/produce"
)

// Retries of a chunk's failed partitions: the transport's metadata cache
// (which routes the requests) refreshes every few seconds, so the attempts
// span about 15 s.
const (
	maxAttempts = 20
	maxBackoff  = time.Second
	// brokerTimeout is how long the broker may wait for the replicas' acks;
	// requestTimeout bounds a whole produce round trip.
	brokerTimeout  = 30 * time.Second
	requestTimeout = brokerTimeout + 15*time.Second
)

// rec is one record of a chunk, kept as bytes so that a retry can resend it.
type rec struct {
	topic      string
	key, value []byte
	timeMs     int64
}

// sender writes one chunk at a time as a single produce request per leader
// broker (kafka-go's Writer would send one request per partition and wait
// for its batch timer) and returns once all of it is acknowledged. Only the
// partitions that failed are resent.
type sender struct {
	client   *kafka.Client
	balancer kafka.Balancer
	acks     int16
	attrs    int16 // compression codec of the record batches

	ids map[string][]int // topic → partition ids 0..n-1, for the balancer
}

type topicPartition struct {
	topic     string
	partition int32
}

// newSender sends through w's address and transport with w's balancer,
// required acks and compression.
func newSender(w *kafka.Writer) *sender {
	transport := w.Transport
	if transport == nil {
		transport = kafka.DefaultTransport // as kafka.Writer does
	}
	s := &sender{
		client:   &kafka.Client{Addr: w.Addr, Transport: transport, Timeout: 30 * time.Second},
		balancer: w.Balancer,
		acks:     int16(w.RequiredAcks),
		attrs:    int16(protocol.Attributes(w.Compression) & 0x7),
		ids:      map[string][]int{},
	}
	if s.balancer == nil {
		s.balancer = &kafka.RoundRobin{} // kafka.Writer's default
	}
	return s
}

// send writes recs and waits for their acknowledgement.
func (s *sender) send(ctx context.Context, recs []rec) error {
	parts, err := s.assign(ctx, recs)
	if err != nil {
		return err
	}
	todo := make([]topicPartition, 0, len(parts))
	for tp := range parts {
		todo = append(todo, tp)
	}
	slices.SortFunc(todo, func(a, b topicPartition) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err, fatal error
		todo, err, fatal = s.round(ctx, recs, parts, todo)
		if fatal != nil {
			return fatal
		}
		if len(todo) == 0 {
			return nil
		}
		if attempt >= maxAttempts || ctx.Err() != nil {
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// assign maps each record to its partition; the result lists the indexes of
// recs per partition, in order.
func (s *sender) assign(ctx context.Context, recs []rec) (map[topicPartition][]int32, error) {
	parts := map[topicPartition][]int32{}
	for i := range recs {
		r := &recs[i]
		ids, err := s.partitions(ctx, r.topic)
		if err != nil {
			return nil, err
		}
		p := s.balancer.Balance(kafka.Message{Topic: r.topic, Key: r.key, Value: r.value}, ids...)
		tp := topicPartition{r.topic, int32(p)}
		parts[tp] = append(parts[tp], int32(i))
	}
	return parts, nil
}

// partitions returns topic's partition ids, read once. A topic created
// moments ago may be missing from the transport's metadata cache for a few
// seconds: that is retried.
func (s *sender) partitions(ctx context.Context, topic string) ([]int, error) {
	if ids, ok := s.ids[topic]; ok {
		return ids, nil
	}
	t, err := s.topic(ctx, topic)
	for backoff, attempt := 50*time.Millisecond, 1; errors.Is(err, kafka.UnknownTopicOrPartition) && attempt < maxAttempts; attempt++ {
		if err := sleep(ctx, backoff); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, maxBackoff)
		t, err = s.topic(ctx, topic)
	}
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(t.Partitions))
	for i := range ids {
		ids[i] = i
	}
	s.ids[topic] = ids
	return ids, nil
}

func (s *sender) topic(ctx context.Context, topic string) (kafka.Topic, error) {
	// Served from the transport's metadata cache: the same view of leaders
	// that routes the produce requests.
	meta, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return kafka.Topic{}, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range meta.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return t, fmt.Errorf("metadata of %s: %w", topic, t.Error)
			}
			return t, nil
		}
	}
	return kafka.Topic{}, fmt.Errorf("metadata of %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// round sends todo's records, one request per leader in parallel, and
// returns the partitions to retry with the last retriable error, or a fatal
// error.
func (s *sender) round(ctx context.Context, recs []rec, parts map[topicPartition][]int32, todo []topicPartition) (failed []topicPartition, err, fatal error) {
	byLeader, failed, err := s.leaders(ctx, todo)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, tps := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, e, fe := s.produce(ctx, recs, parts, tps)
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, f...)
			if e != nil {
				err = e
			}
			if fe != nil {
				fatal = fe
			}
		}()
	}
	wg.Wait()
	return failed, err, fatal
}

// leaders groups todo by leader broker; partitions whose leader is unknown
// are returned as failed.
func (s *sender) leaders(ctx context.Context, todo []topicPartition) (byLeader [][]topicPartition, failed []topicPartition, err error) {
	index := map[int]int{} // leader id → index in byLeader
	metas := map[string]kafka.Topic{}
	for _, tp := range todo {
		t, ok := metas[tp.topic]
		if !ok {
			if t, err = s.topic(ctx, tp.topic); err != nil {
				failed = append(failed, tp)
				continue
			}
			metas[tp.topic] = t
		}
		leader := -1
		for _, p := range t.Partitions {
			if p.ID == int(tp.partition) && p.Leader.Host != "" {
				leader = p.Leader.ID
			}
		}
		if leader < 0 {
			failed = append(failed, tp)
			err = fmt.Errorf("%s/%d: %w", tp.topic, tp.partition, kafka.LeaderNotAvailable)
			continue
		}
		i, ok := index[leader]
		if !ok {
			i = len(byLeader)
			index[leader] = i
			byLeader = append(byLeader, nil)
		}
		byLeader[i] = append(byLeader[i], tp)
	}
	return byLeader, failed, err
}

// produce sends tps's records in one request and returns the partitions
// that failed with a retriable error (a request that failed as a whole
// counts as retriable) with the error, or a fatal error (a partition error
// that retrying does not heal, such as MESSAGE_TOO_LARGE).
func (s *sender) produce(ctx context.Context, recs []rec, parts map[topicPartition][]int32, tps []topicPartition) (failed []topicPartition, err, fatal error) {
	req := &produce.Request{Acks: s.acks, Timeout: int32(brokerTimeout.Milliseconds())}
	for _, tp := range tps {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.topic {
			req.Topics = append(req.Topics, produce.RequestTopic{Topic: tp.topic})
		}
		idx := parts[tp]
		records := make([]kafka.Record, len(idx))
		for k, i := range idx {
			r := &recs[i]
			records[k] = kafka.Record{Time: time.UnixMilli(r.timeMs), Key: kafka.NewBytes(r.key), Value: kafka.NewBytes(r.value)}
		}
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, produce.RequestPartition{
			Partition: tp.partition,
			RecordSet: protocol.RecordSet{Attributes: protocol.Attributes(s.attrs), Records: protocol.NewRecordReader(records...)},
		})
	}
	// A broker that never answers must not hang the load: the attempt times
	// out and is retried.
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	m, err := s.client.Transport.RoundTrip(rctx, s.client.Addr, req)
	if err != nil {
		return tps, fmt.Errorf("produce %s: %w", describeTPs(tps), err), nil
	}
	if s.acks == 0 {
		return nil, nil, nil
	}
	resp, ok := m.(*produce.Response)
	if !ok {
		return tps, fmt.Errorf("produce %s: unexpected response %T", describeTPs(tps), m), nil
	}
	var errs []error
	answered := map[topicPartition]bool{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			tp := topicPartition{t.Topic, p.Partition}
			answered[tp] = true
			if p.ErrorCode == 0 {
				continue
			}
			e := kafka.Error(p.ErrorCode)
			if !e.Temporary() {
				return nil, nil, fmt.Errorf("produce %s/%d: %w", tp.topic, tp.partition, e)
			}
			failed = append(failed, tp)
			errs = append(errs, fmt.Errorf("produce %s/%d: %w", tp.topic, tp.partition, e))
		}
	}
	for _, tp := range tps {
		if !answered[tp] {
			failed = append(failed, tp)
			errs = append(errs, fmt.Errorf("produce %s/%d: no answer", tp.topic, tp.partition))
		}
	}
	return failed, errors.Join(errs...), nil
}

func describeTPs(tps []topicPartition) string {
	if len(tps) == 1 {
		return fmt.Sprintf("%s/%d", tps[0].topic, tps[0].partition)
	}
	return fmt.Sprintf("%d partitions (%s/%d, ...)", len(tps), tps[0].topic, tps[0].partition)
}
