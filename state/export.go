package state

// AppendCheckpoint appends the stable binary encoding of cp (the one stored
// in Badger) to dst: used for the changelog's per-partition offset record.
func AppendCheckpoint(dst []byte, cp Checkpoint) []byte { return encodeCheckpoint(dst, cp) }

// ParseCheckpoint decodes AppendCheckpoint's encoding; errors wrap ErrCorrupt.
func ParseCheckpoint(b []byte) (Checkpoint, error) { return decodeCheckpoint(b) }
