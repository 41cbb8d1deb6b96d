package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The header of a state's encoding is everything a decision changes:
//
//	version(1) seq(uv) segments(1) ext_len(uv) ext
//
// ext (state version 3) is a list of tagged fields in ascending tag order,
// each `tag(uv) len(uv) payload`, a field at its zero value left out, so a
// state that never held offers encodes exactly as a version 2 state plus one
// zero byte. A day change, a timer or a rules rollout changes only the
// header: the processor writes it alone (see MergeHeader). New decision
// state goes here, under a new tag, with its encode and decode beside its
// logic; an unknown tag is an error (a state from a newer build).
const (
	// extOffers: the offers last emitted for the SIREN (offerSet, 1 byte),
	// so that a change of offers alone is an event (spec §8).
	extOffers = 1
)

// appendExt appends st's header extension fields (without ext_len).
func (s *State) appendExt(dst []byte) []byte {
	if s.offers != 0 {
		dst = binary.AppendUvarint(dst, extOffers)
		dst = binary.AppendUvarint(dst, 1)
		dst = append(dst, byte(s.offers))
	}
	dst = s.appendEntered(dst)
	dst = appendHoldoutExt(dst, s.ho)
	dst = appendEligibilityExt(dst, &s.outcomeState)
	return appendContractPlanExt(dst, &s.outcomeState)
}

// readExt decodes a header extension into st.
func (s *State) readExt(b []byte) error {
	last := uint64(0)
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errTruncated
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return errTruncated
		}
		payload := b[n : n+int(size)]
		b = b[n+int(size):]
		if tag <= last {
			return fmt.Errorf("tag %d after %d", tag, last)
		}
		last = tag
		switch tag {
		case extOffers:
			if len(payload) != 1 || offerSet(payload[0])&^allOffers != 0 || payload[0] == 0 {
				return fmt.Errorf("bad offers %x", payload)
			}
			s.offers = offerSet(payload[0])
		case extEntered:
			if err := s.readEntered(payload); err != nil {
				return err
			}
		case extHoldout:
			ho, err := readHoldoutExt(payload)
			if err != nil {
				return err
			}
			s.ho = ho
		case extEligibility:
			if err := readEligibilityExt(payload, &s.outcomeState); err != nil {
				return err
			}
		case extContractPlan:
			if err := readContractPlanExt(payload, &s.outcomeState); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown tag %d (a state written by a newer build?)", tag)
		}
	}
	return nil
}

// AppendHeader appends the header of st's encoding — the first bytes of
// AppendBinary: version, seq, segments and the extension, the decision state
// that Evaluate, a timer or a rollout changes — to dst. A change that leaves
// the body alone writes this header alone (a few bytes instead of the ~1 KB
// state); MergeHeader puts it back in front of the stored body on every
// read, so what a reader sees is exactly AppendBinary of the new state.
func (s *State) AppendHeader(dst []byte) []byte { return s.appendHeader(dst, StateVersion) }

// AppendHeaderVersion is AppendHeader in the schema of version v (see
// AppendBinaryVersion).
func (s *State) AppendHeaderVersion(dst []byte, v byte) []byte {
	if CheckWriteVersion(int(v)) != nil {
		panic(fmt.Sprintf("engine: cannot write state version %d", v))
	}
	return s.appendHeader(dst, v)
}

