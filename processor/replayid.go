package processor

// A replay's state directory belongs to one replay. Its state depends on
// the rules, the event-time bounds and where its outputs went, so the
// directory records the replay's identity (state.Store.ReplayIdentity: one
// key, not part of the checkpoints, which stay byte-identical between
// replays into different topics), and a replay refuses a directory written
// by another replay, or by a live run (it records its consumer group:
// isolation.go), instead of continuing it with other settings (which used
// to exit 0 with "0 records": the old checkpoint said everything was done).
// The same settings resume an interrupted replay. A directory whose
// checkpoints predate identities is taken as this replay's.

import (
	"errors"
	"fmt"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/state"
)

// ErrReplayState is returned (wrapped, with both identities and what to
// do) when a replay's state directory holds the state of another replay or
// of a live run.
var ErrReplayState = errors.New("state directory written with other settings")

// identity is what a replay records of itself in its state directory: the
// settings its state and outputs depend on (ro with defaults applied),
// readable in an error message.
func (ro ReplayOptions) identity(rules engine.RulesID) string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	churn := ro.ChurnTopic
	if churn == "" {
		churn = "-"
	}
	return fmt.Sprintf("output-topic=%s churn-topic=%s dlq-topic=%s from=%s to=%s emit-from=%s rules=%s (%s)",
		ro.OutputTopic, churn, ro.DLQTopic, ts(ro.From), ts(ro.To), ts(ro.EmitFrom), rules.Version, rules.Fingerprint)
}

// claimReplayState refuses a store that holds a live run's state, or
// another replay's (with checkpoints: a replay stopped before its first
// commit left nothing to continue), and records id as the store's replay.
func claimReplayState(st *state.Store, id string) error {
	group, err := st.Owner()
	if err != nil {
		return err
	}
	if group != "" {
		return fmt.Errorf("replay: %w: %s holds the state of a live run (sirenstream run, group %q), not of a replay; "+
			"use a fresh --state-dir for the replay", ErrReplayState, st.Dir(), group)
	}
	stored, err := st.ReplayIdentity()
	if err != nil || stored == id {
		return err
	}
	parts, err := st.Partitions()
	if err != nil {
		return err
	}
	if stored != "" && len(parts) > 0 {
		return fmt.Errorf("replay: %w: %s holds the state of another replay:\n  stored: %s\n  now:    %s\n"+
			"use a fresh --state-dir for this replay, or run the stored one's flags and rules again to resume it",
			ErrReplayState, st.Dir(), stored, id)
	}
	return st.SetReplayIdentity(id)
}
