package ops

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sirenstream/sirenstream/processor"
)

// Members is the answer of GET /v1/members: the consumer group's members
// (from the cached group description, at most OwnerCacheTTL old).
type Members struct {
	Group string `json:"group"`
	// Self is this instance's advertised URL ("" when it advertises none).
	Self    string             `json:"self"`
	Members []processor.Member `json:"members"`
	// Error is set when the group could not be described (Members are then
	// the last ones known, possibly none).
	Error string `json:"error,omitempty"`
}

func (s *Server) membersHandler(w http.ResponseWriter, r *http.Request) {
	p := s.cfg.Processor
	ms, err := s.members(r.Context())
	out := Members{Group: p.Group(), Self: p.HTTPAdvertise(), Members: nonNil(slices.Clone(ms))}
	if err != nil {
		out.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// Stats is the answer of GET /v1/stats: this instance's totals since it
// started, for the live page (which derives throughput from two answers:
// Δconsumed / Δnow_ms).
type Stats struct {
	NowMs        int64 `json:"now_ms"` // wall clock of the answer, Unix ms
	Consumed     int64 `json:"consumed"`
	Processed    int64 `json:"processed"`
	DeadLettered int64 `json:"dead_lettered"`
	// DeadLetters are the dead letters by reason (the DLQ error header),
	// most frequent first.
	DeadLetters []ReasonCount `json:"dead_letters"`
	// Inputs are the input topics with their lag over the owned partitions.
	Inputs []InputLag `json:"inputs"`
}

// ReasonCount is a dead-letter reason and its count.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// InputLag is one input topic's lag over the owned partitions.
type InputLag struct {
	Topic string `json:"topic"`
	// Records is the sum over the owned partitions of the high watermark
	// minus the next offset to process.
	Records int64 `json:"lag_records"`
	// Seconds is the largest sirenstream_input_lag_seconds of the owned
	// partitions: how far the input's latest event time is behind stream time.
	Seconds float64 `json:"lag_seconds"`
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	m := s.cfg.Metrics
	out := Stats{NowMs: time.Now().UnixMilli(), DeadLetters: []ReasonCount{}, Inputs: []InputLag{}}
	byReason := map[string]int64{}
	for _, dm := range collect(m.consumed) {
		out.Consumed += int64(dm.GetCounter().GetValue())
	}
	for _, dm := range collect(m.processed) {
		out.Processed += int64(dm.GetCounter().GetValue())
	}
	for _, dm := range collect(m.deadLettered) {
		n := int64(dm.GetCounter().GetValue())
		out.DeadLettered += n
		byReason[label(dm, "reason")] += n
	}
	for r, n := range byReason {
		out.DeadLetters = append(out.DeadLetters, ReasonCount{r, n})
	}
	sort.Slice(out.DeadLetters, func(i, j int) bool {
		a, b := out.DeadLetters[i], out.DeadLetters[j]
		return a.Count > b.Count || a.Count == b.Count && a.Reason < b.Reason
	})
	inputs := map[string]*InputLag{}
	in := func(topic string) *InputLag {
		if inputs[topic] == nil {
			inputs[topic] = &InputLag{Topic: topic}
		}
		return inputs[topic]
	}
	m.mu.Lock()
	owned := slices.Clone(m.ownedSet)
	for _, p := range owned {
		if pv := m.parts[p]; pv != nil {
			for t, l := range pv.lag {
				in(t).Records += max(l, 0)
			}
		}
	}
	m.mu.Unlock()
	for _, dm := range collect(m.inputLag) {
		if !slices.Contains(owned, partitionLabel(dm)) {
			continue
		}
		l := in(label(dm, "topic"))
		l.Seconds = max(l.Seconds, dm.GetGauge().GetValue())
	}
	for _, l := range inputs {
		out.Inputs = append(out.Inputs, *l)
	}
	sort.Slice(out.Inputs, func(i, j int) bool { return out.Inputs[i].Topic < out.Inputs[j].Topic })
	writeJSON(w, http.StatusOK, out)
}

// collect returns the current samples of c.
func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for pm := range ch {
		var dm dto.Metric
		if pm.Write(&dm) == nil {
			out = append(out, &dm)
		}
	}
	return out
}

func label(dm *dto.Metric, name string) string {
	for _, l := range dm.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func partitionLabel(dm *dto.Metric) int32 {
	p, err := strconv.ParseInt(label(dm, "partition"), 10, 32)
	if err != nil {
		return -1
	}
	return int32(p)
}
