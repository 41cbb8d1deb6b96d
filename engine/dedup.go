package engine

import (
	"math"
	"math/bits"
)

// Dedup budget of one SIREN. Event ids are remembered by their 64-bit
// FNV-1a hash and event day for the dedup window (AllowedLateness + 1 day,
// by event day): the most recent ones exactly, older ones, once the exact
// set is full, in a Bloom filter per day. A SIREN that never has more than
// DedupExact ids in its window is deduplicated exactly (up to 64-bit hash
// collisions, odds ~n²/2⁶⁴) and encodes as before; above that:
//
//   - no duplicate is missed while its day's filter has room
//     (DedupFilterCap ids); beyond that, ids leaving the exact set are
//     forgotten (BoundDedupForgotten) and a re-sent copy of one of them is
//     applied again. The DedupExact/2 most recent ids are always exact.
//   - a new event id is a false positive (dead-lettered as "duplicate")
//     with probability at most DedupFalsePositive per full day filter of
//     the window: ≤ 0.05 % for a SIREN hot one day, ≤ 0.45 % when all
//     nine days of the default window are full (a filter that is not full
//     does less: ~1e-6 at a quarter of its capacity).
//
// Cost per event: a hash, a lookup in the exact set (a scan below
// dedupIndexMin ids, an open-addressing index above) and, when the SIREN
// has filters, DedupFilterHashes bit probes per filter. Encoded budget:
// ≤ 9 bytes per exact id plus ≤ 16 KiB + 10 bytes per filter (sparse
// filters encode their set bits only): at most ~166 KiB.
const (
	// DedupExact is how many event ids a SIREN remembers exactly. When a
	// new id finds the set full, the older half moves to the day filters.
	DedupExact = 2048
	// DedupFilterBits is the size of one day filter, in bits (16 KiB).
	DedupFilterBits = 1 << 17
	// DedupFilterHashes is the number of bits an id sets in a filter.
	DedupFilterHashes = 10
	// DedupFilterCap is how many ids a day filter takes; it stops there so
	// that its false-positive rate never exceeds DedupFalsePositive.
	DedupFilterCap = 8192
	// DedupFalsePositive is the false-positive rate of a full day filter:
	// (1 - e^(-k·n/m))^k = 4.7e-4 with k = 10, n = 8192, m = 2^17; 4.9e-4
	// measured (TestDedupFilterFalsePositiveRate).
	DedupFalsePositive = 5e-4
	// DedupMaxFilters bounds a SIREN's filters. A window longer than that
	// many days (AllowedLateness above 8 days) gets filters spanning
	// several days each; over the cap, the oldest filter goes.
	DedupMaxFilters = 9

	filterWords = DedupFilterBits / 64
	// dedupIndexMin: exact sets up to this size are scanned; bigger ones
	// get a runtime hash index (most SIRENs never do: no memory for them).
	dedupIndexMin = 256
)

// dedup is a SIREN's dedup memory: the exact set (parallel slices in
// arrival order, encoded) with its runtime index, and the day filters.
type dedup struct {
	hash []uint64
	day  []int32

	filters []filter // sorted by from, disjoint

	// index is a runtime-only open-addressing table of positions+1 in
	// hash, linear probing, len a power of two >= 2*DedupExact; nil while
	// the set is small. Rebuilt whenever the set is compacted.
	index []uint16
}

// filter is a Bloom filter over the event ids of days from..to.
type filter struct {
	from, to int32
	n        int32 // ids added (<= DedupFilterCap)
	bits     []uint64
}

// mix64 is the splitmix64 finalizer: filter and index positions come from
// it, not from the FNV bits directly (FNV-1a's low bits are weak).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (f *filter) has(h uint64) bool {
	x := mix64(h)
	h1, h2 := uint32(x), uint32(x>>32)|1
	for i := uint32(0); i < DedupFilterHashes; i++ {
		b := (h1 + i*h2) & (DedupFilterBits - 1)
		if f.bits[b>>6]&(1<<(b&63)) == 0 {
			return false
		}
	}
	return true
}

func (f *filter) add(h uint64) {
	x := mix64(h)
	h1, h2 := uint32(x), uint32(x>>32)|1
	for i := uint32(0); i < DedupFilterHashes; i++ {
		b := (h1 + i*h2) & (DedupFilterBits - 1)
		f.bits[b>>6] |= 1 << (b & 63)
	}
	f.n++
}

