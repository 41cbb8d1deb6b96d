package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// StateVersion is the schema version written as the first byte of a state.
// Version 4 packs a usage bucket's day gap into its SIM count (one byte for
// the two on a daily bucket of fewer than 63 SIMs, ~90 bytes less for a
// SIREN with 90 days of daily usage); version 3 added the header extension
// (see header.go: the decision state kept beside seq and segments, such as
// the emitted offers); version 2 added the dedup filters (see dedup).
// Earlier versions still decode: version 3 and 2 states with the old usage
// layout (version 2 with an empty extension); version 1 states (no filters,
// every remembered id exact): a v1 set above DedupExact is spilled into
// filters as if its ids had arrived now.
const StateVersion = 4

// stateVersion1, 2 and 3 are the earlier state schemas, still read.
const (
	stateVersion1 = 1
	stateVersion2 = 2
	stateVersion3 = 3
)

func knownStateVersion(v byte) bool {
	return v >= stateVersion1 && v <= StateVersion
}

// hasFilters: the encoding of version v has dedup filters (and bounds its
// exact ids at DedupExact).
func hasFilters(v byte) bool { return v >= stateVersion2 }

// hasExt: the header of version v has an extension.
func hasExt(v byte) bool { return v >= stateVersion3 }

// packedUsage: the usage buckets of version v pack the day gap into the SIM
// count (else the gap and the SIM count are two varints).
func packedUsage(v byte) bool { return v >= 4 }

// sameBody: the bodies (everything after the header) of versions a and b
// are laid out alike, so one's body can follow the other's header.
func sameBody(a, b byte) bool {
	return hasFilters(a) == hasFilters(b) && packedUsage(a) == packedUsage(b)
}

var errTruncated = errors.New("truncated")

// reader decodes the varint formats of the state and meta encodings; the
// first error sticks and later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(errTruncated)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads an element count; each element takes at least minBytes, which
// bounds the count by the remaining input (no huge allocation on bad input).
func (r *reader) count(minBytes int) int {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b)/minBytes) {
		r.fail(fmt.Errorf("count %d exceeds input", v))
		return 0
	}
	return int(v)
}

