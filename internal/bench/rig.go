package bench

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
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

// rig is a processor's Badger store filled with 90 days of realistic state
// for n SIRENs (the scale and warm benches): fresh topics, the store, one
// ticker SIREN per partition whose events move stream time, and replays of
// the topics into the store.
type rig struct {
	cfg     Config
	n       int
	parts   int
	topics  processor.Topics
	k       processor.Kafka
	ro      processor.ReplayOptions
	dir     string
	store   *state.Store
	codec   *schemas.Codec
	w       *kafka.Writer
	partOf  func(string) int
	tickers []string

	dcMu sync.Mutex
	dcs  []processor.DayChange
}

// newRig creates the topics (prefix) and an empty store; close removes it.
func newRig(ctx context.Context, cfg Config, prefix string, n int) (*rig, error) {
	r := &rig{cfg: cfg, n: n, topics: topicsFor(prefix)}
	r.k = processor.Kafka{Brokers: cfg.Brokers, ClientID: "sirenstream-bench"}
	r.ro = processor.ReplayOptions{OutputTopic: prefix + "out", DLQTopic: prefix + "out-dlq"}
	parts, err := processor.EnsureTopics(ctx, r.k, r.topics, cfg.Partitions, 1, cfg.Logger, r.ro.OutputTopic, r.ro.DLQTopic)
	if err != nil {
		return nil, err
	}
	r.parts = parts
	if r.dir, err = os.MkdirTemp(cfg.WorkDir, "sirenstream-bench-scale-"); err != nil {
		return nil, err
	}
	if r.store, err = processor.OpenStore(state.Options{Dir: r.dir, Logger: cfg.Logger, NoIdleGC: true}); err != nil {
		os.RemoveAll(r.dir)
		return nil, err
	}
	if r.codec, err = schemas.NewCodec(schemas.Config{}); err != nil {
		r.close()
		return nil, err
	}
	r.w = load.Writer(cfg.Brokers, processor.Transport(r.k))
	bal := &kafka.Murmur2Balancer{}
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	r.partOf = func(s string) int { return bal.Balance(kafka.Message{Key: []byte(s)}, ids...) }
	// One ticker SIREN per partition (index range far from the states').
	r.tickers = make([]string, parts)
	found := 0
	for j := 0; found < parts; j++ {
		s := gen.SIREN(60_000_000 + j)
		if p := r.partOf(s); r.tickers[p] == "" {
			r.tickers[p] = s
			found++
		}
	}
	return r, nil
}

// closeStore closes the store (once) and returns its allocated bytes on disk.
func (r *rig) closeStore() (int64, error) {
	if r.store == nil {
		return 0, nil
	}
	err := r.store.Close()
	r.store = nil
	disk, _ := diskUsage(r.dir)
	return disk, err
}

func (r *rig) close() {
	if r.w != nil {
		r.w.Close()
	}
	r.closeStore()
	os.RemoveAll(r.dir)
}

// tickMessages are one usage event per partition at the start of day D+day.
func (r *rig) tickMessages(day int) ([]kafka.Message, error) {
	t := scaleDay.AddDate(0, 0, day).Add(time.Second)
	var msgs []kafka.Message
	for _, s := range r.tickers {
		ev := engine.Event{Kind: engine.KindUsage, EventID: "tick-" + strconv.Itoa(day), SIREN: s, EventTime: t.UnixMilli(),
			SiteID: "t", PostalCode: "75001", BytesUp: 1, BytesDown: 1}
		val, err := r.codec.EncodeEvent(nil, &ev)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, kafka.Message{Topic: r.topics.Usage, Key: []byte(s), Value: val, Time: t})
	}
	return msgs, nil
}

// tick produces the ticker events of day D+day: the next replay changes day.
func (r *rig) tick(ctx context.Context, day int) error {
	msgs, err := r.tickMessages(day)
	if err != nil {
		return err
	}
	return r.w.WriteMessages(ctx, msgs...)
}

// replay runs processor.Replay of the rig's topics into its store with the
// processor's defaults, and returns the segment changes and records taken.
func (r *rig) replay(ctx context.Context) (changes, consumed int64, err error) {
	// Rules default-1: the sweeps of BENCHMARKS.md were measured under
	// them (default-2's 30-day percentile warm-up would leave these short
	// runs without DATA_HUNGRY changes).
	p, err := processor.New(processor.Config{Kafka: r.k, Topics: r.topics, Logger: r.cfg.Logger, Codec: r.codec, Store: r.store, OnDayChange: r.onDay,
		Rules: engine.RulesV1()})
	if err != nil {
		return 0, 0, err
	}
	err = p.Replay(ctx, r.ro)
	for _, tp := range p.Progress() {
		changes += tp.Changes
		consumed += tp.Consumed
	}
	return changes, consumed, err
}

func (r *rig) onDay(dc processor.DayChange) {
	r.dcMu.Lock()
	r.dcs = append(r.dcs, dc)
	r.dcMu.Unlock()
}

// dayChanges returns the day changes observed since the last call.
func (r *rig) dayChanges() []processor.DayChange {
	r.dcMu.Lock()
	defer r.dcMu.Unlock()
	out := r.dcs
	r.dcs = nil
	return out
}

// build writes the 90-day states of SIRENs 0..n-1 (after a seed replay set
// every partition's checkpoint at stream day D) and returns how long it took.
func (r *rig) build() (time.Duration, error) {
	start := time.Now()
	pidx := make([]uint8, r.n)
	for i := range pidx {
		pidx[i] = uint8(r.partOf(gen.SIREN(i)))
	}
	workers := min(runtime.GOMAXPROCS(0), r.parts)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[wk] = buildPartitions(r.store, r.n, pidx, func(p int) bool { return p%workers == wk }, r.parts)
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// headerKeys counts the store's header keys over every partition.
func (r *rig) headerKeys() (int, error) {
	headers := 0
	for p := int32(0); p < int32(r.parts); p++ {
		h, err := r.store.Headers(p)
		if err != nil {
			return 0, err
		}
		headers += h
	}
	return headers, nil
}

// buildSettled puts stream time D in every partition's checkpoint (a replay
// of one event per partition), builds the 90-day states and waits for
// Badger's compaction of them: the build writes the whole store in minutes
// and that compaction belongs to no day change (a real backfill spreads the
// same writes over hours). It returns the build and settle times and the
// RSS after a GC, and reports them under label.
func (r *rig) buildSettled(ctx context.Context, cfg Config, label string) (build, settle float64, rss int64, err error) {
	if err = r.tick(ctx, 0); err != nil {
		return
	}
	if _, _, err = r.replay(ctx); err != nil {
		return
	}
	b, err := r.build()
	if err != nil {
		return
	}
	s, err := settleCompaction(ctx, r.store)
	if err != nil {
		return
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss = currentRSS()
	cfg.Progress("%s %d: states built in %.1fs, compaction settled %.1fs later, RSS %d MiB", label, r.n, b.Seconds(), s.Seconds(), rss>>20)
	return b.Seconds(), s.Seconds(), rss, nil
}
