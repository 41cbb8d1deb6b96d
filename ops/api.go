package ops

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

//go:embed web
var webFS embed.FS

// SIRENView is the answer of GET /v1/sirens/{siren}: the SIREN's state as of
// the last commit of its partition. Field names and nulls follow the
// segment_change Avro contract (spec §3).
type SIRENView struct {
	SIREN        string                 `json:"siren"`
	Partition    int32                  `json:"partition"`
	Seq          int64                  `json:"seq"`
	AsOf         string                 `json:"as_of"` // stream time of the partition at that commit, RFC 3339
	Segments     []string               `json:"segments"`
	Offers       []string               `json:"offers"`
	Reasons      []schemas.ReasonRec    `json:"reasons"`
	Metrics      schemas.SegmentMetrics `json:"metrics"`
	ControlGroup bool                   `json:"control_group"`
	RulesVersion string                 `json:"rules_version"`
}

// Misdirected is the 421 answer for a SIREN on another instance's partition.
type Misdirected struct {
	Error     string            `json:"error"`
	SIREN     string            `json:"siren"`
	Partition int32             `json:"partition"`
	Owner     *processor.Member `json:"owner"`               // null when the group has no owner now (rebalance)
	OwnerURL  string            `json:"owner_url,omitempty"` // the same query on the owner, when it advertises its HTTP address
}

func (s *Server) siren(w http.ResponseWriter, r *http.Request) {
	siren := r.PathValue("siren")
	if !engine.ValidSIREN(siren) {
		writeError(w, http.StatusBadRequest, "invalid SIREN: want 9 digits with a valid Luhn check digit", nil)
		return
	}
	p := s.cfg.Processor
	if !p.Ready() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "not ready: joining the consumer group or loading state", nil)
		return
	}
	d, part, err := p.View(siren)
	var notOwned *processor.NotOwnedError
	switch {
	case err == nil:
		v, err := viewOf(d, part)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, processor.ErrUnknownSIREN):
		writeError(w, http.StatusNotFound, "unknown SIREN: no event of this SIREN has been processed", map[string]any{"siren": siren, "partition": part})
	case errors.As(err, &notOwned):
		owner, lerr := s.owner(r.Context(), notOwned.Partition)
		if lerr != nil {
			s.log.Warn("consumer group lookup failed", zap.Error(lerr))
		}
		m := Misdirected{
			Error:     "SIREN is on a partition owned by another instance; ask the owner",
			SIREN:     siren,
			Partition: notOwned.Partition,
			Owner:     owner,
		}
		if owner != nil && owner.HTTP != "" {
			m.OwnerURL = owner.HTTP + "/v1/sirens/" + siren
		}
		if owner == nil {
			m.Error = "SIREN is on a partition owned by another instance, which the consumer group does not name now (rebalance?); retry"
		}
		if m.OwnerURL != "" && !s.cfg.Redirect && !wantsRedirect(r) {
			s.proxy(w, r, m)
			return
		}
		writeJSON(w, http.StatusMisdirectedRequest, m)
	default:
		s.internal(w, r, err)
	}
}

// wantsRedirect: ?redirect=1 (or true) asks for the 421 answer instead of
// a proxied one.
func wantsRedirect(r *http.Request) bool {
	v := r.URL.Query().Get("redirect")
	return v == "1" || v == "true"
}

// proxy answers a SIREN query with the owner's answer: the same request
// with ?redirect=1 (so that an instance that lost the partition meanwhile
// answers 421 instead of proxying again), within PeerTimeout, with this
// instance's token. X-Sirenstream-Owner names the instance that answered.
// An owner that does not answer yields 502 with the 421 body's fields.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, m Misdirected) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PeerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.OwnerURL+"?redirect=1", nil)
	if err == nil {
		req.Header.Set("Accept", "application/json")
		if s.cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
		}
		var resp *http.Response
		if resp, err = s.peers.Do(req); err == nil {
			defer resp.Body.Close()
			var body []byte
			if body, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20)); err == nil {
				w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
				w.Header().Set("X-Sirenstream-Owner", m.Owner.HTTP)
				w.WriteHeader(resp.StatusCode)
				_, _ = w.Write(body)
				return
			}
		}
	}
	s.warnPeer(m.Owner.HTTP, "proxied SIREN query: the owner did not answer (logged at most once a minute per owner)", zap.Int32("partition", m.Partition), zap.Error(err))
	m.Error = "SIREN is on a partition owned by another instance, which did not answer: " + s.peerError(err)
	writeJSON(w, http.StatusBadGateway, m)
}

