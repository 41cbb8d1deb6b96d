package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/processor"
)

// Limits of GET /v1/segments/{segment}.
const (
	// DefaultListLimit is the page size without ?limit.
	DefaultListLimit = 100
	// MaxListLimit is the largest ?limit accepted.
	MaxListLimit = 1000
)

// SegmentList is the answer of GET /v1/segments/{segment} (spec §8,
// Queries): the SIRENs currently in the segment, cluster-wide, in ascending
// SIREN order, one page at a time.
type SegmentList struct {
	Segment string          `json:"segment"`
	SIRENs  []SegmentMember `json:"sirens"`
	// NextCursor is the cursor of the next page; null when this page is the
	// last. It is the last SIREN covered: every SIREN up to it was examined,
	// so a page can be shorter than the limit (even empty) and still have a
	// next one. Pages are stable: a cursor never skips or repeats a SIREN
	// that stays in the segment.
	NextCursor *string `json:"next_cursor"`
	// Partial is true when some partitions could not be read (their owner is
	// down, slow, unknown or still loading): their SIRENs are missing from
	// this page. MissingPartitions names them, Errors says why.
	Partial           bool          `json:"partial"`
	MissingPartitions []int32       `json:"missing_partitions"`
	Errors            []SourceError `json:"errors,omitempty"`
	// Partitions are the partitions the page covers.
	Partitions []int32 `json:"partitions"`
}

// SegmentMember is one SIREN of a SegmentList.
type SegmentMember struct {
	SIREN        string   `json:"siren"`
	Offers       []string `json:"offers"`
	ControlGroup bool     `json:"control_group"`
	// Since is when the SIREN entered the segment: the event time (stream
	// time, RFC 3339) of the segment change that added it, when the instance
	// owning its partition has seen that change (emitted it, or read it from
	// the tail of the output topic at start); null otherwise, e.g. for a
	// SIREN that entered before the last restart or rebalance of its
	// partition and has not changed since.
	Since     *string `json:"since"`
	Partition int32   `json:"partition"`
}

// SourceError says why partitions are missing from a SegmentList.
type SourceError struct {
	Partitions []int32 `json:"partitions"`
	Owner      string  `json:"owner,omitempty"` // the owner's advertised URL, when known
	Error      string  `json:"error"`
}

// listQuery is a parsed GET /v1/segments/{segment}.
type listQuery struct {
	name   string
	seg    engine.Segments
	limit  int
	cursor string
	local  bool    // scope=local: this instance's partitions only (what peers ask)
	parts  []int32 // with local: the partitions asked for (nil: every owned one)
}

func parseListQuery(r *http.Request) (q listQuery, status int, msg string, extra map[string]any) {
	q.name = r.PathValue("segment")
	seg, ok := engine.ParseSegment(q.name)
	if !ok {
		return q, http.StatusNotFound, "unknown segment", map[string]any{"segment": q.name, "segments": segmentNames}
	}
	q.seg = seg
	v := r.URL.Query()
	q.limit = DefaultListLimit
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || n < 1 || n > MaxListLimit {
			return q, http.StatusBadRequest, fmt.Sprintf("bad limit: want an integer from 1 to %d", MaxListLimit), nil
		}
		q.limit = n
	}
	if v.Has("cursor") {
		q.cursor = v.Get("cursor")
		if !isDigits(q.cursor, 9) {
			return q, http.StatusBadRequest, "bad cursor: want the next_cursor of the previous page (a 9-digit SIREN)", nil
		}
	}
	switch sc := v.Get("scope"); sc {
	case "", "cluster":
	case "local":
		q.local = true
	default:
		return q, http.StatusBadRequest, "bad scope: want cluster (default) or local", nil
	}
	if s := v.Get("partitions"); s != "" {
		if !q.local {
			return q, http.StatusBadRequest, "partitions needs scope=local", nil
		}
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseInt(f, 10, 32)
			if err != nil || n < 0 {
				return q, http.StatusBadRequest, "bad partitions: want comma-separated partition numbers", nil
			}
			q.parts = append(q.parts, int32(n))
		}
	}
	return q, 0, "", nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// segmentList serves GET /v1/segments/{segment}?limit=N&cursor=C. The