func (r *reader) str() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) int32() int32 {
	v := r.varint()
	if v < -1<<31 || v > 1<<31-1 {
		r.fail(fmt.Errorf("value %d overflows int32", v))
		return 0
	}
	return int32(v)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

const (
	flagUsage     = 1 << 0
	flagProfile   = 1 << 1
	flagWorkforce = 1 << 2
)

// AppendBinary appends st's encoding (schema StateVersion) to dst. The
// format is varint based, in a fixed field order, every list in its sorted
// order, so the same state always yields the same bytes. The SIREN itself is
// not encoded (it is the store key). About 6 bytes per usage day, 9-10 per
// exactly remembered event id; ~600 bytes for a SIREN with 90 days of daily
// usage. Every list is bounded (see Max* and Dedup*).
//
//	version(1) seq(uv) segments(1) ext_len(uv) ext      (the header)
//	flags(1) [first_usage_day(v)]
//	usage: n(uv) {first: day v, (sims+1)<<1 uv;
//	              next: (sims+1)<<1|gapped uv [days skipped - 1 uv if gapped];
//	              bytes uv}
//	       (versions 1-3: {day: first v, then uv days skipped; bytes uv; sims+1 uv})
//	postal codes: n {code str, last_day v}
//	open outages: n {id str, start v}
//	resolved outages: n {id str, start v, end-start uv}
//	claims: n {day: first v then uv delta; amount<<1|linked uv}
//	[profile: time v, workforce v if known, plan str]
//	workforce history: n {time delta v, workforce v}
//	event ids: n {day delta v, fnv64a 8 bytes LE}      (exact set, arrival order)
//	dedup filters: n {from v, to-from uv, ids uv, ones uv,
//	                  ones < sparseMax ? ones × bit gap uv : 2048 words LE}
func (s *State) AppendBinary(dst []byte) []byte {
	return s.appendBinary(dst, StateVersion)
}

// MinWriteVersion is the oldest state version this build can write
// (AppendBinaryVersion): version 3, which the builds before version 4 read,
// so that a group can be upgraded one instance at a time (see
// CheckWriteVersion).
const MinWriteVersion = stateVersion3

// CheckWriteVersion says whether this build can write states of version v:
// StateVersion, or MinWriteVersion for a rolling upgrade from a build that
// reads no later version.
func CheckWriteVersion(v int) error {
	if v < MinWriteVersion || v > StateVersion {
		return fmt.Errorf("state version %d: this build writes version %d, or %d for a rolling upgrade from an older build", v, StateVersion, MinWriteVersion)
	}
	return nil
}

// AppendBinaryVersion is AppendBinary in the schema of version v (checked
// by CheckWriteVersion; another v panics): the same state, the same bytes
// as a build whose StateVersion is v writes.
func (s *State) AppendBinaryVersion(dst []byte, v byte) []byte {
	if CheckWriteVersion(int(v)) != nil {
		panic(fmt.Sprintf("engine: cannot write state version %d", v))
	}
	return s.appendBinary(dst, v)
}

func (s *State) appendBinary(dst []byte, v byte) []byte {
	dst = s.appendHeader(dst, v)
	var flags byte
	if s.hasUsage {
		flags |= flagUsage
	}
	if s.hasProfile {
		flags |= flagProfile
	}
	if s.hasWorkforce {
		flags |= flagWorkforce
	}
	dst = append(dst, flags)
	if s.hasUsage {
		dst = binary.AppendVarint(dst, int64(s.firstUsageDay))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.usage)))
	if packedUsage(v) {
		dst = s.appendUsage(dst)
	} else {
		dst = s.appendUsageV3(dst)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.postals)))
	for _, p := range s.postals {
		dst = appendStr(dst, p.code)
		dst = binary.AppendVarint(dst, int64(p.lastDay))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.open)))
	for _, o := range s.open {
		dst = appendStr(dst, o.id)
		dst = binary.AppendVarint(dst, o.start)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.resolved)))
	for _, o := range s.resolved {
		dst = appendStr(dst, o.id)
		dst = binary.AppendVarint(dst, o.start)
		dst = binary.AppendUvarint(dst, uint64(o.end-o.start))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.claims)))
	for i, c := range s.claims {
		if i == 0 {
			dst = binary.AppendVarint(dst, int64(c.day))
		} else {
			dst = binary.AppendUvarint(dst, uint64(c.day-s.claims[i-1].day))
		}
		v := uint64(c.amount) << 1
		if c.linked {
			v |= 1
		}
		dst = binary.AppendUvarint(dst, v)
	}
	if s.hasProfile {
		dst = binary.AppendVarint(dst, s.profileTime)
		if s.hasWorkforce {
			dst = binary.AppendVarint(dst, int64(s.workforce))
		}
		dst = appendStr(dst, s.plan)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.wfHist)))
	var prevT int64
	for _, o := range s.wfHist {
		dst = binary.AppendVarint(dst, o.t-prevT)
		dst = binary.AppendVarint(dst, int64(o.wf))
		prevT = o.t
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.ids.hash)))
	var prevD int32
	for i, h := range s.ids.hash {
		dst = binary.AppendVarint(dst, int64(s.ids.day[i]-prevD))
		dst = binary.LittleEndian.AppendUint64(dst, h)
		prevD = s.ids.day[i]
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.ids.filters)))
	for i := range s.ids.filters {
		dst = s.ids.filters[i].appendBinary(dst)
	}
	return dst
}

// appendUsage appends the usage buckets in the layout of version 4.
func (s *State) appendUsage(dst []byte) []byte {
	for i, u := range s.usage {
		// tag = (sims+1)<<1 | gapped; a gapped bucket is followed by its gap - 1
		// (the days between it and the bucket before, at least one).
		tag := uint64(u.sims+1) << 1
		if i == 0 {
			dst = binary.AppendVarint(dst, int64(u.day))
			dst = binary.AppendUvarint(dst, tag)
		} else if gap := u.day - s.usage[i-1].day - 1; gap == 0 {
			dst = binary.AppendUvarint(dst, tag)
		} else {
			dst = binary.AppendUvarint(dst, tag|1)
			dst = binary.AppendUvarint(dst, uint64(gap-1))
		}
		dst = binary.AppendUvarint(dst, uint64(u.bytes))
	}
	return dst
}

// appendUsageV3 appends the usage buckets in the layout of versions 1-3.
func (s *State) appendUsageV3(dst []byte) []byte {
	for i, u := range s.usage {
		if i == 0 {
			dst = binary.AppendVarint(dst, int64(u.day))
		} else {
			dst = binary.AppendUvarint(dst, uint64(u.day-s.usage[i-1].day-1))
		}
		dst = binary.AppendUvarint(dst, uint64(u.bytes))
		dst = binary.AppendUvarint(dst, uint64(u.sims+1))
	}
	return dst
}

// sparseMax: a filter with fewer set bits is encoded as the gaps between
// them (≤ 3 bytes each), else as its 16 KiB of words.
const sparseMax = DedupFilterBits / 8 / 3

func (f *filter) appendBinary(dst []byte) []byte {
	dst = binary.AppendVarint(dst, int64(f.from))
	dst = binary.AppendUvarint(dst, uint64(f.to-f.from))
	dst = binary.AppendUvarint(dst, uint64(f.n))
	ones := f.ones()
	dst = binary.AppendUvarint(dst, uint64(ones))
	if ones >= sparseMax {
		for _, w := range f.bits {
			dst = binary.LittleEndian.AppendUint64(dst, w)
		}
		return dst
	}
	prev := -1
	for i, w := range f.bits {
		for w != 0 {
			b := i*64 + bits.TrailingZeros64(w)
			w &= w - 1
			dst = binary.AppendUvarint(dst, uint64(b-prev-1))
			prev = b
		}
	}
	return dst
}

