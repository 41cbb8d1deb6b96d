package bench

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// Floor stages of the warm test: raw consumption of the day's topics plus the
// least a record-at-a-time processor must do per record when its SIREN's
// state is not in memory. They change nothing (reads only) and write no
// output, so they bound from above what the full pipeline can reach on this
// machine with a Badger read per record.
const (
	// StageFloorRead: raw + one Snapshot.Get of the record's state (the
	// state key's look-up, the header key's when the partition has header
	// keys, the value's read and a copy).
	StageFloorRead = "floor-read"
	// StageFloorDecode: StageFloorRead + decoding the state
	// (engine.UnmarshalState).
	StageFloorDecode = "floor-read-decode"
)

// runFloor consumes the rig's day of traffic like runConsume (one reader
// goroutine per topic-partition) and, per record, reads the state of its
// key from the store (a snapshot per goroutine: the store does not change
// meanwhile) and, with decode, decodes it. Every record's SIREN must have a
// state: a missing one is an error (the floor would otherwise measure
// misses, which are cheaper).
func runFloor(ctx context.Context, cfg Config, in *Input, store *state.Store, decode bool) (StageResult, error) {
	inputs, ranges, _, err := stageInputs(ctx, cfg, in)
	if err != nil {
		return StageResult{}, err
	}
	name := StageFloorRead
	if decode {
		name = StageFloorDecode
	}
	var n atomic.Int64
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	g, gctx := errgroup.WithContext(ctx)
	for _, topic := range inputs {
		for p := 0; p < in.Partitions; p++ {
			g.Go(func() error {
				sn := store.Snapshot()
				defer sn.Close()
				var local int64
				err := readRange(gctx, cfg.Brokers, topic, p, ranges[topic][p], func(msg *kafka.Message) error {
					local++
					siren := string(msg.Key)
					val, err := sn.Get(int32(p), siren)
					if err != nil {
						return err
					}
					if val == nil {
						return fmt.Errorf("floor: %s/%d offset %d: no state for SIREN %q", topic, p, msg.Offset, siren)
					}
					if decode {
						if _, err := engine.UnmarshalState(siren, val); err != nil {
							return fmt.Errorf("floor: %s/%d offset %d: %w", topic, p, msg.Offset, err)
						}
					}
					return nil
				})
				n.Add(local)
				return err
			})
		}
	}
	err = g.Wait()
	return m.stop(name, n.Load()), err
}
