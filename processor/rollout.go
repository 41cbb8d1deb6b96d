package processor

// Rules rollouts. Every checkpoint records the identity of the rules its
// states were evaluated under (engine.RulesID: version and fingerprint, in
// the engine's meta). A live task that loads a checkpoint compares it with
// its own rules (engine.CheckRules):
//
//   - same version and thresholds: nothing to do;
//   - another version: a rollout. Before it reads any record the task
//     re-evaluates every SIREN of the partition under the new rules, in
//     SIREN order, and emits each segment change it causes with trigger
//     RULES_ROLLOUT and the new rules_version. It is a sweep like a day
//     change's pass 2 (daychange.go: chunks committed with a cursor, the
//     sweep marked as a rollout in the checkpoint meta), so a crash resumes
//     it after the last durable chunk and re-emits the chunk in flight with
//     the same bytes. A day change interrupted by the restart is finished by
//     the rollout (it evaluates every SIREN at the same stream time);
//   - the same version with other thresholds: refused (ErrRulesConflict, a
//     configuration error: the process stops and says what to do).
//
// Like a day change, a rollout emits a SIREN only when its segment set
// changes (engine.Task.Rollout). A checkpoint written before rule identities
// were recorded counts as the default rules of then (engine.RulesV1Version)
// with an unknown fingerprint: no refusal; a rollout when the task's
// version is another (harmless when nothing changes: it emits nothing).
// Replays do not roll out: Processor.Replay refuses a state directory
// written with other rules (replayid.go).

import (
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
)

// ErrRulesConflict is returned (wrapped, with both fingerprints and what
// to do) when a state was evaluated under rules of the same version but
// other thresholds. It is a configuration error: retrying cannot fix it.
var ErrRulesConflict = engine.ErrRulesConflict

// checkRules compares the rules of the checkpoint meta (just loaded) with
// the task's and starts a rollout when they are another version; a
// conflict is a configuration error. Replays check nothing here.
func (t *task) checkRules(meta []byte) error {
	if t.opt.bounded {
		return nil
	}
	_, rest, err := decodeMeta(meta)
	if err != nil {
		return err
	}
	stored, err := engine.MetaRules(rest)
	if err != nil {
		return err
	}
	current := t.cfg.Rules.ID()
	rollout, err := engine.CheckRules(stored, current)
	if err != nil {
		return asConfig(err) // runTask names the partition
	}
	if !rollout {
		if t.sweep.active && t.sweep.rollout {
			t.log.Info("rules rollout: resuming after the last durable chunk",
				zap.String("rules_version", current.Version), zap.String("cursor", t.sweep.cursor))
		}
		return nil
	}
	t.log.Info("rules rollout: re-evaluating every SIREN of the partition under the new rules before reading any record",
		zap.String("from_version", stored.Version), zap.String("from_fingerprint", stored.Fingerprint),
		zap.String("to_version", current.Version), zap.String("to_fingerprint", current.Fingerprint),
		zap.Bool("finishes_day_change", t.sweep.active && !t.sweep.rollout))
	t.sweep = sweepProgress{active: true, rollout: true}
	t.com.dirty = true
	return nil
}
