package processor

// What a task stores beside its SIREN states, as plain functions: the
// checkpoint meta (sweep progress + engine meta) and the merge plan of the
// batch being written.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// stateCodec adapts engine.State to the state cache.
type stateCodec struct{}

func (stateCodec) Marshal(dst []byte, v *engine.State) []byte { return v.AppendBinary(dst) }

// MarshalHeader makes stateCodec a state.HeaderCodec: a day change's new
// decision is written as its header alone (see engine.MergeHeader).
func (stateCodec) MarshalHeader(dst []byte, v *engine.State) []byte { return v.AppendHeader(dst) }
func (stateCodec) Unmarshal(siren string, b []byte) (*engine.State, error) {
	return engine.UnmarshalState(siren, b)
}

// sweepProgress is where a day change's pass 2 stands: stored in each
// checkpoint so that a restart resumes it after the last durable chunk.
type sweepProgress struct {
	active bool
	cursor string // last SIREN evaluated ("" = from the start)
}

// Checkpoint meta layout (version 1): [1][flags][uvarint len][sweep cursor][engine meta].
const metaVersion = 1

// appendMeta encodes the checkpoint meta of a task.
func appendMeta(dst []byte, sw sweepProgress, eng *engine.Task) []byte {
	dst = append(dst, metaVersion)
	var flags byte
	if sw.active {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(sw.cursor)))
	dst = append(dst, sw.cursor...)
	return eng.AppendMeta(dst)
}

// parseMeta decodes checkpoint meta: the sweep progress, and the engine meta
// into eng.
func parseMeta(b []byte, eng *engine.Task) (sweepProgress, error) {
	if len(b) < 2 || b[0] != metaVersion {
		return sweepProgress{}, fmt.Errorf("checkpoint meta: unknown version or short (%d bytes)", len(b))
	}
	sw := sweepProgress{active: b[1]&1 != 0}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || uint64(len(b)-2-k) < n {
		return sweepProgress{}, errors.New("checkpoint meta: bad sweep cursor")
	}
	sw.cursor = string(b[2+k : 2+k+int(n)])
	return sw, eng.UnmarshalMeta(b[2+k+int(n):])
}

// The merge plan records the input of every record of a batch, so that a
// restart replays the same interleaving and re-emits byte-identical outputs,
// whatever live arrival timing decided.
//
// Plan layout: [version 1][varint batch start offset per input][input index
// per record].
const planVersion = 1

// encodePlan encodes the plan of a batch that starts at offsets start.
func encodePlan(start [numInputs]int64, records []byte) []byte {
	b := []byte{planVersion}
	for _, o := range start {
		b = binary.AppendVarint(b, o)
	}
	return append(b, records...)
}

// decodePlan returns the records of a plan whose batch starts exactly at
// offsets next; ok is false for any other plan (stale: its batch was
// committed, or a changelog restore moved past it) or a damaged one.
func decodePlan(b []byte, next [numInputs]int64) (records []byte, ok bool) {
	if len(b) == 0 || b[0] != planVersion {
		return nil, false
	}
	rest := b[1:]
	for i := 0; i < numInputs; i++ {
		v, k := binary.Varint(rest)
		if k <= 0 || v != next[i] {
			return nil, false
		}
		rest = rest[k:]
	}
	for _, in := range rest {
		if int(in) >= numInputs {
			return nil, false
		}
	}
	return rest, true
}
