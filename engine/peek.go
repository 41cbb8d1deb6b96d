package engine

import (
	"encoding/binary"
	"fmt"
)

// PeekHeader returns the seq and segments of an encoded state (AppendBinary,
// a MergeHeader result included) from its first bytes, without decoding the
// rest: a listing of a segment's SIRENs filters a partition's states with it
// at the cost of a few byte reads per state.
func PeekHeader(b []byte) (seq int64, segs Segments, err error) {
	_, s, err := headerLen(b)
	if err != nil {
		return 0, 0, fmt.Errorf("engine: state: %w", err)
	}
	// version(1) seq(uv) segments(1) [ext]: headerLen checked the bytes.
	_, m := binary.Uvarint(b[1:])
	return int64(s), Segments(b[1+m]), nil
}