func (f *filter) ones() int {
	n := 0
	for _, w := range f.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// seen reports whether h was remembered: in the exact set, or (maybe a
// false positive) in a filter.
func (d *dedup) seen(h uint64) bool {
	if d.index != nil {
		mask := uint64(len(d.index) - 1)
		for i := mix64(h) & mask; d.index[i] != 0; i = (i + 1) & mask {
			if d.hash[d.index[i]-1] == h {
				return true
			}
		}
	} else {
		for i := len(d.hash) - 1; i >= 0; i-- {
			if d.hash[i] == h {
				return true
			}
		}
	}
	for i := range d.filters {
		if d.filters[i].has(h) {
			return true
		}
	}
	return false
}

// dedupWindow is what remember needs of the task: the oldest event day of
// the window and the days one filter spans.
type dedupWindow struct {
	min  int32
	span int32
}

// remember adds h (event day day) to the exact set, first moving the
// older half to the filters when the set is full.
func (d *dedup) remember(h uint64, day int32, w dedupWindow, c *BoundCounts, siren string) {
	if len(d.hash) >= DedupExact {
		d.spill(DedupExact/2, w, c, siren)
	}
	d.hash = append(d.hash, h)
	d.day = append(d.day, day)
	if d.index != nil {
		d.indexAdd(len(d.hash) - 1)
	} else if len(d.hash) > dedupIndexMin {
		d.reindex()
	}
}

// spill moves the n oldest exact ids to the filters (ids of days before
// the window are just dropped: the next prune would).
func (d *dedup) spill(n int, w dedupWindow, c *BoundCounts, siren string) {
	moved, forgotten := 0, 0
	for i := 0; i < n; i++ {
		if d.day[i] < w.min {
			continue
		}
		moved++
		if !d.filterAdd(d.hash[i], d.day[i], w.span, c, siren) {
			forgotten++
		}
	}
	c.add(BoundDedup, siren, moved)
	c.add(BoundDedupForgotten, siren, forgotten)
	d.hash = d.hash[:copy(d.hash, d.hash[n:])]
	d.day = d.day[:copy(d.day, d.day[n:])]
	d.reindex()
}

// filterAdd adds h to the filter of day, creating it (spanning span days,
// clipped to its neighbours) when needed; false when h is forgotten: the
// filter is full, or it is the oldest filter over DedupMaxFilters.
func (d *dedup) filterAdd(h uint64, day, span int32, c *BoundCounts, siren string) bool {
	i := 0
	for i < len(d.filters) && d.filters[i].to < day {
		i++
	}
	if i == len(d.filters) || d.filters[i].from > day {
		from := day - day%span
		if day%span < 0 {
			from -= span
		}
		to := from + span - 1
		if i > 0 {
			from = max(from, d.filters[i-1].to+1)
		}
		if i < len(d.filters) {
			to = min(to, d.filters[i].from-1)
		}
		d.filters = append(d.filters, filter{})
		copy(d.filters[i+1:], d.filters[i:])
		d.filters[i] = filter{from: from, to: to, bits: make([]uint64, filterWords)}
		if len(d.filters) > DedupMaxFilters {
			// The oldest filter goes, with what it remembered.
			c.add(BoundDedupForgotten, siren, int(d.filters[0].n))
			if i == 0 {
				d.filters = d.filters[:copy(d.filters, d.filters[1:])]
				return false
			}
			d.filters = d.filters[:copy(d.filters, d.filters[1:])]
			i--
		}
	}
	f := &d.filters[i]
	if f.n >= DedupFilterCap {
		return false
	}
	f.add(h)
	return true
}

// upgradeV1 brings a version 1 set (every id exact, any number of them)
// within the budget: its ids are remembered again in arrival order, as
// Step would have, in one-day filters; nothing is counted.
func (d *dedup) upgradeV1() {
	if len(d.hash) <= DedupExact {
		d.reindex()
		return
	}
	hash, day := d.hash, d.day
	d.hash, d.day = make([]uint64, 0, DedupExact), make([]int32, 0, DedupExact)
	w := dedupWindow{min: math.MinInt32, span: 1}
	for i := range hash {
		d.remember(hash[i], day[i], w, nil, "")
	}
}

// prune forgets the ids of event days before oldest.
func (d *dedup) prune(oldest int32) {
	k := 0
	for i, day := range d.day {
		if day >= oldest {
			d.day[k] = day
			d.hash[k] = d.hash[i]
			k++
		}
	}
	if k < len(d.hash) {
		d.day = d.day[:k]
		d.hash = d.hash[:k]
		d.reindex()
	}
	k = 0
	for _, f := range d.filters {
		if f.to >= oldest {
			d.filters[k] = f
			k++
		}
	}
	clear(d.filters[k:])
	d.filters = d.filters[:k]
}

// reindex rebuilds the index after the set changed other than by an
// append. Once built the table is kept (and reused) even if the set
// shrinks: a SIREN around the threshold does not allocate every day.
func (d *dedup) reindex() {
	if d.index == nil && len(d.hash) <= dedupIndexMin {
		return
	}
	if d.index == nil {
		d.index = make([]uint16, 2*DedupExact)
	} else {
		clear(d.index)
	}
	for i := range d.hash {
		d.indexAdd(i)
	}
}

func (d *dedup) indexAdd(pos int) {
	mask := uint64(len(d.index) - 1)
	i := mix64(d.hash[pos]) & mask
	for d.index[i] != 0 {
		i = (i + 1) & mask
	}
	d.index[i] = uint16(pos + 1)
}