func (s *State) appendHeader(dst []byte, v byte) []byte {
	dst = append(dst, v)
	dst = binary.AppendUvarint(dst, uint64(s.seq))
	dst = append(dst, byte(s.segs))
	// The extension is a few bytes: encode it after a one-byte length and
	// move it if its length needs more.
	at := len(dst)
	dst = append(dst, 0)
	dst = s.appendExt(dst)
	n := len(dst) - at - 1
	if n < 0x80 {
		dst[at] = byte(n)
		return dst
	}
	var lb [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(lb[:], uint64(n))
	dst = append(dst, lb[:ln-1]...)
	copy(dst[at+ln:], dst[at+1:at+1+n])
	copy(dst[at:], lb[:ln])
	return dst
}

// headerLen returns the length of the header of encoding b and its seq.
func headerLen(b []byte) (int, uint64, error) {
	if len(b) == 0 {
		return 0, 0, errTruncated
	}
	if !knownStateVersion(b[0]) {
		return 0, 0, fmt.Errorf("unknown state version %d", b[0])
	}
	seq, n := binary.Uvarint(b[1:])
	if n <= 0 || len(b) < 1+n+1 {
		return 0, 0, errTruncated
	}
	if seq > 1<<62 {
		return 0, 0, errors.New("bad seq")
	}
	hn := 1 + n + 1
	if hasExt(b[0]) {
		size, m := binary.Uvarint(b[hn:])
		if m <= 0 || size > uint64(len(b)-hn-m) {
			return 0, 0, errTruncated
		}
		hn += m + int(size)
	}
	return hn, seq, nil
}

// MergeHeader appends to dst the state encoding base with its header
// replaced by hdr (an AppendHeader), when hdr is newer than base's own header
// (a greater seq: every decision increments seq, and a full write of the
// state carries the seq of its last decision, so a header written before the
// base's last full write is stale and ignored). It is the
// state.Options.MergeHeader of the processor's store. The result is hdr
// followed by base's body when both bodies are laid out alike (sameBody:
// versions 2 and 3 share one, so a version 3 header over a version 2 base is
// a version 3 state); a base of another layout (version 1, or 1-3 under a
// version 4 header: stored before an upgrade; version 4 under a version 3
// header: a rolling upgrade's, CheckWriteVersion) is decoded and encoded
// again, in the header's version when this build writes it.
func MergeHeader(dst, base, hdr []byte) ([]byte, error) {
	bn, bseq, err := headerLen(base)
	if err != nil {
		return dst, fmt.Errorf("engine: state: %w", err)
	}
	hn, hseq, err := headerLen(hdr)
	if err == nil && hn != len(hdr) {
		err = fmt.Errorf("%d trailing bytes", len(hdr)-hn)
	}
	var h State
	if err == nil {
		h, err = decodeHeader(hdr)
	}
	if err != nil {
		return dst, fmt.Errorf("engine: state header: %w", err)
	}
	if hseq <= bseq {
		return append(dst, base...), nil
	}
	if sameBody(hdr[0], base[0]) {
		dst = append(dst, hdr...)
		return append(dst, base[bn:]...), nil
	}
	st, err := unmarshalState("", base)
	if err != nil {
		return dst, fmt.Errorf("engine: state: %w", err)
	}
	st.copyHeader(&h)
	// In the header's version when this build can write it: a build writing
	// version 3 for a rolling upgrade (CheckWriteVersion) must not turn a
	// state into one its older peers cannot read, even over a version 4
	// base. An older header (version 1 or 2) gives the current version.
	v := byte(StateVersion)
	if CheckWriteVersion(int(hdr[0])) == nil {
		v = hdr[0]
	}
	return st.appendBinary(dst, v), nil
}

// copyHeader sets st's header fields (seq, segments, extension) to h's.
func (s *State) copyHeader(h *State) {
	s.seq, s.segs, s.offers, s.offersUnknown = h.seq, h.segs, h.offers, h.offersUnknown
	s.entered = h.entered
	s.outcomeState = h.outcomeState
}

// decodeHeader decodes a header alone (AppendHeader's bytes) into a State
// holding only the header fields.
func decodeHeader(b []byte) (State, error) {
	var s State
	r := reader{b: b}
	v := r.byte()
	s.seq = int64(r.uvarint())
	s.segs = Segments(r.byte())
	if r.err == nil && s.segs&^AllSegments != 0 {
		return s, fmt.Errorf("unknown segment bits %#x", byte(s.segs))
	}
	s.offersUnknown = !hasExt(v) && s.segs != 0
	if r.err == nil && hasExt(v) {
		n := r.count(1)
		if r.err == nil {
			if err := s.readExt(r.b[:n]); err != nil {
				return s, err
			}
		}
	}
	return s, r.err
}
