package ops

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// segmentNames are the segment labels in engine bit order (sorted).
var segmentNames = engine.AllSegments.Names()

const numSegments = 6

// Limits of the in-memory views behind the live page.
const (
	recentCap       = 100 // recent segment changes kept per partition
	timelineCap     = 720 // timeline points kept; older ones are merged
	timelineStartMs = 3600 * 1000
)

// MetricsConfig configures NewMetrics. Zero values are valid.
type MetricsConfig struct {
	// StateSize returns the state store's size in bytes (LSM tree, value
	// log), e.g. (*state.Store).Size; nil exports no state size.
	StateSize func() (lsm, vlog int64)
	// Version and Commit label sirenstream_build_info (empty: "unknown").
	Version, Commit string
	// NoRuntime leaves out the Go runtime and process collectors (tests that
	// compare whole scrapes).
	NoRuntime bool
}

// Metrics implements processor.Metrics with Prometheus collectors in its own
// registry (never the global default one) and keeps the in-memory views of
// the live page: segment counts per owned partition, the counts over stream
// time, recent segment changes, lag and stream time per partition.
//
// Every method is safe for concurrent use. The per-record methods (Consumed,
// Processed) take a read lock and find a cached counter: no allocation.
type Metrics struct {
	reg *prometheus.Registry

	consumed     *prometheus.CounterVec // topic, partition
	processed    *prometheus.CounterVec // topic, partition
	deadLettered *prometheus.CounterVec // topic, partition, reason
	lag          *prometheus.GaugeVec   // topic, partition
	streamTime   *prometheus.GaugeVec   // partition
	transitions  *prometheus.CounterVec // segment, direction
	flaps        *prometheus.CounterVec // segment
	changes      *prometheus.CounterVec // partition
	commitTime   prometheus.Histogram
	committed    prometheus.Counter
	restoreRead  *prometheus.GaugeVec // partition
	restoreTotal *prometheus.GaugeVec // partition
	owned        prometheus.Gauge
	boundHits    *prometheus.CounterVec // bound
	repairs      *prometheus.CounterVec // partition
	corrections  prometheus.Counter
	inputLag     *prometheus.GaugeVec   // topic, partition
	outcomes     *prometheus.CounterVec // offer, group, converted

	hotMu sync.RWMutex
	hot   map[int32]map[string]*hotCounters

	mu       sync.Mutex
	parts    map[int32]*partView
	ownedSet []int32
	maxMs    int64 // largest stream time reported by any task
	timeline timeline
	recent   recentChanges // recent.go
	since    sinceIndex    // since.go (its own lock)
}

type hotCounters struct{ consumed, processed prometheus.Counter }

// partView is what the live views know about one partition.
type partView struct {
	baseline     bool // segment counts known (baseline scanned)
	segs         [numSegments]int64
	streamMs     int64
	lag          map[string]int64
	restoreRead  int64
	restoreTotal int64
}

