package ops

import (
	"sync"

	"github.com/sirenstream/sirenstream/engine"
)

// sinceCap bounds the SIRENs whose segment entry times are remembered
// (~80 bytes each: about 25 MB when full). When full, SIRENs not yet tracked
// are not added (their since stays null) until tracked ones leave every
// segment.
const sinceCap = 300_000

// sinceIndex remembers, per SIREN, the event time of the segment change that
// added each segment it holds, for the since field of a segment listing.
//
// The stored state does not keep entry times, so the index learns them from
// the changes this instance emits (Metrics.SegmentChange) and from the tail
// of the output topic read when a partition is loaded (recent.go). A segment
// held before the first change the index saw of a SIREN has an unknown entry
// time (0); so has every segment of a SIREN after a gap in its seq (changes
// made elsewhere, e.g. before a rebalance). An entry answers only for the
// seq it was last updated at, so it is never applied to another state.
type sinceIndex struct {
	mu sync.Mutex
	m  map[[9]byte]sinceEntry
}

type sinceEntry struct {
	seq int64
	at  [numSegments]int64 // event time (Unix ms) the segment was added; 0 = unknown or not held
}

func sinceKey(siren string) ([9]byte, bool) {
	var k [9]byte
	if len(siren) != len(k) {
		return k, false
	}
	copy(k[:], siren)
	return k, true
}

// observe applies one segment change of siren: seq, its event time, the
// segments before it and those it added and removed.
func (x *sinceIndex) observe(siren string, seq, eventMs int64, prev, added, removed engine.Segments) {
	k, ok := sinceKey(siren)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[[9]byte]sinceEntry{}
	}
	e, had := x.m[k]
	if had && seq <= e.seq {
		return // already seen (a tail read overlapping live changes)
	}
	if !had || seq != e.seq+1 {
		e = sinceEntry{} // what was held before is of unknown age
	}
	e.seq = seq
	known := false
	for i := range numSegments {
		bit := engine.Segments(1) << i
		switch {
		case added&bit != 0:
			e.at[i] = eventMs
		case removed&bit != 0:
			e.at[i] = 0
		}
		known = known || e.at[i] != 0
	}
	switch {
	case !known:
		delete(x.m, k)
	case had || len(x.m) < sinceCap:
		x.m[k] = e
	}
}

// since returns when siren entered segment seg (Unix ms), if known for the
// state of seq; 0 otherwise.
func (x *sinceIndex) since(siren string, seg engine.Segments, seq int64) int64 {
	k, ok := sinceKey(siren)
	if !ok {
		return 0
	}
	x.mu.Lock()
	e, had := x.m[k]
	x.mu.Unlock()
	if !had || e.seq != seq {
		return 0
	}
	for i := range numSegments {
		if seg == engine.Segments(1)<<i {
			return e.at[i]
		}
	}
	return 0
}
