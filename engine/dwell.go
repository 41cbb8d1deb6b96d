package engine

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// extEntered (header extension tag 2): the stream day each held segment
// with a min_dwell_days was entered, so that min_dwell_days can hold it.
// Payload: segments(1) then, per segment bit in ascending order, its entry
// day (varint). Left out when no held segment has one (rules without
// min_dwell_days never write it). It changes only with a decision (a
// segment entered or left), like seq: the header alone carries it.
const extEntered = 2

// enteredDays maps segments to their entry stream day.
type enteredDays struct {
	set Segments
	day [8]int32 // by bit index
}

func (e *enteredDays) get(seg Segments) (int32, bool) {
	if e.set&seg == 0 {
		return 0, false
	}
	return e.day[bits.TrailingZeros8(uint8(seg))], true
}

// appendEntered appends the extEntered field of st (nothing at zero).
func (s *State) appendEntered(dst []byte) []byte {
	if s.entered.set == 0 {
		return dst
	}
	var buf [1 + 8*binary.MaxVarintLen32]byte
	p := append(buf[:0], byte(s.entered.set))
	for set := s.entered.set; set != 0; set &= set - 1 {
		p = binary.AppendVarint(p, int64(s.entered.day[bits.TrailingZeros8(uint8(set))]))
	}
	dst = binary.AppendUvarint(dst, extEntered)
	dst = binary.AppendUvarint(dst, uint64(len(p)))
	return append(dst, p...)
}

// readEntered decodes an extEntered payload into st.
func (s *State) readEntered(payload []byte) error {
	r := reader{b: payload}
	set := Segments(r.byte())
	if r.err == nil && (set == 0 || set&^AllSegments != 0) {
		return fmt.Errorf("bad entered segments %#x", byte(set))
	}
	var e enteredDays
	e.set = set
	for rest := set; rest != 0 && r.err == nil; rest &= rest - 1 {
		e.day[bits.TrailingZeros8(uint8(rest))] = r.int32()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes after entered days", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	s.entered = e
	return nil
}

// nextEntered is the entry days after a decision prev → next on stream day
// d: a segment with a min_dwell_days that enters gets d, one still held
// keeps its day (none when it was entered under rules without dwell), every
// other one has none.
func (t *Task) nextEntered(cur enteredDays, prev, next Segments, d int32) enteredDays {
	var e enteredDays
	for _, seg := range dwellSegments {
		if next&seg == 0 || t.rules.stability(seg).MinDwellDays == 0 {
			continue
		}
		day, ok := cur.get(seg)
		if prev&seg == 0 {
			day, ok = d, true
		}
		if ok {
			e.set |= seg
			e.day[bits.TrailingZeros8(uint8(seg))] = day
		}
	}
	return e
}
