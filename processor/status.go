package processor

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of StatusConfig.
const (
	DefaultStatusEvery = 30 * time.Second
	// DefaultSpikeEvery: at most one dead-letter spike WARN a minute.
	DefaultSpikeEvery = time.Minute
	// DefaultSpikeWindow: dead letters are compared with the records
	// consumed over windows of about this length.
	DefaultSpikeWindow = 10 * time.Second
)

// A dead-letter spike is at least spikeMinDead dead letters that are at
// least 1/spikeShare of the records consumed in a window.
const (
	spikeMinDead = 100
	spikeShare   = 10
)

// behindRecords is the lag at which a caught-up partition counts as behind
// again (and logs "caught up" again when it is back): the lag at which the
// committer switches to catch-up batches.
const behindRecords = 20_000

// StatusConfig configures a Status. Zero values are valid.
type StatusConfig struct {
	Logger *zap.Logger
	// Every is the time between status lines (records/s, lag, dead
	// letters/s); 0: DefaultStatusEvery; negative: no status line.
	Every time.Duration
	// SpikeEvery is the least time between two dead-letter spike WARNs
	// (0: DefaultSpikeEvery); SpikeWindow the window a spike is measured
	// over (0: DefaultSpikeWindow).
	SpikeEvery, SpikeWindow time.Duration
	// Registry says a schema registry is configured: the hint for
	// unknown_schema and wrong_schema depends on it.
	Registry bool
}

// Status turns the tasks' progress into the lines an operator acts on: a
// partition caught up (once per catch-up), a periodic one-line status, and
// a rate-limited WARN when dead letters spike, naming the dominant reason
// and what to do. It reads Progress snapshots once a second and counts dead
// letters by reason through the Metrics it wraps (one mutex per dead
// letter, nothing per processed record).
type Status struct {
	cfg StatusConfig
	log *zap.Logger

	mu      sync.Mutex
	reasons map[string]int64 // dead letters by reason since start

	parts    map[int32]*partStatus
	prev     time.Time // the last snapshot, or the start
	lastLine time.Time
	line     window // since the last status line
	spike    window // since the spike window started
	warned   time.Time
}

type partStatus struct {
	behind         bool // not caught up since the task started or fell behind
	since          time.Time
	from           int64 // Consumed when it started catching up
	consumed, dead int64 // last seen
}

// window accumulates counts over a stretch of time.
type window struct {
	start          time.Time
	consumed, dead int64
	reasons        map[string]int64 // reasons at start
}

// NewStatus builds a Status; it starts nothing (Run does).
func NewStatus(cfg StatusConfig) *Status {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultStatusEvery
	}
	if cfg.SpikeEvery <= 0 {
		cfg.SpikeEvery = DefaultSpikeEvery
	}
	if cfg.SpikeWindow <= 0 {
		cfg.SpikeWindow = DefaultSpikeWindow
	}
	return &Status{cfg: cfg, log: cfg.Logger, reasons: map[string]int64{}, parts: map[int32]*partStatus{}}
}

// Metrics wraps next (nil: none) so that s counts dead letters by reason;
// give the result to Config.Metrics.
func (s *Status) Metrics(next Metrics) Metrics {
	if next == nil {
		next = nopMetrics{}
	}
	return &statusMetrics{Metrics: next, s: s}
}

type statusMetrics struct {
	Metrics
	s *Status
}

func (m *statusMetrics) DeadLettered(topic string, p int32, reason string) {
	m.s.mu.Lock()
	m.s.reasons[reason]++
	m.s.mu.Unlock()
	m.Metrics.DeadLettered(topic, p, reason)
}

// wantsBaseline: m needs the segment baseline scan of a loaded partition
// (the no-op Metrics, wrapped or not, does not).
func wantsBaseline(m Metrics) bool {
	switch x := m.(type) {
	case nopMetrics:
		return false
	case *statusMetrics:
		return wantsBaseline(x.Metrics)
	}
	return true
}

