package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// Checkpoint is what a task needs to resume a partition, committed atomically with its states.
type Checkpoint struct {
	// Offsets maps input topic → next offset to read in this partition.
	Offsets map[string]int64
	// Meta is opaque task metadata (engine stream time, percentile snapshot, sweep cursor).
	Meta []byte
	// Group is the consumer group that wrote it ("" = not recorded: encoded as version 1,
	// readable by builds that predate groups). A changelog's checkpoint records carry it so
	// that a task refuses to restore another group's state.
	Group string
}

func checkpointKey(p int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixCheckpoint}, uint32(p))
}

// Checkpoint returns the last committed checkpoint of p; false when p has none (never committed,
// dropped, or a restore that did not finish).
func (s *Store) Checkpoint(p int32) (Checkpoint, bool, error) {
	if err := checkPartition(p); err != nil {
		return Checkpoint{}, false, err
	}
	var cp Checkpoint
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := s.lookupValue(txn, checkpointKey(p), nil, nil)
		if err != nil {
			return err
		}
		cp, err = decodeCheckpoint(v)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, s.wrap("read checkpoint from", p, err)
	}
	return cp, true, nil
}

func encodeCheckpoint(dst []byte, cp Checkpoint) []byte {
	topics := make([]string, 0, len(cp.Offsets))
	for t := range cp.Offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	if cp.Group == "" {
		dst = append(dst, checkpointVersion)
	} else {
		dst = append(dst, checkpointGroupVersion)
		dst = binary.AppendUvarint(dst, uint64(len(cp.Group)))
		dst = append(dst, cp.Group...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(topics)))
	for _, t := range topics {
		dst = binary.AppendUvarint(dst, uint64(len(t)))
		dst = append(dst, t...)
		dst = binary.AppendVarint(dst, cp.Offsets[t])
	}
	dst = binary.AppendUvarint(dst, uint64(len(cp.Meta)))
	return append(dst, cp.Meta...)
}

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	bad := func(what string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("checkpoint record: %s: %w", what, ErrCorrupt)
	}
	if len(b) == 0 || (b[0] != checkpointVersion && b[0] != checkpointGroupVersion) {
		return bad("unknown version")
	}
	version := b[0]
	b = b[1:]
	var group string
	if version == checkpointGroupVersion {
		l, k := binary.Uvarint(b)
		if k <= 0 || l == 0 || l > uint64(len(b)-k) {
			return bad("group length")
		}
		group = string(b[k : k+int(l)])
		b = b[k+int(l):]
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return bad("topic count")
	}
	b = b[k:]
	cp := Checkpoint{Offsets: make(map[string]int64, n), Group: group}
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return bad("topic length")
		}
		t := string(b[k : k+int(l)])
		b = b[k+int(l):]
		off, k2 := binary.Varint(b)
		if k2 <= 0 {
			return bad("offset")
		}
		b = b[k2:]
		cp.Offsets[t] = off
	}
	l, k := binary.Uvarint(b)
	if k <= 0 || l != uint64(len(b)-k) {
		return bad("meta length")
	}
	if l > 0 {
		cp.Meta = append([]byte(nil), b[k:]...)
	}
	return cp, nil
}
