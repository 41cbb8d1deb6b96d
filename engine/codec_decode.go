package engine

import (
	"errors"
	"fmt"
)

// UnmarshalState decodes an AppendBinary encoding for siren. It rejects an
// unknown schema version, truncated or trailing bytes and broken ordering
// invariants; it never panics on bad input.
func UnmarshalState(siren string, b []byte) (*State, error) {
	s, err := unmarshalState(siren, b)
	if err != nil {
		return nil, fmt.Errorf("engine: state of %s: %w", siren, err)
	}
	return s, nil
}

func unmarshalState(siren string, b []byte) (*State, error) {
	r := reader{b: b}
	v := r.byte()
	if r.err != nil {
		return nil, r.err
	}
	if !knownStateVersion(v) {
		return nil, fmt.Errorf("unknown state version %d", v)
	}
	s := &State{SIREN: siren}
	seq := r.uvarint()
	if seq > 1<<62 {
		r.fail(errors.New("bad seq"))
	}
	s.seq = int64(seq)
	s.segs = Segments(r.byte())
	if s.segs&^AllSegments != 0 {
		r.fail(fmt.Errorf("unknown segment bits %#x", byte(s.segs)))
	}
	s.offersUnknown = v < StateVersion && s.segs != 0
	if v >= StateVersion {
		if n := r.count(1); r.err == nil {
			ext := r.b[:n]
			r.b = r.b[n:]
			if err := s.readExt(ext); err != nil {
				r.fail(fmt.Errorf("header extension: %w", err))
			}
		}
	}
	flags := r.byte()
	if flags&^(flagUsage|flagProfile|flagWorkforce) != 0 || (flags&flagWorkforce != 0 && flags&flagProfile == 0) {
		r.fail(fmt.Errorf("bad flags %#x", flags))
	}
	s.hasUsage = flags&flagUsage != 0
	s.hasProfile = flags&flagProfile != 0
	s.hasWorkforce = flags&flagWorkforce != 0
	if s.hasUsage {
		s.firstUsageDay = r.int32()
	}

	if n := r.count(3); n > 0 {
		s.usage = make([]dayUsage, n, n+1)
		var day int64
		for i := range s.usage {
			s.usage[i] = r.dayUsage(i, &day)
		}
	}
	if n := r.count(2); n > 0 {
		s.postals = make([]postal, n)
		for i := range s.postals {
			s.postals[i] = postal{code: r.str(), lastDay: r.int32()}
			if i > 0 && s.postals[i-1].code >= s.postals[i].code {
				r.fail(errors.New("postal codes not sorted"))
			}
		}
	}
	if n := r.count(2); n > 0 {
		s.open = make([]openOutage, n)
		for i := range s.open {
			s.open[i] = openOutage{id: r.str(), start: r.varint()}
			if i > 0 && s.open[i-1].id >= s.open[i].id {
				r.fail(errors.New("open outages not sorted"))
			}
		}
	}
	if n := r.count(3); n > 0 {
		s.resolved = make([]resolvedOutage, n)
		for i := range s.resolved {
			o := resolvedOutage{id: r.str(), start: r.varint()}
			o.end = o.start + int64(r.uvarint())
			s.resolved[i] = o
			if i > 0 && s.resolved[i-1].id >= o.id {
				r.fail(errors.New("resolved outages not sorted"))
			}
		}
	}
	if n := r.count(2); n > 0 {
		s.claims = make([]claim, n)
		var day int64
		for i := range s.claims {
			if i == 0 {
				day = r.varint()
			} else {
				day += int64(r.uvarint())
			}
			v := r.uvarint()
			if day < -1<<31 || day > 1<<31-1 {
				r.fail(errors.New("claim day out of range"))
			}
			s.claims[i] = claim{day: int32(day), amount: int64(v >> 1), linked: v&1 != 0}
		}
	}
	if s.hasProfile {
		s.profileTime = r.varint()
		if s.hasWorkforce {
			s.workforce = r.int32()
		}
		s.plan = r.str()
	}
	if n := r.count(2); n > 0 {
		s.wfHist = make([]wfObs, n)
		var t int64
		for i := range s.wfHist {
			d := r.varint()
			if i > 0 && d < 0 {
				r.fail(errors.New("workforce history not sorted"))
			}
			t += d
			s.wfHist[i] = wfObs{t: t, wf: r.int32()}
		}
	}
	if n := r.count(9); n > 0 {
		if hasFilters(v) && n > DedupExact {
			r.fail(fmt.Errorf("%d exact event ids (max %d)", n, DedupExact))
			return nil, r.err
		}
		s.ids.hash = make([]uint64, n)
		s.ids.day = make([]int32, n)
		var d int64
		for i := range s.ids.hash {
			d += r.varint()
			if d < -1<<31 || d > 1<<31-1 {
				r.fail(errors.New("event id day out of range"))
			}
			s.ids.day[i] = int32(d)
			s.ids.hash[i] = r.u64()
		}
	}
	if hasFilters(v) {
		if n := r.count(4); n > DedupMaxFilters {
			r.fail(fmt.Errorf("%d dedup filters (max %d)", n, DedupMaxFilters))
		} else if n > 0 {
			s.ids.filters = make([]filter, n)
			for i := range s.ids.filters {
				prev := int64(0)
				if i > 0 {
					prev = int64(s.ids.filters[i-1].to)
				}
				s.ids.filters[i] = r.filter(i == 0, prev)
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	if v == stateVersion1 {
		s.ids.upgradeV1()
	} else {
		s.ids.reindex()
	}
	return s, nil
}