func viewOf(d *engine.Decision, part int32) (*SIRENView, error) {
	sc, err := schemas.DecodeSegmentChange(schemas.AppendSegmentChange(nil, d))
	if err != nil {
		return nil, err
	}
	return &SIRENView{
		SIREN:        sc.SIREN,
		Partition:    part,
		Seq:          sc.Seq,
		AsOf:         time.UnixMilli(d.EventTime).UTC().Format(time.RFC3339Nano),
		Segments:     sc.Segments,
		Offers:       sc.Offers,
		Reasons:      sc.Reasons,
		Metrics:      sc.Metrics,
		ControlGroup: sc.ControlGroup,
		RulesVersion: sc.RulesVersion,
	}, nil
}

// owner returns the group member assigned partition part (see members;
// a partition the cached description does not place refreshes it sooner).
func (s *Server) owner(ctx context.Context, part int32) (*processor.Member, error) {
	members, err := s.members(ctx)
	if m := ownerOf(members, part); m != nil || err != nil {
		return m, err
	}
	members, err = s.refreshMembers(ctx, 500*time.Millisecond)
	return ownerOf(members, part), err
}

// ownerOf returns the member of members assigned part, or nil.
func ownerOf(members []processor.Member, part int32) *processor.Member {
	for i := range members {
		if slices.Contains(members[i].Partitions, part) {
			m := members[i]
			return &m
		}
	}
	return nil
}

// members returns the consumer group's members from a cache of the group
// description refreshed every OwnerCacheTTL (on an error, at most twice a
// second), so queries cannot flood the group coordinator. After a failed
// refresh it returns the last members known with the error.
func (s *Server) members(ctx context.Context) ([]processor.Member, error) {
	ttl := s.cfg.OwnerCacheTTL
	s.ownersMu.Lock()
	failed := s.ownerErr != nil
	s.ownersMu.Unlock()
	if failed {
		ttl = min(ttl, 500*time.Millisecond)
	}
	return s.refreshMembers(ctx, ttl)
}