// NewMetrics builds the collectors and registers them in a new registry.
func NewMetrics(cfg MetricsConfig) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		hot:      map[int32]map[string]*hotCounters{},
		parts:    map[int32]*partView{},
		timeline: timeline{bucketMs: timelineStartMs},
	}
	const ns = "sirenstream"
	m.consumed = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
		Help: "Input records taken by a partition task (consumed = processed + dead-lettered, per partition)."}, []string{"topic", "partition"})
	m.processed = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_processed_total",
		Help: "Input records applied to SIREN state."}, []string{"topic", "partition"})
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dead_lettered_total",
		Help: "Input records written to the dead-letter topic, by reason (the DLQ error header)."}, []string{"topic", "partition", "reason"})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "consumer_lag_records",
		Help: "High watermark minus the next offset to process, per input topic and owned partition."}, []string{"topic", "partition"})
	m.streamTime = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "stream_time_seconds",
		Help: "Stream time (largest processed event_time, Unix seconds) of each owned partition task."}, []string{"partition"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "segment_transitions_total",
		Help: "SIRENs entering or leaving a segment (direction entered|left)."}, []string{"segment", "direction"})
	m.flaps = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "segment_flaps_total",
		Help: "Entries into a segment within 7 days (event time) of the same SIREN leaving it: an offer sent, withdrawn and sent again."}, []string{"segment"})
	for _, name := range segmentNames {
		m.flaps.WithLabelValues(name) // every segment exported, at 0
	}
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "segment_changes_total",
		Help: "Segment-change events emitted."}, []string{"partition"})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "commit_duration_seconds",
		Help:    "Duration of a task commit: outputs acknowledged, then the Badger transaction with state and offsets.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}) // 1 ms … 8 s
	m.committed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "committed_states_total",
		Help: "SIREN states written by commits."})
	m.restoreRead = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "restore_records_read",
		Help: "Changelog records restored so far for a partition."}, []string{"partition"})
	m.restoreTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "restore_records_total",
		Help: "Changelog records to restore for a partition."}, []string{"partition"})
	m.owned = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "owned_partitions",
		Help: "Input partitions owned by this instance."})
	m.boundHits = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bound_hits_total",
		Help: "Entries of a SIREN's state dropped or approximated by a per-SIREN bound (engine.Bound: dedup, dedup_forgotten, open_outages, ...)."}, []string{"bound"})
	for b := range engine.NumBounds {
		m.boundHits.WithLabelValues(engine.Bound(b).String()) // every bound exported, at 0
	}
	m.reg.MustRegister(m.boundHits)
	m.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "repairs_total",
		Help: "Repairs: a partition re-processed from its input topics in event-time order because records arrived after the merge had gone past them."}, []string{"partition"})
	m.corrections = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "repair_corrections_total",
		Help: "Segment changes with trigger REPAIR: SIRENs whose segments after a repair differ from the last ones emitted."})
	m.inputLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "input_lag_seconds",
		Help: "Stream time minus the latest event time taken from the input (per input topic and owned partition): how far an input is behind the others."}, []string{"topic", "partition"})
	m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "offer_outcomes_total",
		Help: "Closed eligibilities written to offer-outcomes, by offer, holdout group (TREATMENT|CONTROL) and converted (true|false); the uplift topic has the deduplicated figures."}, []string{"offer", "group", "converted"})
	m.reg.MustRegister(m.outcomes)
	m.reg.MustRegister(m.consumed, m.processed, m.deadLettered, m.lag, m.streamTime, m.transitions, m.flaps,
		m.changes, m.commitTime, m.committed, m.restoreRead, m.restoreTotal, m.owned, m.repairs, m.corrections, m.inputLag,
		&liveCollector{m: m, size: cfg.StateSize})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1, labelled with the version and commit of the running binary (sirenstream version)."}, []string{"version", "commit"})
	buildInfo.WithLabelValues(orUnknown(cfg.Version), orUnknown(cfg.Commit)).Set(1)
	m.reg.MustRegister(buildInfo)
	if !cfg.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Registry returns the registry holding every sirenstream collector.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var _ processor.Metrics = (*Metrics)(nil)

func partLabel(p int32) string { return strconv.Itoa(int(p)) }

func (m *Metrics) counters(topic string, p int32) *hotCounters {
	m.hotMu.RLock()
	c := m.hot[p][topic]
	m.hotMu.RUnlock()
	if c != nil {
		return c
	}
	m.hotMu.Lock()
	defer m.hotMu.Unlock()
	if m.hot[p] == nil {
		m.hot[p] = map[string]*hotCounters{}
	}
	if c = m.hot[p][topic]; c == nil {
		l := partLabel(p)
		c = &hotCounters{consumed: m.consumed.WithLabelValues(topic, l), processed: m.processed.WithLabelValues(topic, l)}
		m.hot[p][topic] = c
	}
	return c
}

// Consumed implements processor.Metrics.
func (m *Metrics) Consumed(topic string, p int32) { m.counters(topic, p).consumed.Inc() }

// Processed implements processor.Metrics.
func (m *Metrics) Processed(topic string, p int32) { m.counters(topic, p).processed.Inc() }

// DeadLettered implements processor.Metrics.
func (m *Metrics) DeadLettered(topic string, p int32, reason string) {
	m.deadLettered.WithLabelValues(topic, partLabel(p), reason).Inc()
}

// Repair implements processor.Metrics.
func (m *Metrics) Repair(p int32, corrections int) {
	m.repairs.WithLabelValues(strconv.Itoa(int(p))).Inc()
	m.corrections.Add(float64(corrections))
}

