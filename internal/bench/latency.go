package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// LatencyConfig configures RunLatency.
type LatencyConfig struct {
	// Rate is the input rate in events/s (default 10,000), kept for Duration
	// (default 30 s).
	Rate     int
	Duration time.Duration
	// ProbeEvery: one event in ProbeEvery is a probe (default 100).
	ProbeEvery int
}

// Latency is the result of RunLatency. Times are milliseconds from the
// producer's WriteMessages call for the probe record to the moment the
// segment change it causes is returned by a reader of the output topic.
type Latency struct {
	Rate          int     `json:"rate"`
	Seconds       float64 `json:"seconds"`
	Produced      int64   `json:"produced"`
	AchievedRate  float64 `json:"achieved_rate"`
	Probes        int     `json:"probes"`
	Observed      int     `json:"observed"`
	P50Ms         float64 `json:"p50_ms"`
	P90Ms         float64 `json:"p90_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	ProduceAckP50 float64 `json:"produce_ack_p50_ms"`
	ProduceAckP99 float64 `json:"produce_ack_p99_ms"`
	// CPUSecondsPerMillion: this process (processor + producer + output
	// reader) per 1M input events.
	CPUSecondsPerMillion       float64 `json:"cpu_sec_per_million"`
	BrokerCPUSecondsPerMillion float64 `json:"broker_cpu_sec_per_million,omitempty"`
	PeakRSSBytes               int64   `json:"peak_rss_bytes"`
	PeakAnonBytes              int64   `json:"peak_rss_anon_bytes"`
}

// RunLatency runs a live processor (consumer group, Badger, Kafka outputs,
// default commit settings) on fresh topics and feeds it at a fixed rate:
// usage events for cfg.SIRENs companies with event_time = now, and every
// ProbeEvery-th event a probe — the first claim (linked to an outage) of a
// SIREN never seen before, which makes it enter SLA_SENSITIVE at once. Its
// segment change (seq 1, key = the probe SIREN) is therefore caused by that
// one record, so latency = time it is read from the output topic − time the
// probe was handed to the producer.
func RunLatency(ctx context.Context, cfg Config, lc LatencyConfig) (*Latency, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lc.Rate <= 0 {
		lc.Rate = 10_000
	}
	if lc.Duration <= 0 {
		lc.Duration = 30 * time.Second
	}
	if lc.ProbeEvery <= 0 {
		lc.ProbeEvery = 100
	}
	topics := topicsFor(cfg.Prefix + "lat-")
	k := processor.Kafka{Brokers: cfg.Brokers, ClientID: "sirenstream-bench"}
	n, err := processor.EnsureTopics(ctx, k, topics, cfg.Partitions, 1, cfg.Logger)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.WorkDir, "sirenstream-bench-latency-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	store, err := processor.OpenStore(state.Options{Dir: dir, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return nil, err
	}
	p, err := processor.New(processor.Config{Kafka: k, Topics: topics, Group: cfg.Prefix + "lat", Logger: cfg.Logger, Codec: codec, Store: store})
	if err != nil {
		return nil, err
	}
	pctx, stopProc := context.WithCancel(ctx)
	defer stopProc()
	procErr := make(chan error, 1)
	go func() { procErr <- p.Run(pctx) }()
	// Wait for every partition's task to be running.
	deadline := time.Now().Add(60 * time.Second)
	for len(p.Progress()) < n {
		if time.Now().After(deadline) {
			return nil, errors.New("latency: processor did not start its tasks within 60s")
		}
		select {
		case err := <-procErr:
			return nil, fmt.Errorf("latency: processor stopped: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(500 * time.Millisecond)

	// Output readers: first arrival per key.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	rctx, stopReaders := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for part := 0; part < n; part++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rd := newReader(cfg.Brokers, topics.SegmentChanges, part)
			defer rd.Close()
			_ = rd.SetOffset(kafka.FirstOffset)
			for {
				msg, err := rd.FetchMessage(rctx)
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				if _, ok := arrived[string(msg.Key)]; !ok {
					arrived[string(msg.Key)] = now
				}
				mu.Unlock()
			}
		}()
	}
	defer func() { stopReaders(); rwg.Wait() }()

	w := load.Writer(cfg.Brokers, processor.Transport(k))
	// A write every 5 ms of a few dozen records: kafka-go allocates every
	// partition batch at BatchSize messages, and this harness's garbage at
	// load.Writer's 5,000 (~500 MB/s) would be collected by the processor
	// under test, in the same process.
	w.BatchSize = 64
	defer w.Close()
	bg := make([]string, max(cfg.SIRENs, 1))
	for i := range bg {
		bg[i] = gen.SIREN(i)
	}
	sent := map[string]time.Time{}
	var acks []time.Duration
	var produced int64
	var probes int
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var msgs []kafka.Message
	var probeIdx []int
	for time.Since(start) < lc.Duration {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-procErr:
			return nil, fmt.Errorf("latency: processor stopped: %w", err)
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds()*float64(lc.Rate)) - produced
		if due <= 0 {
			continue
		}
		now := time.Now()
		ms := now.UnixMilli()
		msgs, probeIdx = msgs[:0], probeIdx[:0]
		for j := int64(0); j < due; j++ {
			seq := produced + j
			var ev engine.Event
			topic := topics.Usage
			if seq%int64(lc.ProbeEvery) == int64(lc.ProbeEvery)-1 {
				s := gen.SIREN(2_000_000 + probes + len(probeIdx))
				ev = engine.Event{Kind: engine.KindClaim, EventID: "lc-" + s, SIREN: s, EventTime: ms,
					ClaimID: "c-" + s, OutageID: "o-1", HasOutageID: true, AmountCents: 10_000}
				topic = topics.Claims
				probeIdx = append(probeIdx, len(msgs))
			} else {
				s := bg[seq%int64(len(bg))]
				ev = engine.Event{Kind: engine.KindUsage, EventID: "lu-" + strconv.FormatInt(seq, 10), SIREN: s, EventTime: ms,
					SiteID: "s1", PostalCode: "75001", BytesUp: 1e6, BytesDown: 4e6, ActiveSIMs: 3, HasActiveSIMs: true}
			}
			val, err := codec.EncodeEvent(nil, &ev)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(ev.SIREN), Value: val, Time: now})
		}
		for _, i := range probeIdx {
			sent[string(msgs[i].Key)] = now
		}
		probes += len(probeIdx)
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return nil, fmt.Errorf("latency: produce: %w", err)
		}
		acks = append(acks, time.Since(now))
		produced += due
	}
	elapsed := time.Since(start)
	// Give the last probes time to come out.
	wait := time.Now().Add(10 * time.Second)
	for time.Now().Before(wait) {
		mu.Lock()
		seen := 0
		for s := range sent {
			if _, ok := arrived[s]; ok {
				seen++
			}
		}
		mu.Unlock()
		if seen == len(sent) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := m.stop("latency", produced)
	stopProc()
	if err := <-procErr; err != nil {
		return nil, fmt.Errorf("latency: processor: %w", err)
	}
	res := &Latency{Rate: lc.Rate, Seconds: elapsed.Seconds(), Produced: produced, AchievedRate: float64(produced) / elapsed.Seconds(),
		Probes: len(sent), CPUSecondsPerMillion: st.CPUSecondsPerMillion, BrokerCPUSecondsPerMillion: st.BrokerCPUSecondsPerMillion, PeakRSSBytes: st.PeakRSSBytes, PeakAnonBytes: st.PeakAnonBytes}
	var lat []float64
	mu.Lock()
	for s, t0 := range sent {
		if t1, ok := arrived[s]; ok {
			lat = append(lat, float64(t1.Sub(t0).Microseconds())/1000)
		}
	}
	mu.Unlock()
	res.Observed = len(lat)
	slices.Sort(lat)
	res.P50Ms, res.P90Ms, res.P99Ms = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if len(lat) > 0 {
		res.MaxMs = lat[len(lat)-1]
	}
	ackMs := make([]float64, len(acks))
	for i, a := range acks {
		ackMs[i] = float64(a.Microseconds()) / 1000
	}
	slices.Sort(ackMs)
	res.ProduceAckP50, res.ProduceAckP99 = pct(ackMs, 50), pct(ackMs, 99)
	return res, nil
}

// pct is the nearest-rank percentile of sorted xs (0 when empty).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