// StatusSource is what Status reads: *Processor.
type StatusSource interface {
	Progress() []TaskProgress
	Owned() []int32
}

// Run logs until ctx ends, reading src once a second; it returns nil.
func (s *Status) Run(ctx context.Context, src StatusSource) error {
	s.start(time.Now())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			s.observe(now, src.Owned(), src.Progress())
		}
	}
}

// start begins the windows at now, before the processor's tasks start:
// like their counts and the reasons, they start at 0.
func (s *Status) start(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prev, s.lastLine = now, now
	s.line = window{start: now, reasons: map[string]int64{}}
	s.spike = window{start: now, reasons: map[string]int64{}}
}

// observe takes one snapshot of the owned partitions' progress at now.
func (s *Status) observe(now time.Time, owned []int32, tps []TaskProgress) {
	if s.prev.IsZero() {
		s.start(now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.prev = now }()
	own := make(map[int32]bool, len(owned))
	for _, p := range owned {
		own[p] = true
	}
	var sum statusSum
	for _, tp := range tps {
		if !own[tp.Partition] {
			continue
		}
		s.partition(now, tp, &sum)
	}
	for p := range s.parts {
		if !own[p] {
			delete(s.parts, p) // revoked: its next task starts behind
		}
	}
	for _, w := range []*window{&s.line, &s.spike} {
		w.consumed += sum.dConsumed
		w.dead += sum.dDead
	}
	if s.cfg.Every > 0 && now.Sub(s.lastLine) >= s.cfg.Every {
		s.statusLine(now, len(owned), sum)
		s.lastLine, s.line = now, s.newWindow(now)
	}
	s.checkSpike(now)
}

// statusSum is what observe adds up over the owned partitions.
type statusSum struct {
	dConsumed, dDead int64 // since the last snapshot
	lag              int64
	caughtUp         int
	minStream        int64
}

func (s *Status) newWindow(now time.Time) window {
	r := make(map[string]int64, len(s.reasons))
	for k, v := range s.reasons {
		r[k] = v
	}
	return window{start: now, reasons: r}
}

// partition follows one task: the caught-up log and the deltas.
func (s *Status) partition(now time.Time, tp TaskProgress, sum *statusSum) {
	ps := s.parts[tp.Partition]
	if ps == nil || tp.Consumed < ps.consumed {
		// A new task (start, rebalance, restart): its counts began at 0
		// since the last snapshot.
		ps = &partStatus{behind: true, since: s.prev}
		s.parts[tp.Partition] = ps
	}
	sum.dConsumed += tp.Consumed - ps.consumed
	sum.dDead += max(tp.DeadLettered-ps.dead, 0)
	ps.consumed, ps.dead = tp.Consumed, tp.DeadLettered
	sum.lag += tp.Lag
	if tp.StreamTime > 0 && (sum.minStream == 0 || tp.StreamTime < sum.minStream) {
		sum.minStream = tp.StreamTime
	}
	switch {
	case ps.behind && tp.Loaded && tp.CaughtUp:
		ps.behind = false
		fields := []zap.Field{zap.Int32("partition", tp.Partition), zap.Int64("records", tp.Consumed-ps.from),
			zap.Duration("took", now.Sub(ps.since).Round(time.Millisecond))}
		if tp.StreamTime > 0 {
			fields = append(fields, zap.Time("stream_time", time.UnixMilli(tp.StreamTime).UTC()))
		}
		s.log.Info("partition caught up: processing records as they arrive", fields...)
	case !ps.behind && tp.Lag >= behindRecords:
		ps.behind, ps.since, ps.from = true, now, tp.Consumed
		s.log.Info("partition fell behind: catching up", zap.Int32("partition", tp.Partition), zap.Int64("lag", tp.Lag))
	}
	if !ps.behind {
		sum.caughtUp++
	}
}

func (s *Status) statusLine(now time.Time, owned int, sum statusSum) {
	secs := now.Sub(s.line.start).Seconds()
	fields := []zap.Field{
		zap.Float64("records_per_s", rate(s.line.consumed, secs)),
		zap.Int64("lag", sum.lag),
		zap.Float64("dead_letters_per_s", rate(s.line.dead, secs)),
		zap.Int("partitions", owned), zap.Int("caught_up", sum.caughtUp),
	}
	if sum.minStream > 0 {
		fields = append(fields, zap.Time("stream_time", time.UnixMilli(sum.minStream).UTC()))
	}
	s.log.Info("status", fields...)
}

func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(int64(float64(n)/secs*10)) / 10
}