// InputLag implements processor.Metrics.
func (m *Metrics) InputLag(topic string, p int32, seconds float64) {
	m.inputLag.WithLabelValues(topic, strconv.Itoa(int(p))).Set(seconds)
}

// Outcome implements processor.Metrics.
func (m *Metrics) Outcome(_ int32, offer string, control, converted bool) {
	group := "TREATMENT"
	if control {
		group = "CONTROL"
	}
	m.outcomes.WithLabelValues(offer, group, strconv.FormatBool(converted)).Inc()
}

// BoundHit implements processor.Metrics.
func (m *Metrics) BoundHit(_ int32, bound string, n uint64) {
	m.boundHits.WithLabelValues(bound).Add(float64(n))
}

// Transition implements processor.Metrics.
func (m *Metrics) Transition(segment string, entered bool) {
	dir := "left"
	if entered {
		dir = "entered"
	}
	m.transitions.WithLabelValues(segment, dir).Inc()
}

// Flap implements processor.Metrics.
func (m *Metrics) Flap(segment string) { m.flaps.WithLabelValues(segment).Inc() }

// StreamTime implements processor.Metrics.
func (m *Metrics) StreamTime(p int32, ms int64) {
	m.streamTime.WithLabelValues(partLabel(p)).Set(float64(ms) / 1000)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.part(p).streamMs = ms
	m.advance(ms)
}

// Lag implements processor.Metrics.
func (m *Metrics) Lag(topic string, p int32, lag int64) {
	m.lag.WithLabelValues(topic, partLabel(p)).Set(float64(lag))
	m.mu.Lock()
	defer m.mu.Unlock()
	pv := m.part(p)
	if pv.lag == nil {
		pv.lag = map[string]int64{}
	}
	pv.lag[topic] = lag
}

// Commit implements processor.Metrics.
func (m *Metrics) Commit(_ int32, d time.Duration, states int) {
	m.commitTime.Observe(d.Seconds())
	m.committed.Add(float64(states))
}

// Owned implements processor.Metrics. Series of partitions no longer owned
// are deleted from the gauges (a stale lag would mislead); counters stay.
func (m *Metrics) Owned(parts []int32) {
	m.owned.Set(float64(len(parts)))
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[int32]bool{}
	for _, p := range parts {
		keep[p] = true
	}
	for p := range m.parts {
		if keep[p] {
			continue
		}
		l := partLabel(p)
		m.streamTime.DeleteLabelValues(l)
		m.lag.DeletePartialMatch(prometheus.Labels{"partition": l})
		m.restoreRead.DeleteLabelValues(l)
		m.restoreTotal.DeleteLabelValues(l)
		delete(m.parts, p)
	}
	m.ownedSet = append([]int32(nil), parts...)
	for _, p := range parts {
		// Restore gauges exist at 0 before a restore (or without one), so
		// dashboards show "nothing to restore" rather than no data.
		if pv := m.part(p); pv.restoreTotal == 0 {
			l := partLabel(p)
			m.restoreRead.WithLabelValues(l).Set(float64(pv.restoreRead))
			m.restoreTotal.WithLabelValues(l).Set(0)
		}
	}
	m.record()
}

// RestoreProgress implements processor.Metrics.
func (m *Metrics) RestoreProgress(p int32, read, total int64) {
	l := partLabel(p)
	m.restoreRead.WithLabelValues(l).Set(float64(read))
	m.restoreTotal.WithLabelValues(l).Set(float64(total))
	m.mu.Lock()
	defer m.mu.Unlock()
	pv := m.part(p)
	pv.restoreRead, pv.restoreTotal = read, total
}

// Loaded implements processor.Metrics: the partition's segment counts start
// from the baseline of its loaded state.
func (m *Metrics) Loaded(p int32, segments map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pv := m.part(p)
	pv.segs = [numSegments]int64{}
	pv.baseline = segments != nil
	for i, name := range segmentNames {
		pv.segs[i] = segments[name]
	}
	m.record()
}

