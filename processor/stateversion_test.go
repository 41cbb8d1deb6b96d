package processor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// storedStates returns every SIREN's stored state of dir (header keys merged
// in) and how many header keys the store holds.
func storedStates(t *testing.T, dir string, parts int) (map[string][]byte, int) {
	t.Helper()
	st, err := processor.OpenStore(state.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out, headers := map[string][]byte{}, 0
	for p := int32(0); p < int32(parts); p++ {
		n, err := st.Headers(p)
		if err != nil {
			t.Fatal(err)
		}
		headers += n
		if err := st.Scan(p, func(siren string, val []byte) error {
			out[siren] = append([]byte(nil), val...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out, headers
}

func versionCounts(states map[string][]byte) map[byte]int {
	n := map[byte]int{}
	for _, v := range states {
		n[v[0]]++
	}
	return n
}

// TestStateVersion3ForARollingUpgrade: a processor told to write version 3
// (engine.MinWriteVersion, --state-version 3) writes nothing else — whole
// states, header keys merged over them, the changelog's records — so an
// instance still on a version-3 build can take its partitions over. Restarted
// on the same directory with the default, it reads them, goes on, and ends
// with the states of a run that wrote the current version throughout.
func TestStateVersion3ForARollingUpgrade(t *testing.T) {
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	// The first run's last writes include a sweep's header key.
	all, half := headerKeyCut(t)
	testkit.Produce(t, brokers, all[:half]...)
	run := func(dir, group string, version int, total int) {
		t.Helper()
		cfg := testkit.Config(t, brokers, dir)
		cfg.Group, cfg.StateVersion = group, version
		// ~100 SIRENs per partition: sweeps write header keys.
		cfg.CacheSIRENs, cfg.CommitRecords = 20, 10
		h := testkit.Start(t, cfg)
		h.WaitConsumed(t, int64(total), parts, 120*time.Second)
		h.Stop(t)
	}

	dir := t.TempDir()
	run(dir, testkit.Group, engine.MinWriteVersion, half)
	states, headers := storedStates(t, dir, parts)
	if headers == 0 {
		t.Fatal("no header keys: the test does not cover header writes")
	}
	if n := versionCounts(states); len(states) == 0 || n[engine.MinWriteVersion] != len(states) {
		t.Fatalf("stored states by version %v, want all %d of version %d", n, len(states), engine.MinWriteVersion)
	}
	changelog := 0
	for _, m := range testkit.ReadAll(t, brokers, topology.ChangelogName(testkit.Group)) {
		if !engine.ValidSIREN(string(m.Key)) || len(m.Value) == 0 {
			continue // checkpoints, tombstones
		}
		changelog++
		if m.Value[0] != engine.MinWriteVersion {
			t.Fatalf("changelog record of %s has state version %d", m.Key, m.Value[0])
		}
	}
	if changelog == 0 {
		t.Fatal("no state in the changelog")
	}

	// The upgrade's second step: the same directory, the default version.
	testkit.Produce(t, brokers, all[half:]...)
	run(dir, testkit.Group, 0, len(all)-half) // consumed by this process
	after, _ := storedStates(t, dir, parts)
	if n := versionCounts(after); n[engine.StateVersion] == 0 {
		t.Fatalf("after the restart without the flag: states by version %v, none rewritten as %d", n, engine.StateVersion)
	}

	ref := t.TempDir()
	run(ref, "reference", 0, len(all))
	want, _ := storedStates(t, ref, parts)
	if len(after) != len(want) {
		t.Fatalf("%d SIRENs stored, the reference run has %d", len(after), len(want))
	}
	for siren, w := range want {
		got, err := engine.UnmarshalState(siren, after[siren])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.AppendBinary(nil), w) {
			t.Fatalf("SIREN %s: state differs from the reference run's", siren)
		}
	}
}