// filter reads one filter of a version 2 encoding; prevTo is the last day
// of the previous filter (filters are sorted and disjoint).
func (r *reader) filter(first bool, prevTo int64) filter {
	from := r.varint()
	to := from + int64(r.uvarint())
	n := r.uvarint()
	ones := r.uvarint()
	if r.err != nil {
		return filter{}
	}
	if from < -1<<31 || to > 1<<31-1 || (!first && from <= prevTo) {
		r.fail(errors.New("dedup filter days out of order"))
	}
	if n > DedupFilterCap || ones > n*DedupFilterHashes || ones > DedupFilterBits {
		r.fail(fmt.Errorf("dedup filter with %d ids and %d bits set", n, ones))
	}
	if r.err != nil {
		return filter{}
	}
	f := filter{from: int32(from), to: int32(to), n: int32(n), bits: make([]uint64, filterWords)}
	if ones >= sparseMax {
		got := 0
		for i := range f.bits {
			f.bits[i] = r.u64()
			got += bits.OnesCount64(f.bits[i])
		}
		if r.err == nil && uint64(got) != ones {
			r.fail(errors.New("dedup filter bit count mismatch"))
		}
		return f
	}
	b := int64(-1)
	for i := uint64(0); i < ones && r.err == nil; i++ {
		b += int64(r.uvarint()) + 1
		if b >= DedupFilterBits {
			r.fail(errors.New("dedup filter bit out of range"))
			break
		}
		f.bits[b>>6] |= 1 << (b & 63)
	}
	return f
}

// intensityEncoded is intensity(UnmarshalState(siren, b)) computed straight
// from the encoding, without building a State: it reads the usage days and
// the profile and skips the rest, allocating nothing. Pass 1 of a day change
// over a store (FromEncoded) calls it for every stored SIREN, so its cost
// bounds the day change at scale. It validates what it reads; an error means
// the encoding is bad (UnmarshalState would fail too, possibly later).
func (t *Task) intensityEncoded(b []byte) (float64, bool, error) {
	hn, _, err := headerLen(b)
	if err != nil {
		return 0, false, fmt.Errorf("engine: state: %w", err)
	}
	r := reader{b: b[hn:]}
	flags := r.byte()
	if r.err == nil && (flags&^(flagUsage|flagProfile|flagWorkforce) != 0 || (flags&flagWorkforce != 0 && flags&flagProfile == 0)) {
		r.fail(fmt.Errorf("bad flags %#x", flags))
	}
	if flags&flagUsage != 0 {
		r.int32()
	}
	d := int64(t.windowEnd(t.StreamDay()))
	var t30 int64
	maxSims := int32(-1)
	// The buckets are decoded a chunk at a time into a buffer on the stack.
	var buf [32]dayUsage
	var prev int32
	for k, n := 0, r.count(usageMinBytes(b[0])); k < n && r.err == nil; {
		us := buf[:min(n-k, len(buf))]
		r.decoded(decodeUsage(us, r.b, k == 0, prev, packedUsage(b[0])))
		if r.err != nil {
			break
		}
		for _, u := range us {
			if int64(u.day) <= d && int64(u.day) >= d-29 {
				t30 = satAdd(t30, u.bytes)
				if u.sims > maxSims {
					maxSims = u.sims
				}
			}
		}
		k += len(us)
		prev = us[len(us)-1].day
	}
	for i, n := 0, r.count(2); i < n && r.err == nil; i++ { // postal codes
		r.skipStr()
		r.varint()
	}
	for i, n := 0, r.count(2); i < n && r.err == nil; i++ { // open outages
		r.skipStr()
		r.varint()
	}
	for i, n := 0, r.count(3); i < n && r.err == nil; i++ { // resolved outages
		r.skipStr()
		r.varint()
		r.uvarint()
	}
	for i, n := 0, r.count(2); i < n && r.err == nil; i++ { // claims
		if i == 0 {
			r.varint()
		} else {
			r.uvarint()
		}
		r.uvarint()
	}
	st := State{hasWorkforce: flags&flagWorkforce != 0}
	if flags&flagProfile != 0 {
		r.varint()
		if st.hasWorkforce {
			st.workforce = r.int32()
		}
	}
	if r.err != nil {
		return 0, false, fmt.Errorf("engine: state: %w", r.err)
	}
	v, _, ok := st.intensity(t30, maxSims)
	return v, ok && t.scored(t30), nil
}

// skipStr skips a length-prefixed string.
func (r *reader) skipStr() {
	n := r.count(1)
	if r.err == nil {
		r.b = r.b[n:]
	}
}
