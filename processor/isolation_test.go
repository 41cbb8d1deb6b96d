package processor

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sirenstream/sirenstream/state"
)

// Spec §8 (Isolation), without a broker: a state directory belongs to the
// first group that runs on it; another group is refused with what to do.
func TestStateDirectoryBelongsToOneGroup(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(state.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A directory written before groups were recorded: a checkpoint, no owner.
	if err := st.Commit(0, nil, state.Checkpoint{Offsets: map[string]int64{"usage": 5}}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	if err := claimStore(st, "billing", zap.New(core)); err != nil {
		t.Fatalf("legacy directory: %v", err)
	}
	if logs.FilterMessageSnippet("had no recorded group").Len() != 1 {
		t.Errorf("claiming a legacy directory logged %v", logs.All())
	}
	if err := claimStore(st, "billing", zap.NewNop()); err != nil {
		t.Fatalf("same group again: %v", err)
	}
	err = claimStore(st, "sirenstream", zap.NewNop())
	if !errors.Is(err, ErrOtherGroup) {
		t.Fatalf("another group: %v, want ErrOtherGroup", err)
	}
	want := `state directory ` + dir + ` holds the state of group "billing"; this is group "sirenstream": ` +
		`refusing another consumer group's state (use a fresh --state-dir for group "sirenstream", or run with --group "billing")`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if owner, _ := st.Owner(); owner != "billing" {
		t.Errorf("owner after a refusal: %q", owner)
	}
}

// Checkpoint records of the task's own group are restored, another group's
// are refused with what to do, legacy ones (no group) are accepted with one
// WARN per processor however many partitions read them.
func TestChangelogCheckpointGroup(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	once := new(sync.Once)
	cl := func(p int32) *changelog {
		return &changelog{topic: "sirenstream-changelog", partition: p, group: "billing", legacyWarn: once, log: zap.New(core)}
	}
	if err := cl(0).checkpointGroup(state.Checkpoint{Group: "billing"}, 7); err != nil {
		t.Fatalf("own group: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		if err := cl(p).checkpointGroup(state.Checkpoint{}, 9); err != nil {
			t.Fatalf("legacy record: %v", err)
		}
	}
	if n := logs.FilterMessageSnippet("name no group").Len(); n != 1 {
		t.Errorf("%d WARNs about legacy records, want 1", n)
	}
	err := cl(2).checkpointGroup(state.Checkpoint{Group: "sirenstream"}, 41)
	if !errors.Is(err, ErrOtherGroup) {
		t.Fatalf("another group's record: %v, want ErrOtherGroup", err)
	}
	for _, want := range []string{
		`changelog sirenstream-changelog was written by group "sirenstream" (checkpoint at 2/41); this is group "billing"`,
		`use --topic-changelog billing-changelog, this group's default, or another fresh topic`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
