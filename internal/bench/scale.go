package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
)

// DefaultScaleSizes are the SIREN counts of RunScale.
var DefaultScaleSizes = []int{10_000, 100_000, 1_000_000}

// ScalePoint is RunScale's result for one SIREN count.
type ScalePoint struct {
	SIRENs       int     `json:"sirens"`
	BuildSeconds float64 `json:"build_seconds"`
	// DiskBytes: bytes allocated by the Badger directory after the sweeps,
	// store closed; per SIREN.
	DiskBytes     int64   `json:"disk_bytes"`
	BytesPerSIREN float64 `json:"disk_bytes_per_siren"`
	// RSSAfterBuild: VmRSS after building the states (GC'd).
	RSSAfterBuild int64 `json:"rss_after_build_bytes"`
	// SettleSeconds: after the build, how long Badger's background
	// compaction took to catch up (no level left to compact) before D+1.
	SettleSeconds float64 `json:"settle_seconds"`
	// Sweeps: the first day change after the build (every SIREN gets its
	// first intensity percentile: many changes) and the next one (steady
	// state).
	Sweeps []Sweep `json:"sweeps"`
}

// Sweep measures one day change of every partition through the real
// processor (Replay of one event per partition that starts a new day).
type Sweep struct {
	// Day: the sweep starts stream day D+Day.
	Day int `json:"day"`
	// Pass1: where pass 1 took the intensities ("store": a scan, as in a
	// task that just started; "kept set": maintained by the task since its
	// previous day change, as in a long-running task).
	Pass1        string  `json:"pass1"`
	Seconds      float64 `json:"seconds"`
	Changes      int64   `json:"changes"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// CompactionAfterSeconds: how long Badger's background compaction
	// still ran after the replay returned, until no level was left to
	// compact (the next replay starts after it; a day has hours for it).
	CompactionAfterSeconds float64 `json:"compaction_after_seconds"`
	// PeakAnonBytes: peak anonymous RSS (the rest is mmapped Badger files).
	// Sweeps D+2 and D+3 run in one replay: their CPU and peak RSS are those
	// of the whole replay.
	PeakAnonBytes int64 `json:"peak_rss_anon_bytes"`
	// HeaderKeys: header keys in the store after the replay (sweep changes
	// of clean states written as their header alone; state.KV.Header).
	HeaderKeys int `json:"header_keys"`
}

// scaleDay is the stream day D of the scale states: history on D-89..D-1,
// the stream starts at D, sweeps at D+1 and D+2.
var scaleDay = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

// RunScale measures memory, disk and the day-change sweep at each SIREN count.
// Kafka ingestion of 90 days × 1M SIRENs would take hours on 2 cores, so the
// states are built by driving the engine directly (90 days of daily usage per
// site, 1–3 sites, a profile, outages and claims for some, stepped in time
// order so retention and dedup windows are exactly as in production) and
// written to the processor's Badger store; the checkpoint (offsets, stream
// time D) is the one a real Replay of a seed event wrote. Then one event per
// partition on day D+1 (and D+2) is produced and processor.Replay runs: the
// timed sweep is the production code path (two Badger scans, evaluation,
// chunked commits, outputs to Kafka).
func RunScale(ctx context.Context, cfg Config, sizes []int) ([]ScalePoint, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(sizes) == 0 {
		sizes = DefaultScaleSizes
	}
	return eachSize(sizes, "scale", func(n int) (ScalePoint, error) { return runScalePoint(ctx, cfg, n) })
}

// eachSize runs one point per SIREN count, stopping at the first error
// (returned with the points done, named by label and count).
func eachSize[P any](sizes []int, label string, run func(n int) (P, error)) ([]P, error) {
	var out []P
	for _, n := range sizes {
		p, err := run(n)
		if err != nil {
			return out, fmt.Errorf("%s %d SIRENs: %w", label, n, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func runScalePoint(ctx context.Context, cfg Config, n int) (ScalePoint, error) {
	sp := ScalePoint{SIRENs: n}
	r, err := newRig(ctx, cfg, cfg.Prefix+"scale"+strconv.Itoa(n)+"-", n)
	if err != nil {
		return sp, err
	}
	defer r.close()
	if sp.BuildSeconds, sp.SettleSeconds, sp.RSSAfterBuild, err = r.buildSettled(ctx, cfg, "scale"); err != nil {
		return sp, err
	}

	// D+1: a task that just started (pass 1 scans the store); the first
	// snapshot, so many changes. D+2 then D+3 in ONE replay: D+2 is again a
	// fresh task's sweep, D+3 a long-running task's (pass 1 from the set the
	// task kept since D+2, pass 2 reads the store).
	for _, days := range [][]int{{1}, {2, 3}} {
		for _, day := range days {
			if err := r.tick(ctx, day); err != nil {
				return sp, err
			}
		}
		r.dayChanges()
		m := meter{brokerPID: cfg.BrokerPID}
		m.start()
		cpu0 := cpuTime()
		// Labelled for profiles: -tagfocus scale=D+1 (Badger's compactors
		// run unlabelled: they started with the store).
		var changes int64
		var err error
		pprof.Do(ctx, pprof.Labels("scale", fmt.Sprintf("D+%d", days[0])), func(ctx context.Context) {
			changes, _, err = r.replay(ctx)
		})
		if err != nil {
			return sp, err
		}
		st := m.stop("sweep", 1)
		cpu := (cpuTime() - cpu0).Seconds()
		after, err := settleCompaction(ctx, r.store)
		if err != nil {
			return sp, err
		}
		headers, err := r.headerKeys()
		if err != nil {
			return sp, err
		}
		dcs := r.dayChanges()
		for _, day := range days {
			sw := Sweep{Day: day, Seconds: st.Seconds, Changes: changes, CPUSeconds: cpu, PeakRSSBytes: st.PeakRSSBytes, PeakAnonBytes: st.PeakAnonBytes,
				CompactionAfterSeconds: after.Seconds(), HeaderKeys: headers}
			if len(days) > 1 {
				// Wall time of the day's sweep: from the first partition's
				// start to the last one's end.
				one, ok := sweepOf(dcs, day)
				if !ok {
					return sp, fmt.Errorf("no day change to D+%d observed", day)
				}
				sw.Seconds, sw.Changes, sw.Pass1 = one.Seconds, one.Changes, one.Pass1
			} else {
				for _, dc := range dcs {
					sw.Pass1 = mergePass1(sw.Pass1, dc.Pass1)
				}
			}
			sp.Sweeps = append(sp.Sweeps, sw)
			cfg.Progress("scale %d: sweep day D+%d over %d SIRENs (pass 1 from %s): %.2fs, %d changes, peak RSS %d MiB (anon %d MiB); compaction ran %.1fs after the replay; %d header keys", n, day, n, sw.Pass1, sw.Seconds, sw.Changes, sw.PeakRSSBytes>>20, sw.PeakAnonBytes>>20, sw.CompactionAfterSeconds, sw.HeaderKeys)
		}
	}
	if sp.DiskBytes, err = r.closeStore(); err != nil {
		return sp, err
	}
	sp.BytesPerSIREN = float64(sp.DiskBytes) / float64(n)
	return sp, nil
}

// sweepOf sums the day changes of every partition to day D+day: wall time
// from the first partition's start to the last one's end, changes, and
// where pass 1 took its intensities.
func sweepOf(dcs []processor.DayChange, day int) (Sweep, bool) {
	want := scaleDay.AddDate(0, 0, day)
	sw := Sweep{Day: day}
	var first, last time.Time
	for _, dc := range dcs {
		if !dc.Day.Equal(want) {
			continue
		}
		if first.IsZero() || dc.Start.Before(first) {
			first = dc.Start
		}
		if end := dc.Start.Add(dc.Duration); end.After(last) {
			last = end
		}
		sw.Changes += dc.Changes
		sw.Pass1 = mergePass1(sw.Pass1, dc.Pass1)
	}
	sw.Seconds = last.Sub(first).Seconds()
	return sw, !first.IsZero()
}

// buildPartitions builds the states of SIRENs 0..n-1 whose partition is
// selected and bulk-writes them, keeping each partition's checkpoint.
func buildPartitions(store *state.Store, n int, pidx []uint8, mine func(int) bool, parts int) error {
	bulks := make([]*state.Bulk, parts)
	cps := make([]state.Checkpoint, parts)
	for p := 0; p < parts; p++ {
		if !mine(p) {
			continue
		}
		cp, ok, err := store.Checkpoint(int32(p))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("partition %d has no checkpoint after the seed replay", p)
		}
		cps[p] = cp
		bulks[p] = store.BulkWriter(int32(p))
	}
	var b builder
	var buf []byte
	for i := 0; i < n; i++ {
		p := int(pidx[i])
		if bulks[p] == nil {
			continue
		}
		st, err := b.build(i)
		if err != nil {
			return err
		}
		buf = st.AppendBinary(buf[:0])
		if err := bulks[p].Put(st.SIREN, buf); err != nil {
			return err
		}
	}
	for p, bk := range bulks {
		if bk != nil {
			if err := bk.Finish(cps[p]); err != nil {
				return err
			}
		}
	}
	return nil
}

// builder makes the realistic state of SIREN i by stepping its 90-day history
// through an engine task of its own (days in order: pruning and dedup windows
// behave as in production).
type builder struct {
	dec engine.Decision
	id  []byte
}

func (b *builder) build(i int) (*engine.State, error) {
	s := gen.SIREN(i)
	task := engine.NewTask(nil, engine.Config{})
	st := engine.NewState(s)
	d0 := scaleDay.UnixMilli()
	const day = 24 * 3600 * 1000
	h := uint64(i)*0x9e3779b97f4a7c15 + 1
	step := func(ev *engine.Event) error {
		_, err := task.Step(st, ev, &b.dec)
		return err
	}
	idOf := func(kind byte, a, c int) string {
		b.id = append(b.id[:0], kind, '-')
		b.id = strconv.AppendInt(b.id, int64(a), 10)
		b.id = append(b.id, '-')
		b.id = strconv.AppendInt(b.id, int64(c), 10)
		return string(b.id)
	}
	prof := engine.Event{Kind: engine.KindProfile, EventID: "p-1", SIREN: s, EventTime: d0 - 120*day,
		Plan: [...]string{gen.PlanBasicSIM, gen.PlanSDWAN, gen.PlanPremiumSLA}[i%3]}
	if i%10 != 0 {
		prof.Workforce, prof.HasWorkforce = int32(3+h%200), true
	}
	if err := step(&prof); err != nil {
		return nil, err
	}
	sites := 1 + i%3
	postals := [3]string{"75001", "75001", "13001"}
	if i%2 == 1 {
		postals[1] = "69001"
	}
	base := float64(2e7 * (1 + (h>>8)%500))
	growth := 1.0
	if i%10 == 3 {
		growth = 1.006 // ~20 % a month
	}
	for d := -89; d <= -1; d++ {
		t := d0 + int64(d)*day
		if i%20 == 0 && d == -30 {
			o := engine.Event{Kind: engine.KindOutage, EventID: idOf('o', 1, 0), SIREN: s, EventTime: t + 10*3600*1000, SiteID: "s0", PostalCode: postals[0], OutageID: "o-1", Status: engine.OutageStarted}
			if err := step(&o); err != nil {
				return nil, err
			}
			o.EventID, o.Status, o.EventTime = idOf('o', 2, 0), engine.OutageResolved, t+16*3600*1000
			if err := step(&o); err != nil {
				return nil, err
			}
		}
		if i%40 == 0 && d == -29 {
			c := engine.Event{Kind: engine.KindClaim, EventID: "c-1", SIREN: s, EventTime: t + 9*3600*1000, ClaimID: "c-1", OutageID: "o-1", HasOutageID: true, AmountCents: 50_000}
			if err := step(&c); err != nil {
				return nil, err
			}
		}
		by := base * pow(growth, d+89)
		for site := 0; site < sites; site++ {
			u := engine.Event{Kind: engine.KindUsage, EventID: idOf('u', site, d+1000), SIREN: s, EventTime: t + int64(12+site)*3600*1000,
				SiteID: "s" + strconv.Itoa(site), PostalCode: postals[site], BytesUp: int64(by / 5), BytesDown: int64(by), ActiveSIMs: int32(1 + i%20), HasActiveSIMs: true}
			if err := step(&u); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

// settleCompaction waits until Badger has no level left to compact (polling;
// at most 15 minutes) and returns how long that took.
func settleCompaction(ctx context.Context, store *state.Store) (time.Duration, error) {
	start := time.Now()
	for store.CompactionPending() > 0 {
		if time.Since(start) > 15*time.Minute {
			return 0, errors.New("Badger compaction did not settle within 15 minutes")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// mergePass1 combines the pass-1 sources of a day's partitions: the common
// one, or "mixed".
func mergePass1(sofar, p string) string {
	if sofar == "" || sofar == p {
		return p
	}
	return "mixed"
}

func pow(x float64, n int) float64 {
	r := 1.0
	for ; n > 0; n-- {
		r *= x
	}
	return r
}