// checkSpike logs a WARN when the spike window holds a spike and none was
// logged for SpikeEvery; a window without a spike restarts after
// SpikeWindow, one with a spike keeps growing until its WARN.
func (s *Status) checkSpike(now time.Time) {
	w := &s.spike
	spike := w.dead >= spikeMinDead && w.dead*spikeShare >= w.consumed
	if !spike {
		if now.Sub(w.start) >= s.cfg.SpikeWindow {
			*w = s.newWindow(now)
		}
		return
	}
	if !s.warned.IsZero() && now.Sub(s.warned) < s.cfg.SpikeEvery {
		return
	}
	type rc struct {
		reason string
		n      int64
	}
	var byReason []rc
	for r, n := range s.reasons {
		if d := n - w.reasons[r]; d > 0 {
			byReason = append(byReason, rc{r, d})
		}
	}
	sort.Slice(byReason, func(i, j int) bool {
		return byReason[i].n > byReason[j].n || (byReason[i].n == byReason[j].n && byReason[i].reason < byReason[j].reason)
	})
	if len(byReason) == 0 {
		return // counted by progress but not yet by reason: next second
	}
	top := byReason[0]
	reasons := make(map[string]int64, len(byReason))
	for _, r := range byReason {
		reasons[r.reason] = r.n
	}
	s.log.Warn(fmt.Sprintf("dead letters spike: %d of %d records in %s, %d of them %s: %s",
		w.dead, w.consumed, now.Sub(w.start).Round(time.Second), top.n, top.reason, s.hint(top.reason)),
		zap.Int64("dead_letters", w.dead), zap.Int64("records", w.consumed),
		zap.String("reason", top.reason), zap.Any("by_reason", reasons),
		zap.Duration("window", now.Sub(w.start).Round(time.Millisecond)))
	s.warned = now
	*w = s.newWindow(now)
}

// hint says what usually causes a dead-letter reason and what to do.
func (s *Status) hint(reason string) string {
	switch reason {
	case "wrong_schema", "unknown_schema":
		if !s.cfg.Registry {
			return "no schema registry is configured, so only the fixed schema ids 1-4 are read, each as its own event kind; " +
				"a producer that frames records with a registry's ids needs --schema-registry URL"
		}
		return "the registry's writer schemas for these ids are not the event kind of the topic or do not resolve against sirenstream's reader schemas; check the producer's subjects (<topic>-value)"
	case "bad_magic", "truncated":
		return "the values are not Confluent-framed Avro (0x00 + 4-byte schema id): check the producer's value serializer"
	case "malformed":
		return "the Avro bodies do not decode with the schema their id names: the producer writes with another schema than it registered"
	case "late":
		return "records older than stream time minus --allowed-lateness (and than what the windows keep): a feed re-sent or far behind the others"
	case "future":
		return "event_time is later than the record timestamp plus --max-future-skew: check the producers' clocks or raise --max-future-skew"
	case "invalid_siren":
		return "SIRENs must be 9 digits passing the Luhn check: check the producer's key and siren fields"
	case "key_mismatch":
		return "the record key is not the event's siren: the producer must key by SIREN"
	case "duplicate":
		return "events whose event_id was already processed: a producer re-sending history"
	case "invalid_event":
		return "field values out of range (negative bytes, RESOLVED without started_at...): see the error.detail header in the dead-letter topic"
	}
	return "see the error and error.detail headers in the dead-letter topic"
}
