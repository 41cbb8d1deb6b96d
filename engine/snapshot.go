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
	if !t.snapValid || t.snapN < t.rules.MinPopulation || t.snapN == 0 || !t.warm() {
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

// Task meta versions: 1 = flags, stream time, snapshot; 2 appends the
// identity of the task's rules (RulesID: version, fingerprint), so that a
// restart under other rules knows it (CheckRules, MetaRules). Version 1
// still decodes (rules unknown: see MetaRules).
const (
	metaVersion  = 4 // + the task's first stream day (flag 4; min_history_days)
	metaVersion3 = 3 // + pending timers
	metaVersion2 = 2 // + rules identity
	metaVersion1 = 1
)

// metaFirstDay: flag of a meta holding the task's first stream day.
const metaFirstDay = 4

// AppendMeta appends the task's versioned metadata: stream time, the
// percentile snapshot, so a restarted task ranks exactly as before, and the
// identity of its rules. Cost: one Rules.Fingerprint (microseconds): meant
// for commits, not per record.
func (t *Task) AppendMeta(dst []byte) []byte {
	dst = append(dst, metaVersion)
	var flags byte
	if t.started {
		flags |= 1
	}
	if t.snapValid {
		flags |= 2
	}
	if t.hasFirstDay {
		flags |= metaFirstDay
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
	dst = appendStr(dst, t.rules.Version)
	dst = appendStr(dst, t.rules.Fingerprint())
	dst = appendTimers(dst, t.timers)
	if t.hasFirstDay {
		dst = binary.AppendVarint(dst, int64(t.firstDay))
	}
	return dst
}

// UnmarshalMeta restores what AppendMeta wrote (the rules identity is read
// and checked for form, not applied: the task keeps its rules; see
// MetaRules). On error the task is left unchanged.
func (t *Task) UnmarshalMeta(b []byte) error {
	m, err := decodeMeta(b)
	if err != nil {
		return err
	}
	t.started = m.flags&1 != 0
	t.streamTime = m.streamTime
	t.snapValid = m.flags&2 != 0
	t.snapN = m.snapN
	t.snap = m.snap
	t.timers = m.timers
	t.firstDay, t.hasFirstDay = m.firstDay, m.flags&metaFirstDay != 0
	t.kept, t.building = nil, nil // they belonged to the old position
	return nil
}

// MetaRules returns the identity of the rules recorded in a task meta
// (AppendMeta). A version-1 meta, written before identities were recorded,
// gives RulesV1Version with an unknown fingerprint: a state from then is
// taken as evaluated under the default rules of that time (default-1).
func MetaRules(b []byte) (RulesID, error) {
	m, err := decodeMeta(b)
	return m.rules, err
}

// taskMeta is a decoded task meta.
type taskMeta struct {
	flags      byte
	streamTime int64
	snapN      int
	snap       []float64
	rules      RulesID
	timers     []Timer
	firstDay   int32
}

func decodeMeta(b []byte) (taskMeta, error) {
	r := reader{b: b}
	v := r.byte()
	if r.err == nil && v != metaVersion && v != metaVersion3 && v != metaVersion2 && v != metaVersion1 {
		return taskMeta{}, fmt.Errorf("engine: task meta: unknown version %d", v)
	}
	m := taskMeta{flags: r.byte(), streamTime: r.varint()}
	if m.flags&2 != 0 {
		m.snapN = int(r.uvarint())
		k := r.count(8)
		if r.err == nil && (k != min(m.snapN, SnapshotMax)) {
			return taskMeta{}, errors.New("engine: task meta: snapshot size mismatch")
		}
		m.snap = make([]float64, 0, k)
		for i := 0; i < k && r.err == nil; i++ {
			m.snap = append(m.snap, math.Float64frombits(r.u64()))
		}
		if r.err == nil && !slices.IsSorted(m.snap) {
			return taskMeta{}, errors.New("engine: task meta: snapshot not sorted")
		}
	}
	m.rules = RulesID{Version: RulesV1Version}
	if v >= metaVersion2 {
		m.rules = RulesID{Version: r.str(), Fingerprint: r.str()}
	}
	if v >= metaVersion3 {
		m.timers = r.timers()
	}
	if v >= metaVersion && m.flags&metaFirstDay != 0 {
		m.firstDay = r.int32()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return taskMeta{}, fmt.Errorf("engine: task meta: %w", r.err)
	}
	if m.flags&^(3|metaFirstDay) != 0 || (v < metaVersion && m.flags&metaFirstDay != 0) {
		return taskMeta{}, fmt.Errorf("engine: task meta: unknown flags %#x", m.flags)
	}
	return m, nil
}
