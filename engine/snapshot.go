package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// SnapshotMax is the largest number of values a percentile snapshot keeps.
// Up to this population the percentile is exact; above it the snapshot keeps
// SnapshotMax values at evenly spaced ranks and a percentile is low by less
// than 100/(SnapshotMax-1) ≈ 0.098 percentile points.
const SnapshotMax = 1024

// setSnapshot sets the day's percentile population from the pass-1
// intensities (any order; values is not retained nor modified). Until the
// next day change, Percentile ranks against it.
func (t *Task) setSnapshot(values []float64) {
	n := len(values)
	t.snapValid = true
	t.snapN = n
	if n <= SnapshotMax {
		t.snap = append(t.snap[:0], values...)
		slices.Sort(t.snap)
		return
	}
	t.scratch = append(t.scratch[:0], values...)
	slices.Sort(t.scratch)
	t.snap = t.snap[:0]
	for i := 0; i < SnapshotMax; i++ {
		t.snap = append(t.snap, t.scratch[sampleRank(i, n)])
	}
	clear(t.scratch)
	t.scratch = t.scratch[:0]
}

// sampleRank is the population rank (0-based, ascending) of sample i.
func sampleRank(i, n int) int {
	return int(int64(i) * int64(n-1) / int64(SnapshotMax-1))
}

// SnapshotSize is the population size of the current snapshot (0 when there
// is none).
func (t *Task) SnapshotSize() int { return t.snapN }

// Percentile returns 100 * (number of snapshot values strictly less than x) /
// population size: the top SIREN of 100 gets 99, the lowest 0. ok is false
// (null) without a snapshot or when the population is below
// Rules.MinPopulation. Above SnapshotMax values the count is estimated as the
// rank of the largest sampled value below x, plus one (a lower bound, off by
// less than n/(SnapshotMax-1) values).
func (t *Task) Percentile(x float64) (float64, bool) {
	if !t.snapValid || t.snapN < t.rules.MinPopulation || t.snapN == 0 {
		return 0, false
	}
	// First index with snap[j] >= x (slices.BinarySearch, without its
	// generic NaN-aware comparison: intensities are never NaN).
	j, hi := 0, len(t.snap)
	for j < hi {
		m := int(uint(j+hi) >> 1)
		if t.snap[m] < x {
			j = m + 1
		} else {
			hi = m
		}
	}
	below := j
	if t.snapN > SnapshotMax && j > 0 {
		below = sampleRank(j-1, t.snapN) + 1
	}
	return 100 * float64(below) / float64(t.snapN), true
}

const metaVersion = 1

// AppendMeta appends the task's versioned metadata: stream time and the
// percentile snapshot, so a restarted task ranks exactly as before.
func (t *Task) AppendMeta(dst []byte) []byte {
	dst = append(dst, metaVersion)
	var flags byte
	if t.started {
		flags |= 1
	}
	if t.snapValid {
		flags |= 2
	}
	dst = append(dst, flags)
	dst = binary.AppendVarint(dst, t.streamTime)
	if t.snapValid {
		dst = binary.AppendUvarint(dst, uint64(t.snapN))
		dst = binary.AppendUvarint(dst, uint64(len(t.snap)))
		for _, v := range t.snap {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	}
	return dst
}

// UnmarshalMeta restores what AppendMeta wrote. On error the task is left
// unchanged.
func (t *Task) UnmarshalMeta(b []byte) error {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != metaVersion {
		return fmt.Errorf("engine: task meta: unknown version %d", v)
	}
	flags := r.byte()
	st := r.varint()
	var n, k int
	var snap []float64
	if flags&2 != 0 {
		n = int(r.uvarint())
		k = r.count(8)
		if r.err == nil && (k != min(n, SnapshotMax)) {
			return errors.New("engine: task meta: snapshot size mismatch")
		}
		snap = make([]float64, 0, k)
		for i := 0; i < k && r.err == nil; i++ {
			snap = append(snap, math.Float64frombits(r.u64()))
		}
		if r.err == nil && !slices.IsSorted(snap) {
			return errors.New("engine: task meta: snapshot not sorted")
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return fmt.Errorf("engine: task meta: %w", r.err)
	}
	if flags&^3 != 0 {
		return fmt.Errorf("engine: task meta: unknown flags %#x", flags)
	}
	t.started = flags&1 != 0
	t.streamTime = st
	t.snapValid = flags&2 != 0
	t.snapN = n
	t.snap = snap
	t.kept, t.building = nil, nil // they belonged to the old position
	return nil
}