// SegmentChange implements processor.Metrics: it moves the partition's
// segment counts, extends the timeline and keeps a copy of d for the page.
func (m *Metrics) SegmentChange(p int32, d *engine.Decision) {
	m.changes.WithLabelValues(partLabel(p)).Inc()
	m.since.observe(d.SIREN, d.Seq, d.EventTime, d.Previous, d.Added, d.Removed)
	avro := schemas.AppendSegmentChange(nil, d)
	m.mu.Lock()
	defer m.mu.Unlock()
	pv := m.part(p)
	for i := range numSegments {
		bit := engine.Segments(1) << i
		if d.Added&bit != 0 {
			pv.segs[i]++
		}
		if d.Removed&bit != 0 {
			pv.segs[i]--
		}
	}
	m.recent.add(recentChange{partition: p, eventMs: d.EventTime, siren: d.SIREN, seq: d.Seq, avro: avro})
	if d.EventTime > m.maxMs {
		m.maxMs = d.EventTime
	}
	m.record()
}

// part returns p's view, creating it. m.mu must be held.
func (m *Metrics) part(p int32) *partView {
	pv := m.parts[p]
	if pv == nil {
		pv = &partView{}
		m.parts[p] = pv
	}
	return pv
}

// advance moves the instance's stream time forward. m.mu must be held.
func (m *Metrics) advance(ms int64) {
	if ms > m.maxMs {
		m.maxMs = ms
		m.record()
	}
}

// totals sums the segment counts of the owned partitions; complete is false
// when a partition's baseline is missing. m.mu must be held.
func (m *Metrics) totals() (c [numSegments]int64, complete bool) {
	complete = true
	for _, p := range m.ownedSet {
		pv := m.parts[p]
		if pv == nil || !pv.baseline {
			complete = false
			continue
		}
		for i := range c {
			c[i] += pv.segs[i]
		}
	}
	return c, complete
}

// record puts the current totals at the current stream time on the
// timeline. m.mu must be held.
func (m *Metrics) record() {
	if m.maxMs == 0 {
		return
	}
	c, _ := m.totals()
	m.timeline.record(m.maxMs, c)
}

// liveCollector exports values computed at scrape time: the SIRENs per
// segment of the owned partitions and the state store size.
type liveCollector struct {
	m    *Metrics
	size func() (lsm, vlog int64)
}

var (
	segmentSIRENsDesc = prometheus.NewDesc("sirenstream_segment_sirens",
		"SIRENs currently in a segment on this instance's partitions (baseline at task load + emitted changes).", []string{"segment"}, nil)
	stateSizeDesc = prometheus.NewDesc("sirenstream_state_size_bytes",
		"Bytes the Badger state store takes on disk (allocated blocks) by part: vlog (value log) and lsm (tables, memtable logs, manifest); measured at each scrape.", []string{"part"}, nil)
)

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- segmentSIRENsDesc
	ch <- stateSizeDesc
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	counts, _ := c.m.totals()
	c.m.mu.Unlock()
	for i, name := range segmentNames {
		ch <- prometheus.MustNewConstMetric(segmentSIRENsDesc, prometheus.GaugeValue, float64(counts[i]), name)
	}
	if c.size != nil {
		lsm, vlog := c.size()
		ch <- prometheus.MustNewConstMetric(stateSizeDesc, prometheus.GaugeValue, float64(lsm), "lsm")
		ch <- prometheus.MustNewConstMetric(stateSizeDesc, prometheus.GaugeValue, float64(vlog), "vlog")
	}
}

// timeline is a bounded series of segment counts over stream time. It keeps
// the last counts of each bucket of bucketMs; when full, the bucket doubles
// and points are merged, so the whole history stays visible at a coarser
// resolution.
type timeline struct {
	bucketMs int64
	pts      []timelinePoint
}

type timelinePoint struct {
	ms     int64
	counts [numSegments]int64
}

func (tl *timeline) record(ms int64, c [numSegments]int64) {
	n := len(tl.pts)
	if n > 0 && ms < tl.pts[n-1].ms {
		ms = tl.pts[n-1].ms
	}
	if n > 0 && ms/tl.bucketMs == tl.pts[n-1].ms/tl.bucketMs {
		tl.pts[n-1] = timelinePoint{ms, c}
		return
	}
	tl.pts = append(tl.pts, timelinePoint{ms, c})
	for len(tl.pts) > timelineCap {
		tl.bucketMs *= 2
		out := tl.pts[:0]
		for _, p := range tl.pts {
			if k := len(out); k > 0 && out[k-1].ms/tl.bucketMs == p.ms/tl.bucketMs {
				out[k-1] = p
			} else {
				out = append(out, p)
			}
		}
		tl.pts = out
	}
}
