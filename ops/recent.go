package ops

import (
	"context"
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
)

// recentChange is one segment change kept for the live page.
type recentChange struct {
	partition int32
	eventMs   int64
	siren     string
	seq       int64
	avro      []byte // schemas.AppendSegmentChange of the decision: a deep copy
}

func (a *recentChange) before(b *recentChange) bool {
	if a.eventMs != b.eventMs {
		return a.eventMs < b.eventMs
	}
	if a.siren != b.siren {
		return a.siren < b.siren
	}
	return a.seq < b.seq
}

// recentChanges keeps the latest recentCap changes of each partition in
// event-time order, fed by live changes and by the tail of the output topic
// read when a partition is loaded (so the page survives a restart and shows
// a partition that moved here). Readers pick the owned partitions. Guarded
// by Metrics.mu.
type recentChanges struct {
	parts map[int32][]recentChange
}

// add inserts c in event-time order, unless it is already kept (same SIREN
// and seq) or older than everything a full buffer keeps.
func (r *recentChanges) add(c recentChange) {
	if r.parts == nil {
		r.parts = map[int32][]recentChange{}
	}
	s := r.parts[c.partition]
	i := len(s)
	for i > 0 && c.before(&s[i-1]) {
		i--
	}
	if i > 0 && s[i-1].siren == c.siren && s[i-1].seq == c.seq {
		return
	}
	if len(s) >= recentCap {
		if i == 0 {
			return
		}
		s = slices.Delete(s, 0, 1)
		i--
	}
	r.parts[c.partition] = slices.Insert(s, i, c)
}

// newest returns up to n changes of partitions parts, newest first (ties:
// partition, then SIREN and seq descending).
func (r *recentChanges) newest(parts []int32, n int) []recentChange {
	var all []recentChange
	for _, p := range parts {
		all = append(all, r.parts[p]...)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := &all[i], &all[j]
		if a.eventMs != b.eventMs {
			return a.eventMs > b.eventMs
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return b.before(a)
	})
	return all[:min(n, len(all))]
}

// seedChanges adds the segment_change records vals (oldest first) of
// partition p, read from the output topic, to the recent changes and the
// since index. It returns how many it could decode. Records framed with a
// registry's schema id carry the same writer schema (spec §8, Registry): the
// id is ignored.
func (m *Metrics) seedChanges(p int32, vals [][]byte) int {
	var scs []*schemas.SegmentChange
	var avros [][]byte
	for _, v := range vals {
		if len(v) >= 5 && v[0] == 0 && binary.BigEndian.Uint32(v[1:5]) != uint32(schemas.IDSegmentChange) {
			v = append([]byte{0, 0, 0, 0, 0}, v[5:]...)
			binary.BigEndian.PutUint32(v[1:5], uint32(schemas.IDSegmentChange))
		}
		sc, err := schemas.DecodeSegmentChange(v)
		if err != nil {
			continue
		}
		scs = append(scs, sc)
		avros = append(avros, v)
	}
	for _, sc := range scs {
		m.since.observe(sc.SIREN, sc.Seq, sc.EventTime, segmentsOf(sc.PreviousSegments), segmentsOf(sc.Added), segmentsOf(sc.Removed))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, sc := range scs {
		m.recent.add(recentChange{partition: p, eventMs: sc.EventTime, siren: sc.SIREN, seq: sc.Seq, avro: avros[i]})
	}
	return len(scs)
}

func segmentsOf(names []string) engine.Segments {
	var s engine.Segments
	for _, n := range names {
		if b, ok := engine.ParseSegment(n); ok {
			s |= b
		}
	}
	return s
}

// tailer reads, once per partition and ownership, the tail of the output
// topic for a partition this instance owns and whose task has loaded.
type tailer interface {
	Owned() []int32
	Ready() bool
	TailChanges(ctx context.Context, part int32, n int) ([][]byte, error)
}

// seedRecent runs until ctx ends: every interval it seeds the recent
// changes of each newly owned partition from the output topic's tail (see
// Metrics.seedChanges). A failed read is retried at the next tick, and
// logged once per partition. The changes of a partition that moves away are
// kept (at most recentCap) but not shown; if it comes back, its tail is read
// again and merged in event-time order.
func (s *Server) seedRecent(ctx context.Context, src tailer, interval time.Duration) {
	seeded := map[int32]bool{}
	warned := map[int32]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		owned := src.Owned()
		for p := range seeded {
			if !slices.Contains(owned, p) {
				delete(seeded, p)
			}
		}
		if src.Ready() {
			for _, p := range owned {
				if seeded[p] || ctx.Err() != nil {
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				vals, err := src.TailChanges(rctx, p, recentCap)
				cancel()
				if err != nil {
					if !warned[p] {
						s.log.Warn("recent changes of the output topic unavailable for the live page", zap.Int32("partition", p), zap.Error(err))
						warned[p] = true
					}
					continue
				}
				n := s.cfg.Metrics.seedChanges(p, vals)
				s.log.Debug("recent changes read from the output topic", zap.Int32("partition", p), zap.Int("records", len(vals)), zap.Int("decoded", n))
				seeded[p] = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
