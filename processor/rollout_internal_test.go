package processor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// TestRolloutResumesAfterACrash: a rollout is committed in chunks with a
// cursor; a crash after its outputs of a chunk were written, before that
// chunk's state transaction, is resumed by the restart after the last
// durable chunk. Deduplicated by event_id, the outputs of the crashed run
// and of the restart are byte for byte those of a rollout that never
// crashed, and the re-emitted ones repeat the same bytes.
func TestRolloutResumesAfterACrash(t *testing.T) {
	brokers, codec := testBroker(t)
	ctx := context.Background()
	var msgs []kafka.Message
	if err := gen.Generate(gen.Config{SIRENs: 200, Days: 75, Seed: 16}, func(r *gen.Record) error {
		b, err := codec.EncodeEvent(nil, &r.Event)
		msgs = append(msgs, kafka.Message{Topic: r.Topic, Key: []byte(r.Event.SIREN), Value: b, Time: time.UnixMilli(r.Event.EventTime)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w := load.Writer(brokers, nil)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	v2 := engine.DefaultRules()
	v2.Version = "v2"
	v2.RecoveryExposed = engine.Threshold{Enter: 2.5, Exit: 1.5}
	v2.MultiSite = engine.Threshold{Enter: 3, Exit: 3}
	v2.DataHungry = engine.Threshold{Enter: 70, Exit: 65}

	// run runs a processor on dir until every task is idle (or it fails),
	// writing segment changes to out.
	run := func(dir string, rules *engine.Rules, out string, hook func(int32) error) error {
		t.Helper()
		store, err := OpenStore(state.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		p, err := New(Config{
			Kafka: Kafka{Brokers: brokers}, Group: "rollout", Codec: codec, Store: store, Rules: rules,
			Topics:         Topics{Changelog: "-", SegmentChanges: out},
			Logger:         zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			CommitInterval: 50 * time.Millisecond, CommitRecords: 10,
			beforeStateCommit: hook,
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- p.Run(rctx) }()
		deadline := time.Now().Add(90 * time.Second)
		for {
			select {
			case err := <-errc:
				return err
			case <-time.After(20 * time.Millisecond):
			}
			prog := p.Progress()
			if len(prog) == 1 && prog[0].Loaded && prog[0].CaughtUp {
				cancel()
				return <-errc
			}
			if time.Now().After(deadline) {
				t.Fatalf("not idle after 90 s: %+v", prog)
			}
		}
	}
	dir := t.TempDir()
	if err := run(dir, nil, "segment-changes", nil); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.CopyFS(ref, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := run(ref, v2, "rollout-ref", nil); err != nil {
		t.Fatal(err)
	}
	want := readTopic(t, brokers, "rollout-ref")
	if len(want) < 30 {
		t.Fatalf("the reference rollout emitted %d changes: too few for several chunks of 10", len(want))
	}

	// Two chunks become durable, the third crashes after its outputs.
	crash := errors.New("simulated crash before the state transaction")
	var commits atomic.Int32
	err := run(dir, v2, "rollout", func(int32) error {
		if commits.Add(1) >= 3 {
			return crash
		}
		return nil
	})
	if !errors.Is(err, crash) {
		t.Fatalf("the crashing run returned %v, want the simulated crash", err)
	}
	crashed := len(readTopic(t, brokers, "rollout"))
	if crashed == 0 || crashed >= len(want) {
		t.Fatalf("the crashing run wrote %d of %d changes: the crash must fall inside the rollout", crashed, len(want))
	}
	if err := run(dir, v2, "rollout", nil); err != nil {
		t.Fatal(err)
	}
	all := readTopic(t, brokers, "rollout")
	if resumed := len(all) - crashed; resumed >= len(want) {
		t.Fatalf("the restart emitted %d changes, the whole rollout is %d: it did not resume after the durable chunks", resumed, len(want))
	}
	first := map[string][]byte{}
	var got []kafka.Message
	for _, m := range all {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if b, seen := first[sc.EventID]; seen {
			if !bytes.Equal(b, m.Value) {
				t.Fatalf("%s re-emitted with other bytes", sc.EventID)
			}
			continue
		}
		first[sc.EventID] = m.Value
		got = append(got, m)
	}
	if len(got) != len(want) {
		t.Fatalf("crash + resume emitted %d distinct changes (%d with re-emissions), an uninterrupted rollout %d", len(got), len(all), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Value, want[i].Value) {
			t.Fatalf("change %d differs from the uninterrupted rollout's", i)
		}
	}
	t.Logf("rollout of %d changes: %d written by the crashed run (a failed batch is written again at its shutdown), %d by the restart", len(want), crashed, len(all)-crashed)
}