// instance lists its own partitions (processor.ListSegment) and asks the
// owner of every other partition for the same page with scope=local, in
// parallel and within PeerTimeout, then merges (mergePages).
func (s *Server) segmentList(w http.ResponseWriter, r *http.Request) {
	q, status, msg, extra := parseListQuery(r)
	if status != 0 {
		writeError(w, status, msg, extra)
		return
	}
	p := s.cfg.Processor
	n := p.Partitions()
	if n == 0 {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "not ready: the partition count is not known yet", nil)
		return
	}
	owned := p.Owned()
	localParts := owned
	if q.local && q.parts != nil {
		localParts = q.parts
	}
	var mine, notMine []int32
	for _, part := range localParts {
		if slices.Contains(owned, part) {
			mine = append(mine, part)
		} else {
			notMine = append(notMine, part)
		}
	}
	local, err := p.ListSegment(q.seg, q.cursor, q.limit, s.cfg.ListScanBudget, mine)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	pages := []SegmentList{s.listOf(q, local, notMine)}
	if !q.local {
		var others []int32
		for i := range int32(n) {
			if !slices.Contains(owned, i) {
				others = append(others, i)
			}
		}
		pages = append(pages, s.askOwners(r.Context(), q, others)...)
	}
	writeJSON(w, http.StatusOK, mergePages(q.name, q.limit, pages))
}

// listOf turns this instance's page into a SegmentList; notOwned are
// partitions asked for that this instance does not own.
func (s *Server) listOf(q listQuery, pg processor.SegmentPage, notOwned []int32) SegmentList {
	out := SegmentList{Segment: q.name, SIRENs: make([]SegmentMember, 0, len(pg.Rows)), Partitions: nonNil(pg.Partitions)}
	for _, row := range pg.Rows {
		m := SegmentMember{SIREN: row.SIREN, Offers: nonNil(row.Offers), ControlGroup: row.ControlGroup, Partition: row.Partition}
		if ms := s.cfg.Metrics.since.since(row.SIREN, q.seg, row.Seq); ms != 0 {
			t := time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
			m.Since = &t
		}
		out.SIRENs = append(out.SIRENs, m)
	}
	if pg.Next != "" {
		next := pg.Next
		out.NextCursor = &next
	}
	if len(pg.Missing) > 0 {
		out.Errors = append(out.Errors, SourceError{Partitions: pg.Missing, Error: "partition still loading its state"})
	}
	if len(notOwned) > 0 {
		out.Errors = append(out.Errors, SourceError{Partitions: notOwned, Error: "partition not owned by this instance (rebalance?)"})
	}
	for _, e := range out.Errors {
		out.MissingPartitions = append(out.MissingPartitions, e.Partitions...)
	}
	return out
}

// askOwners asks the owners of parts for their page (scope=local), one
// request per owner, in parallel. Partitions whose owner is unknown, has no
// advertised URL, or fails or times out come back as missing.
func (s *Server) askOwners(ctx context.Context, q listQuery, parts []int32) []SegmentList {
	if len(parts) == 0 {
		return nil
	}
	members, err := s.members(ctx)
	byOwner := map[string][]int32{}
	var orphans, mute []int32
	for _, part := range parts {
		owner := ownerOf(members, part)
		switch {
		case owner == nil:
			orphans = append(orphans, part)
		case owner.HTTP == "":
			mute = append(mute, part)
		default:
			byOwner[owner.HTTP] = append(byOwner[owner.HTTP], part)
		}
	}
	var out []SegmentList
	if len(orphans) > 0 {
		msg := "no group member owns the partition now (rebalance?)"
		if err != nil {
			msg = "consumer group lookup failed: " + err.Error()
		}
		out = append(out, missing(q.name, SourceError{Partitions: orphans, Error: msg}))
	}
	if len(mute) > 0 {
		out = append(out, missing(q.name, SourceError{Partitions: mute, Error: "the owner advertises no HTTP address (--http)"}))
	}
	urls := make([]string, 0, len(byOwner))
	for u := range byOwner {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	res := make([]SegmentList, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = s.askOwner(ctx, q, u, byOwner[u])
		}()
	}
	wg.Wait()
	return append(out, res...)
}

