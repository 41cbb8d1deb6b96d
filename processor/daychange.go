package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
)

// beginDay runs the day change a record starts: every SIREN of the
// partition is re-evaluated so windows slide without new events (spec §4).
// The engine builds the percentile snapshot (pass 1); pass 2 evaluates in
// SIREN order and commits in chunks with a cursor, so a crash resumes the
// day change exactly where it stopped.
func (t *task) beginDay(ctx context.Context, ms int64) error {
	start := time.Now()
	changes0 := t.progress.snapshot().Changes
	complete := t.cache.Complete()
	// Pass 1 reads the store when the cache does not hold the whole
	// partition: the store must be the truth then. A complete cache needs
	// no commit here: the day's last records and the day change's outputs go
	// into one batch, which is what lets a batch span several days.
	if !complete {
		if err := t.commit(ctx, true); err != nil {
			return err
		}
	}
	// A partition bigger than the cache keeps next-day intensities, so the
	// next pass 1 need not scan the store.
	t.eng.KeepNextDay(!complete)
	var pop engine.Population
	if complete {
		pop = engine.FromStates(func(visit func(*engine.State) error) error {
			return t.cache.EachUnordered(func(_ string, st *engine.State) error { return visit(st) })
		})
	} else {
		pop = engine.FromEncoded(func(visit func(string, []byte) error) error {
			return t.cfg.Store.Scan(t.partition, func(siren string, val []byte) error {
				if err := visit(siren, val); err != nil {
					return fmt.Errorf("partition %d: decode state of %s: %w", t.partition, siren, err)
				}
				return nil
			})
		})
	}
	stats, err := t.eng.BeginDay(ms, pop)
	if err != nil {
		return err
	}
	if ce := t.log.Check(zap.DebugLevel, "day change"); ce != nil {
		ce.Write(zap.Time("day", time.UnixMilli(ms).UTC()), zap.String("pass1_from", pass1Source(stats.Source)), zap.Int("scored", stats.Scored))
	}
	t.sweep = sweepProgress{active: true}
	t.com.dirty = true
	if err := t.evaluateDay(ctx); err != nil {
		return err
	}
	if f := t.cfg.OnDayChange; f != nil {
		f(DayChange{
			Partition: t.partition,
			Day:       time.UnixMilli(int64(t.eng.StreamDay()) * engine.DayMs).UTC(),
			Start:     start,
			Duration:  time.Since(start),
			Pass1:     pass1Source(stats.Source),
			Scored:    stats.Scored,
			Changes:   t.progress.snapshot().Changes - changes0,
		})
	}
	return nil
}

// pass1Source names the engine's pass-1 source as DayChange.Pass1 does.
func pass1Source(s string) string {
	switch s {
	case engine.SourceStates:
		return "cache"
	case engine.SourceEncoded:
		return "store"
	}
	return s
}

var errChunkFull = errors.New("day change chunk full")

// sweepChunkStates bounds a pass-2 chunk of a partition bigger than the
// cache: until its commit, each change keeps a decoded state (~2.5 KB), its
// whole encoding for the changelog and its output in memory, twice over with
// the chunk in flight. Header writes are small, so Badger's transaction
// limits alone would allow ~9k of them per chunk: +290 MiB of peak RSS on the
// first-snapshot day at 1M SIRENs (4 partitions); 2,000 keeps the day
// change's memory near what it was with whole-state chunks of ~1k.
const sweepChunkStates = 2000

// evaluateDay is pass 2 of a day change, from the stored cursor on, or the
// same sweep for a rules rollout (t.sweep.rollout, rollout.go): every state
// re-evaluated under the task's rules, changes emitted with trigger
// RULES_ROLLOUT.
func (t *task) evaluateDay(ctx context.Context) error {
	start, changes0 := time.Now(), t.progress.snapshot().Changes
	evaluate := t.eng.Evaluate
	switch {
	case t.sweep.rollout:
		evaluate = t.eng.Rollout
	case t.opt.routes.daily != "":
		// The evaluation also fills the SIREN's daily snapshot for
		// dayOutputs, with the same metrics.
		evaluate = func(st *engine.State, dec *engine.Decision) bool {
			return t.eng.EvaluateDaily(st, dec, &t.outcomes.view)
		}
	}
	for {
		chunk := t.cfg.CommitRecords
		if !t.cache.Complete() {
			chunk = min(chunk, sweepChunkStates)
		} else if !t.sweep.rollout && t.opt.routes.daily != "" {
			t.com.reserve(t.cache.Len()) // a siren-daily record per SIREN
		}
		err := t.cache.Each(t.sweep.cursor, func(siren string, st *engine.State) error {
			if evaluate(st, &t.dec) {
				// Evaluate changed the decision alone (seq, segments): the
				// header of the state, which is all a clean state needs to
				// write (a few bytes instead of ~1 KB: 200k of 1M SIRENs
				// change on the first day with a percentile snapshot).
				// PutHeader is transient for a state not cached: in a
				// partition bigger than the cache, the day change's outputs
				// do not evict the states traffic keeps hot.
				t.cache.PutHeader(siren, st)
				t.out.change(&t.dec)
			}
			if !t.sweep.rollout {
				t.dayOutputs(siren, st)
			}
			t.sweep.cursor = siren
			if t.cache.DirtyCount() >= chunk || t.com.full() {
				return errChunkFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunkFull) {
			return err
		}
		t.com.dirty = true
		if err == nil {
			// Done: the day change's outputs stay in the open batch, which
			// the usual rules commit (a crash before that re-runs the
			// records and the deterministic day change from the last
			// checkpoint).
			if t.sweep.rollout {
				t.log.Info("rules rollout done", zap.String("rules_version", t.cfg.Rules.Version),
					zap.Int64("changes", t.progress.snapshot().Changes-changes0), zap.Duration("took", time.Since(start)))
			}
			t.sweep = sweepProgress{}
			if t.cache.Complete() {
				// The partition fits in the cache now: the next pass 1
				// reads it, no kept set needed.
				t.eng.KeepNextDay(false)
			}
			t.eng.EndDay()
			return nil
		}
		// A full chunk is committed, not forced: it is written in the
		// background while the next one is evaluated. Its checkpoint carries
		// the cursor, so a crash resumes after the last durable chunk and
		// the deterministic day change re-emits the in-flight chunk's events
		// with the same bytes.
		if cerr := t.commit(ctx, false); cerr != nil {
			return cerr
		}
	}
}
