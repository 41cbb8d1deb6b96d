package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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
	s.offersUnknown = !hasExt(v) && s.segs != 0
	if hasExt(v) {
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

	if n := r.count(usageMinBytes(v)); n > 0 {
		s.usage = make([]dayUsage, n, n+1)
		r.decoded(decodeUsage(s.usage, r.b, true, 0, packedUsage(v)))
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
		r.decoded(decodeIDs(s.ids.hash, s.ids.day, r.b))
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

// The usage buckets and the exact event ids are most of a state's bytes
// (90 days of usage are ~270 varints): they are decoded by the loops below
// on a local slice and index rather than by reader calls, each of which
// checks the sticky error and stores the rest of the input back (a write
// barrier while the GC runs).

var (
	errUsageRange = errors.New("usage value out of range")
	errUsageGap   = errors.New("gap flag on the first usage day")
	errIDDayRange = errors.New("event id day out of range")
)

// decoded consumes the n bytes a decode loop read from r.b, or fails with
// its error.
func (r *reader) decoded(n int, err error) {
	if err != nil {
		r.fail(err)
		return
	}
	r.b = r.b[n:]
}

// uvarintAt is binary.Uvarint(b[i:]) returning the index after the varint,
// or -1 when it is truncated or overflows; a negative i stays negative, so a
// loop checks once after several reads. Unlike binary.Uvarint it is inlined
// (no call, no reslicing).
func uvarintAt(b []byte, i int) (uint64, int) {
	var x uint64
	for s := uint(0); s < 64 && uint(i) < uint(len(b)); s += 7 {
		c := b[i]
		i++
		if c < 0x80 {
			if s == 63 && c > 1 {
				break
			}
			return x | uint64(c)<<s, i
		}
		x |= uint64(c&0x7f) << s
	}
	return 0, -1
}

// varintAt is binary.Varint(b[i:]) in the manner of uvarintAt.
func varintAt(b []byte, i int) (int64, int) {
	ux, i := uvarintAt(b, i)
	return int64(ux>>1) ^ -int64(ux&1), i
}

// stopBits are the high bits of the bytes of a 64-bit word; the last byte
// of a varint has its bit clear.
const stopBits = 0x8080808080808080

// uvarint8 decodes the uvarint at the start of the little-endian word w,
// which must hold its last byte (^w&stopBits != 0), and returns it with its
// length: no branch per byte.
func uvarint8(w uint64) (uint64, int) {
	end := bits.TrailingZeros64(^w&stopBits) + 1
	x := w & (1<<end - 1)
	// Drop the stop bits: pack pairs of 7-bit groups, then of 14, then 28.
	x = x&0x007f007f007f007f | x&0x7f007f007f007f00>>1
	x = x&0x00003fff00003fff | x&0x3fff00003fff0000>>2
	x = x&0x000000000fffffff | x&0x0fffffff00000000>>4
	return x, end / 8
}

// decodeUsage decodes len(us) daily usage buckets from the front of b into
// us and returns the bytes read. The first bucket of the list has its day
// absolute, the next ones a gap from the day before; first: us[0] is that
// first bucket, else prev is the day of the bucket before it. packed: the
// version 4 layout (see AppendBinary), else that of versions 1-3.
func decodeUsage(us []dayUsage, b []byte, first bool, prev int32, packed bool) (int, error) {
	if !packed {
		return decodeUsageV3(us, b, first, prev)
	}
	i := 0
	day := int64(prev)
	for k := range us {
		var tag uint64
		if k == 0 && first {
			day, i = varintAt(b, i)
			tag, i = uvarintAt(b, i)
			if tag&1 != 0 {
				return 0, errUsageGap
			}
		} else {
			tag, i = uvarintAt(b, i)
			day++
			if tag&1 != 0 {
				var gap uint64
				gap, i = uvarintAt(b, i)
				if gap >= 1<<32 {
					return 0, errUsageRange
				}
				day += int64(gap) + 1
			}
		}
		by, n := uvarintBytes(b, i)
		i = n
		if i < 0 {
			return 0, errTruncated
		}
		sims := int64(tag>>1) - 1
		if day < -1<<31 || day > 1<<31-1 || by > 1<<63-1 || sims > 1<<31-1 {
			return 0, errUsageRange
		}
		us[k] = dayUsage{day: int32(day), bytes: int64(by), sims: int32(sims)}
	}
	return i, nil
}

// usageMinBytes is the least a usage bucket of version v takes.
func usageMinBytes(v byte) int {
	if packedUsage(v) {
		return 2
	}
	return 3
}

// decodeUsageV3 is decodeUsage for the layout of versions 1-3.
func decodeUsageV3(us []dayUsage, b []byte, first bool, prev int32) (int, error) {
	i := 0
	day := int64(prev)
	for k := range us {
		if k == 0 && first {
			day, i = varintAt(b, i)
		} else {
			var gap uint64
			gap, i = uvarintAt(b, i)
			if gap >= 1<<32 {
				return 0, errUsageRange
			}
			day += int64(gap) + 1
		}
		var by, sims uint64
		by, i = uvarintBytes(b, i)
		sims, i = uvarintAt(b, i)
		if i < 0 {
			return 0, errTruncated
		}
		if day < -1<<31 || day > 1<<31-1 || by > 1<<63-1 || int64(sims)-1 > 1<<31-1 {
			return 0, errUsageRange
		}
		us[k] = dayUsage{day: int32(day), bytes: int64(by), sims: int32(int64(sims) - 1)}
	}
	return i, nil
}

// uvarintBytes is uvarintAt for a byte count: they take 4-5 bytes, and one
// 64-bit load decodes them faster than uvarintAt's branch per byte (~20 % of
// the usage loop).
func uvarintBytes(b []byte, i int) (uint64, int) {
	if i >= 0 && len(b)-i >= 8 && ^binary.LittleEndian.Uint64(b[i:])&stopBits != 0 {
		v, n := uvarint8(binary.LittleEndian.Uint64(b[i:]))
		return v, i + n
	}
	return uvarintAt(b, i)
}

// decodeIDs decodes len(hash) exact event ids (day delta, 8-byte hash) from
// the front of b into hash and day and returns the bytes read.
func decodeIDs(hash []uint64, day []int32, b []byte) (int, error) {
	day = day[:len(hash)]
	i := 0
	var d int64
	for k := range hash {
		var delta int64
		delta, i = varintAt(b, i)
		if i < 0 {
			return 0, errTruncated
		}
		d += delta
		if d < -1<<31 || d > 1<<31-1 {
			return 0, errIDDayRange
		}
		if len(b)-i < 8 {
			return 0, errTruncated
		}
		day[k] = int32(d)
		hash[k] = binary.LittleEndian.Uint64(b[i:])
		i += 8
	}
	return i, nil
}
