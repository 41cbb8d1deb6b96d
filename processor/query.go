package processor

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
)

// ErrUnknownSIREN: no state for this SIREN on the partition that owns it.
var ErrUnknownSIREN = errors.New("unknown SIREN")

// NotOwnedError: the SIREN's partition belongs to another instance.
type NotOwnedError struct {
	SIREN     string
	Partition int32
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("SIREN %s is on partition %d, not owned by this instance", e.SIREN, e.Partition)
}

// PartitionOf returns the input partition of a SIREN key: murmur2, like the
// Java default partitioner, over n partitions.
func PartitionOf(siren string, n int) int32 {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return int32((&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(siren)}, ps...))
}

// View returns a SIREN's current metrics, segments, reasons, offers and seq
// as of the last commit of its partition (at most one commit interval old).
// It reads Badger, never the task's in-memory state, so it needs no lock on
// the hot path. It returns the SIREN's partition with every answer.
func (p *Processor) View(siren string) (*engine.Decision, int32, error) {
	n := p.Partitions()
	if n == 0 {
		return nil, -1, errors.New("processor not started: partition count unknown")
	}
	if !engine.ValidSIREN(siren) {
		return nil, -1, fmt.Errorf("%w: %q", engine.ErrInvalidSIREN, siren)
	}
	part := PartitionOf(siren, n)
	owned := false
	for _, o := range p.Owned() {
		if o == part {
			owned = true
		}
	}
	if !owned {
		return nil, part, &NotOwnedError{SIREN: siren, Partition: part}
	}
	cp, ok, err := p.cfg.Store.Checkpoint(part)
	if err != nil {
		return nil, part, err
	}
	b, err := p.cfg.Store.Get(part, siren)
	if err != nil {
		return nil, part, err
	}
	if !ok || b == nil {
		return nil, part, fmt.Errorf("%w: %s (partition %d)", ErrUnknownSIREN, siren, part)
	}
	st, err := engine.UnmarshalState(siren, b)
	if err != nil {
		return nil, part, err
	}
	eng := engine.NewTask(p.cfg.Rules, p.cfg.engineConfig(false))
	if _, err := parseMeta(cp.Meta, eng); err != nil {
		return nil, part, err
	}
	var d engine.Decision
	eng.View(st, &d)
	return &d, part, nil
}
