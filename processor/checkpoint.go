package processor

// What a task stores beside its SIREN states, as plain functions: the
// checkpoint meta (sweep progress + engine meta) and the merge plan of the
// batch being written.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// stateCodec adapts engine.State to the state cache. It writes states of
// version (0: engine.StateVersion; see Config.StateVersion).
type stateCodec struct{ version byte }

func (c stateCodec) Marshal(dst []byte, v *engine.State) []byte {
	return v.AppendBinaryVersion(dst, cmp.Or(c.version, engine.StateVersion))
}

// MarshalHeader makes stateCodec a state.HeaderCodec: a day change's new
// decision is written as its header alone (see engine.MergeHeader).
func (c stateCodec) MarshalHeader(dst []byte, v *engine.State) []byte {
	return v.AppendHeaderVersion(dst, cmp.Or(c.version, engine.StateVersion))
}
func (stateCodec) Unmarshal(siren string, b []byte) (*engine.State, error) {
	return engine.UnmarshalState(siren, b)
}

// sweepProgress is where a day change's pass 2 stands: stored in each
// checkpoint so that a restart resumes it after the last durable chunk.
type sweepProgress struct {
	active bool
	// rollout: the sweep is a rules rollout (rollout.go), not a day
	// change's pass 2.
	rollout bool
	cursor  string // last SIREN evaluated ("" = from the start)
}

// repairMark says a repair (repair.go) is writing rebuilt states: a restart
// runs it again, re-processing the inputs up to the same offsets, before it
// reads anything.
type repairMark struct {
	active bool
	to     [numInputs]int64 // the end offsets the repair re-processed
}

// taskMeta is what a checkpoint stores of a task beside offsets and states.
type taskMeta struct {
	sweep  sweepProgress
	repair repairMark
}

// Checkpoint meta layout (version 2): [2][flags][uvarint len][sweep cursor]
// [varint × 4: repair end offsets, when flags&2][engine meta]. flags: 1 = a
// sweep in progress (a day change's pass 2, or a rules rollout when
// flags&4), 2 = a repair in progress, 4 = the sweep is a rules rollout.
// Version 1 (no flag 4) still parses; a build that knows only version 1
// refuses version 2 instead of taking a rollout for a day change.
const (
	metaVersion  = 2
	metaVersion1 = 1
)

// appendMeta encodes the checkpoint meta of a task.
func appendMeta(dst []byte, m taskMeta, eng *engine.Task) []byte {
	dst = append(dst, metaVersion)
	var flags byte
	if m.sweep.active {
		flags |= 1
	}
	if m.repair.active {
		flags |= 2
	}
	if m.sweep.active && m.sweep.rollout {
		flags |= 4
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.sweep.cursor)))
	dst = append(dst, m.sweep.cursor...)
	if m.repair.active {
		for _, o := range m.repair.to {
			dst = binary.AppendVarint(dst, o)
		}
	}
	return eng.AppendMeta(dst)
}

// parseMeta decodes checkpoint meta: the task's part, and the engine meta
// into eng.
func parseMeta(b []byte, eng *engine.Task) (taskMeta, error) {
	m, rest, err := decodeMeta(b)
	if err != nil {
		return taskMeta{}, err
	}
	return m, eng.UnmarshalMeta(rest)
}

// decodeMeta decodes the task's part of checkpoint meta and returns the
// engine meta that follows it.
func decodeMeta(b []byte) (taskMeta, []byte, error) {
	if len(b) < 2 || (b[0] != metaVersion && b[0] != metaVersion1) {
		return taskMeta{}, nil, fmt.Errorf("checkpoint meta: unknown version or short (%d bytes)", len(b))
	}
	var m taskMeta
	flags := b[1]
	if flags&^7 != 0 || (b[0] == metaVersion1 && flags&^3 != 0) {
		return taskMeta{}, nil, fmt.Errorf("checkpoint meta: unknown flags %#x", flags)
	}
	m.sweep.active = flags&1 != 0
	m.sweep.rollout = flags&4 != 0
	rest, cursor, ok := cutString(b[2:])
	if !ok {
		return taskMeta{}, nil, errors.New("checkpoint meta: bad sweep cursor")
	}
	m.sweep.cursor = cursor
	if flags&2 != 0 {
		m.repair.active = true
		for i := range m.repair.to {
			v, k := binary.Varint(rest)
			if k <= 0 {
				return taskMeta{}, nil, errors.New("checkpoint meta: bad repair offsets")
			}
			m.repair.to[i], rest = v, rest[k:]
		}
	}
	return m, rest, nil
}

// cutString reads a uvarint-length-prefixed string from b.
func cutString(b []byte) (rest []byte, s string, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, "", false
	}
	return b[k+int(n):], string(b[k : k+int(n)]), true
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