// refreshMembers describes the group unless the cached description is
// younger than maxAge.
func (s *Server) refreshMembers(ctx context.Context, maxAge time.Duration) ([]processor.Member, error) {
	s.ownersMu.Lock()
	defer s.ownersMu.Unlock()
	if !s.ownersAt.IsZero() && time.Since(s.ownersAt) < maxAge {
		return s.owners, s.ownerErr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	members, err := s.cfg.Processor.Members(ctx)
	s.ownersAt, s.ownerErr = time.Now(), err
	if err == nil {
		s.owners = members
	}
	return s.owners, err
}

// SegmentCounts is the answer of GET /v1/segments.
type SegmentCounts struct {
	// Partitions are this instance's partitions, which the counts cover.
	Partitions []int32 `json:"partitions"`
	// Segments maps every segment label to its SIREN count.
	Segments map[string]int64 `json:"segments"`
	// Complete is false while a partition's baseline is not known yet
	// (its task is loading) or could not be scanned.
	Complete bool `json:"complete"`
	// StreamTime is the largest stream time of this instance's tasks.
	StreamTime string `json:"stream_time,omitempty"`
}

func (s *Server) segments(w http.ResponseWriter, _ *http.Request) {
	m := s.cfg.Metrics
	m.mu.Lock()
	c, complete := m.totals()
	out := SegmentCounts{Partitions: nonNil(append([]int32(nil), m.ownedSet...)), Segments: map[string]int64{}, Complete: complete, StreamTime: rfc3339(m.maxMs)}
	m.mu.Unlock()
	for i, name := range segmentNames {
		out.Segments[name] = c[i]
	}
	writeJSON(w, http.StatusOK, out)
}

// Timeline is the answer of GET /v1/timeline: segment counts over stream
// time, one point per bucket (the last counts of the bucket).
type Timeline struct {
	Segments []string        `json:"segments"`
	BucketMs int64           `json:"bucket_ms"`
	Points   []TimelinePoint `json:"points"`
}

// TimelinePoint is one timeline point; Counts are in Segments order.
type TimelinePoint struct {
	T      int64   `json:"t"` // stream time, Unix ms
	Counts []int64 `json:"counts"`
}

func (s *Server) timelineHandler(w http.ResponseWriter, _ *http.Request) {
	m := s.cfg.Metrics
	m.mu.Lock()
	out := Timeline{Segments: segmentNames, BucketMs: m.timeline.bucketMs, Points: make([]TimelinePoint, len(m.timeline.pts))}
	for i, p := range m.timeline.pts {
		out.Points[i] = TimelinePoint{T: p.ms, Counts: append([]int64(nil), p.counts[:]...)}
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// Change is one entry of GET /v1/changes: a segment_change event as emitted
// (spec §3 field names) and the partition of its task. The answer holds the
// latest recentCap changes of the owned partitions, newest event time first:
// those emitted since the partition was loaded here and those read from the
// tail of the output topic when it was (so they survive a restart).
type Change struct {
	Partition int32 `json:"partition"`
	*schemas.SegmentChange
}

func (s *Server) changesHandler(w http.ResponseWriter, _ *http.Request) {
	m := s.cfg.Metrics
	m.mu.Lock()
	raw := m.recent.newest(m.ownedSet, recentCap) // newest first, every owned partition
	m.mu.Unlock()
	out := make([]Change, 0, len(raw))
	for _, rc := range raw {
		sc, err := schemas.DecodeSegmentChange(rc.avro)
		if err != nil {
			continue // cannot happen: we encoded it
		}
		out = append(out, Change{Partition: rc.partition, SegmentChange: sc})
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": out})
}

// PartitionStatus is one entry of GET /v1/partitions.
type PartitionStatus struct {
	Partition    int32            `json:"partition"`
	Loaded       bool             `json:"loaded"`
	StreamTime   string           `json:"stream_time,omitempty"`
	Lag          int64            `json:"lag"`
	LagByTopic   map[string]int64 `json:"lag_by_topic"`
	Consumed     int64            `json:"consumed"`
	Processed    int64            `json:"processed"`
	DeadLettered int64            `json:"dead_lettered"`
	Changes      int64            `json:"changes"`
	RestoreRead  int64            `json:"restore_read"`
	RestoreTotal int64            `json:"restore_total"`
}

func (s *Server) partitions(w http.ResponseWriter, _ *http.Request) {
	p := s.cfg.Processor
	prog := map[int32]processor.TaskProgress{}
	for _, tp := range p.Progress() {
		prog[tp.Partition] = tp
	}
	owned := p.Owned()
	m := s.cfg.Metrics
	out := make([]PartitionStatus, 0, len(owned))
	m.mu.Lock()
	for _, part := range owned {
		tp := prog[part]
		ps := PartitionStatus{Partition: part, Loaded: tp.Loaded && !tp.Done, StreamTime: rfc3339(tp.StreamTime),
			Consumed: tp.Consumed, Processed: tp.Processed, DeadLettered: tp.DeadLettered, Changes: tp.Changes,
			LagByTopic: map[string]int64{}}
		if pv := m.parts[part]; pv != nil {
			for t, l := range pv.lag {
				ps.LagByTopic[t] = l
				ps.Lag += max(l, 0)
			}
			ps.RestoreRead, ps.RestoreTotal = pv.restoreRead, pv.restoreTotal
		}
		out = append(out, ps)
	}
	maxMs := m.maxMs
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"group":       p.Group(),
		"ready":       p.Ready(),
		"stream_time": rfc3339(maxMs),
		"partitions":  out,
	})
}

// static serves the embedded page. Its CSP allows only same-origin scripts,
// styles and requests: no CDN, no inline script.
func (s *Server) static() http.Handler {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("http request failed", zap.String("path", r.URL.EscapedPath()), zap.Error(err))
	writeError(w, http.StatusInternalServerError, "internal error (see the server log)", nil)
}

// writeJSON encodes v first, so an encoding failure is a clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"response encoding failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers {"error": msg, ...extra}. msg never echoes the request.
func writeError(w http.ResponseWriter, status int, msg string, extra map[string]any) {
	body := map[string]any{"error": msg}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func rfc3339(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
