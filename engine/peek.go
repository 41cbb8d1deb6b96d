package engine

import "fmt"

// PeekHeader returns the seq and segments of an encoded state (AppendBinary,
// a MergeHeader result included) from its first bytes, without decoding the
// rest: a listing of a segment's SIRENs filters a partition's states with it
// at the cost of a few byte reads per state.
func PeekHeader(b []byte) (seq int64, segs Segments, err error) {
	n, s, err := headerLen(b)
	if err != nil {
		return 0, 0, fmt.Errorf("engine: state: %w", err)
	}
	return int64(s), Segments(b[n-1]), nil
}