func missing(segment string, e SourceError) SegmentList {
	return SegmentList{Segment: segment, SIRENs: []SegmentMember{}, Errors: []SourceError{e}, MissingPartitions: e.Partitions}
}

// askOwner asks one owner for its page of parts.
func (s *Server) askOwner(ctx context.Context, q listQuery, base string, parts []int32) SegmentList {
	v := url.Values{}
	v.Set("scope", "local")
	v.Set("limit", strconv.Itoa(q.limit))
	if q.cursor != "" {
		v.Set("cursor", q.cursor)
	}
	ps := make([]string, len(parts))
	for i, p := range parts {
		ps[i] = strconv.Itoa(int(p))
	}
	v.Set("partitions", strings.Join(ps, ","))
	u := base + "/v1/segments/" + url.PathEscape(q.name) + "?" + v.Encode()
	var page SegmentList
	status, err := s.peerGet(ctx, u, &page)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d", status)
	}
	if err != nil {
		s.warnPeer(base, "segment listing: a partition owner did not answer (logged at most once a minute per owner; the answers say partial)", zap.Int32s("partitions", parts), zap.Error(err))
		return missing(q.name, SourceError{Partitions: parts, Owner: base, Error: s.peerError(err)})
	}
	for i := range page.Errors {
		if page.Errors[i].Owner == "" {
			page.Errors[i].Owner = base
		}
	}
	return page
}

// peerGet GETs u from another instance (with this instance's token, the
// cluster's) within PeerTimeout and decodes a JSON answer into v when the
// status is 200. It returns the status.
func (s *Server) peerGet(ctx context.Context, u string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PeerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<20))
	if err := dec.Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
	}
	return resp.StatusCode, nil
}

// mergePages merges pages of disjoint partitions into one page of at most
// limit SIRENs. Each page covers its partitions up to its next_cursor (or to
// the end when null); the merge covers every partition up to the smallest of
// them, so only SIRENs up to that bound are kept — which makes pages stable
// whatever the sources' budgets were.
func mergePages(segment string, limit int, pages []SegmentList) SegmentList {
	out := SegmentList{Segment: segment, SIRENs: []SegmentMember{}, MissingPartitions: []int32{}, Partitions: []int32{}}
	var bound *string
	for i := range pages {
		pg := &pages[i]
		if pg.NextCursor != nil && (bound == nil || *pg.NextCursor < *bound) {
			bound = pg.NextCursor
		}
		out.Partitions = append(out.Partitions, pg.Partitions...)
		out.MissingPartitions = append(out.MissingPartitions, pg.MissingPartitions...)
		out.Errors = append(out.Errors, pg.Errors...)
	}
	for _, pg := range pages {
		for _, m := range pg.SIRENs {
			if bound == nil || m.SIREN <= *bound {
				out.SIRENs = append(out.SIRENs, m)
			}
		}
	}
	sort.Slice(out.SIRENs, func(i, j int) bool { return out.SIRENs[i].SIREN < out.SIRENs[j].SIREN })
	if bound != nil {
		b := *bound
		out.NextCursor = &b
	}
	if len(out.SIRENs) > limit {
		out.SIRENs = out.SIRENs[:limit]
		last := out.SIRENs[limit-1].SIREN
		out.NextCursor = &last
	}
	slices.Sort(out.Partitions)
	slices.Sort(out.MissingPartitions)
	out.Partial = len(out.MissingPartitions) > 0
	return out
}

// peerError says why a peer did not answer, without the request URL (the
// owner is named beside it).
func (s *Server) peerError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %v", s.cfg.PeerTimeout)
	}
	return err.Error()
}

// warnPeer logs a WARN about peer owner at most once a minute per owner:
// while an instance is down every query that needs it fails the same way.
func (s *Server) warnPeer(owner, msg string, fields ...zap.Field) {
	s.peerWarnMu.Lock()
	last := s.peerWarned[owner]
	now := time.Now()
	due := now.Sub(last) >= time.Minute
	if due {
		if s.peerWarned == nil {
			s.peerWarned = map[string]time.Time{}
		}
		s.peerWarned[owner] = now
	}
	s.peerWarnMu.Unlock()
	if due {
		s.log.Warn(msg, append([]zap.Field{zap.String("owner", owner)}, fields...)...)
	}
}
