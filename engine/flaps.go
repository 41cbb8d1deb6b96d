package engine

import "math/bits"

// FlapWindowMs: an entry into a segment within this long after the SIREN
// left it is a flap (sirenstream_segment_flaps_total; replay --diff).
const FlapWindowMs = 7 * DayMs

// Flaps counts flaps from a stream of decisions: it remembers, per SIREN, when
// it last left each segment. Decisions of a SIREN must come in seq order.
// Not safe for concurrent use.
type Flaps struct {
	left      map[string]*[8]int64 // SIREN → exit ms per segment bit (0: none)
	keepAll   bool
	pruneDay  int32
	hasPruned bool
}

// NewFlaps returns an empty counter for the decisions of one partition task
// (in event-time order): it forgets exits older than FlapWindowMs, so its
// memory is the SIRENs that left a segment within the window.
func NewFlaps() *Flaps { return &Flaps{left: map[string]*[8]int64{}} }

// NewFlapsUnordered returns an empty counter for the decisions of several
// partitions interleaved (a what-if replay): it keeps the last exit of
// every SIREN that ever left a segment.
func NewFlapsUnordered() *Flaps { return &Flaps{left: map[string]*[8]int64{}, keepAll: true} }

// Observe takes one decision of siren at event time ms (added and removed
// segments) and returns the segments it re-enters within FlapWindowMs of
// leaving them.
func (f *Flaps) Observe(siren string, ms int64, added, removed Segments) Segments {
	f.prune(ms)
	var flapped Segments
	exits := f.left[siren]
	if exits != nil {
		for s := added; s != 0; s &= s - 1 {
			i := bits.TrailingZeros8(uint8(s))
			if t := exits[i]; t != 0 && ms-t <= FlapWindowMs {
				flapped |= 1 << i
			}
		}
	}
	if removed != 0 {
		if exits == nil {
			exits = new([8]int64)
			f.left[siren] = exits
		}
		for s := removed; s != 0; s &= s - 1 {
			exits[bits.TrailingZeros8(uint8(s))] = ms
		}
	}
	return flapped
}

// prune forgets, once per day of event time, the exits older than the
// window.
func (f *Flaps) prune(ms int64) {
	d := Day(ms)
	if f.keepAll || (f.hasPruned && d == f.pruneDay) {
		return
	}
	f.hasPruned, f.pruneDay = true, d
	for siren, exits := range f.left {
		recent := false
		for _, t := range exits {
			recent = recent || (t != 0 && ms-t <= FlapWindowMs)
		}
		if !recent {
			delete(f.left, siren)
		}
	}
}
