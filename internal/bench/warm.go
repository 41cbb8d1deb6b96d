package bench

import (
	"context"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/state"
)

// DefaultWarmSizes are the SIREN counts of RunWarm.
var DefaultWarmSizes = []int{100_000, 1_000_000}

// WarmPoint is RunWarm's result for one SIREN count: one day of traffic
// streamed through Kafka into a processor whose Badger already holds 90 days
// of state for every SIREN.
type WarmPoint struct {
	SIRENs        int     `json:"sirens"`
	BuildSeconds  float64 `json:"build_seconds"`
	SettleSeconds float64 `json:"settle_seconds"`
	RSSAfterBuild int64   `json:"rss_after_build_bytes"`
	// FirstSnapshot: the day change before the day of traffic (a replay of
	// one event per partition; every SIREN gets its first percentile). Not
	// part of the ratio: it makes the measured day a steady one.
	FirstSnapshot Sweep `json:"first_snapshot"`
	// Day's input: records per topic (gen's names), produce time.
	Records        int64            `json:"records"`
	ByTopic        map[string]int64 `json:"by_topic"`
	ProduceSeconds float64          `json:"produce_seconds"`
	// Raw is raw consumption of the day's topics before Full, RawAfter the
	// same after it; Full's RatioToRaw is to their mean records/s.
	Raw      StageResult `json:"raw"`
	Full     StageResult `json:"full"`
	RawAfter StageResult `json:"raw_after"`
	// FloorRead, FloorDecode: the same topics consumed with, per record, a
	// read of its state (and its decoding): what any design that reads a
	// SIREN's state per record cannot beat here (floor.go). RatioToRaw is to
	// the same mean as Full's.
	FloorRead   StageResult `json:"floor_read"`
	FloorDecode StageResult `json:"floor_read_decode"`
	// FloorIO: the same topics consumed raw while Full's outputs
	// (siren-daily included) are written again, all at once: what even a
	// design holding every state in memory cannot beat here (floor.go).
	FloorIO StageResult `json:"floor_io"`
	// FloorDay: the same topics consumed raw while Full's outputs
	// (FloorDay.Outputs records, siren-daily included) are written again and
	// every stored state is scanned (read, not decoded), all at once: what
	// any design that keeps the states on disk and writes those outputs
	// cannot beat here (floor.go). RatioToRaw as Full's.
	FloorDay StageResult `json:"floor_day"`
	// DaySweep: the day change at the end of the day's traffic, inside Full.
	DaySweep Sweep `json:"day_sweep"`
	// CompactionAfterSeconds: Badger's compaction after Full returned.
	CompactionAfterSeconds float64 `json:"compaction_after_seconds"`
	// DiskBytesBeforeGC: the Badger directory (LSM + value log) right after
	// Full and its compaction, before the value-log GC pass below.
	DiskBytesBeforeGC int64 `json:"disk_bytes_before_gc"`
	// VlogGCFiles: value-log files the GC pass after Full rewrote (the store
	// runs the same GC every 10 s while it works; this pass is what it would
	// do at its next tick).
	VlogGCFiles int `json:"vlog_gc_files"`
	// DiskBytesBusy: the Badger directory (LSM + value log, store open)
	// after that GC pass: what a store that keeps taking traffic holds (its
	// GC rewrites a file once it is half garbage); per SIREN.
	DiskBytesBusy     int64   `json:"disk_bytes_busy"`
	BytesPerSIRENBusy float64 `json:"disk_bytes_per_siren_busy"`
	// IdleGCSeconds, IdleGCFiles: the pass the store's GC loop runs once it
	// has had no write for a whole interval (state.Store.IdleGC: memtables
	// flushed, files down to a fifth of garbage rewritten), run here after
	// DiskBytesBusy was measured (the rig turns the loop's own off).
	IdleGCSeconds float64 `json:"idle_gc_seconds"`
	IdleGCFiles   int     `json:"idle_gc_files"`
	// DiskBytes: the Badger directory after Full, its compaction, the GC pass
	// and the store's idle pass (store closed); per SIREN.
	DiskBytes     int64   `json:"disk_bytes"`
	BytesPerSIREN float64 `json:"disk_bytes_per_siren"`
}

// StageWarmFull labels the warm run's full stage in CPU profiles
// (-tagfocus stage=warm-full).
const StageWarmFull = "warm-full"

// RunWarm measures, at each SIREN count, the processor on a realistic day:
// the states of 90 days are built as in RunScale, a first day change gives
// every SIREN its percentile (untimed for the ratio), then 1–5 records per
// SIREN on every input topic for one day, in event-time order, plus one
// event per partition of the next day (so the day-change sweep runs inside
// the measured replay). Raw consumption of the same topics is measured
// before and after the full pipeline, in the same run.
func RunWarm(ctx context.Context, cfg Config, sizes []int) ([]WarmPoint, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(sizes) == 0 {
		sizes = DefaultWarmSizes
	}
	return eachSize(sizes, "warm", func(n int) (WarmPoint, error) { return runWarmPoint(ctx, cfg, n) })
}

func runWarmPoint(ctx context.Context, cfg Config, n int) (WarmPoint, error) {
	wp := WarmPoint{SIRENs: n}
	r, err := newRig(ctx, cfg, cfg.Prefix+"warm"+strconv.Itoa(n)+"-", n)
	if err != nil {
		return wp, err
	}
	defer r.close()
	if wp.BuildSeconds, wp.SettleSeconds, wp.RSSAfterBuild, err = r.buildSettled(ctx, cfg, "warm"); err != nil {
		return wp, err
	}

	// The first snapshot (day D+1), so that the measured day is a steady one.
	if err := r.tick(ctx, 1); err != nil {
		return wp, err
	}
	r.dayChanges()
	m := meter{brokerPID: cfg.BrokerPID}
	m.start()
	cpu0 := cpuTime()
	if _, _, err := r.replay(ctx); err != nil {
		return wp, err
	}
	st := m.stop("sweep", 1)
	wp.FirstSnapshot, _ = sweepOf(r.dayChanges(), 1)
	wp.FirstSnapshot.CPUSeconds = (cpuTime() - cpu0).Seconds()
	wp.FirstSnapshot.PeakRSSBytes, wp.FirstSnapshot.PeakAnonBytes = st.PeakRSSBytes, st.PeakAnonBytes
	after, err := settleCompaction(ctx, r.store)
	if err != nil {
		return wp, err
	}
	wp.FirstSnapshot.CompactionAfterSeconds = after.Seconds()
	cfg.Progress("warm %d: first snapshot D+1: %.2fs, %d changes, peak RSS %d MiB (anon %d MiB), compaction %.1fs after", n,
		wp.FirstSnapshot.Seconds, wp.FirstSnapshot.Changes, st.PeakRSSBytes>>20, st.PeakAnonBytes>>20, after.Seconds())

	// The day of traffic (D+1) and the next day's ticks.
	t0 := time.Now()
	wp.ByTopic, err = produceWarmDay(ctx, r, 1)
	if err != nil {
		return wp, err
	}
	if err := r.tick(ctx, 2); err != nil {
		return wp, err
	}
	wp.ProduceSeconds = time.Since(t0).Seconds()
	for _, c := range wp.ByTopic {
		wp.Records += c
	}
	cfg.Progress("warm %d: produced %d records of day D+1 %v in %.1fs", n, wp.Records, wp.ByTopic, wp.ProduceSeconds)

	// Raw before and after the full pipeline, all on the same topics.
	in := &Input{Topics: r.topics, Partitions: r.parts}
	if _, err := runConsume(ctx, cfg, in, false); err != nil { // warm-up, untimed
		return wp, err
	}
	if wp.Raw, err = runConsume(ctx, cfg, in, false); err != nil {
		return wp, err
	}
	cfg.Progress("warm %d: raw %9.0f records/s  %5.2f CPU s/M", n, wp.Raw.RecordsPerSec, wp.Raw.CPUSecondsPerMillion)
	r.dayChanges()
	mark, err := markOutputs(ctx, cfg, replayOutputTopics(r.ro, true), r.parts)
	if err != nil {
		return wp, err
	}
	m = meter{brokerPID: cfg.BrokerPID}
	m.start()
	var changes, consumed int64
	pprof.Do(ctx, pprof.Labels("stage", StageWarmFull), func(ctx context.Context) {
		changes, consumed, err = r.replay(ctx)
	})
	if err != nil {
		return wp, err
	}
	wp.Full = m.stop(StageFull, consumed)
	wp.Full.Changes = changes
	wp.DaySweep, _ = sweepOf(r.dayChanges(), 2)
	cfg.Progress("warm %d: full %9.0f records/s  %5.2f CPU s/M  peak RSS %d MiB (anon %d MiB); day change D+2 %.2fs, %d changes", n,
		wp.Full.RecordsPerSec, wp.Full.CPUSecondsPerMillion, wp.Full.PeakRSSBytes>>20, wp.Full.PeakAnonBytes>>20, wp.DaySweep.Seconds, wp.DaySweep.Changes)
	if wp.RawAfter, err = runConsume(ctx, cfg, in, false); err != nil {
		return wp, err
	}
	if raw := (wp.Raw.RecordsPerSec + wp.RawAfter.RecordsPerSec) / 2; raw > 0 {
		wp.Full.RatioToRaw = wp.Full.RecordsPerSec / raw
		wp.RawAfter.RatioToRaw = wp.RawAfter.RecordsPerSec / wp.Raw.RecordsPerSec
	}
	if wp.CompactionAfterSeconds, err = settleDuration(ctx, r); err != nil {
		return wp, err
	}
	// The floors once the day's compaction is done (they only read), after
	// an untimed read pass like raw's warm-up (Badger's caches of table
	// indexes and filters, the page cache).
	if _, err := runFloor(ctx, cfg, in, r.store, false); err != nil {
		return wp, err
	}
	for _, f := range []struct {
		res    *StageResult
		decode bool
	}{{&wp.FloorRead, false}, {&wp.FloorDecode, true}} {
		if *f.res, err = runFloor(ctx, cfg, in, r.store, f.decode); err != nil {
			return wp, err
		}
		if raw := (wp.Raw.RecordsPerSec + wp.RawAfter.RecordsPerSec) / 2; raw > 0 {
			f.res.RatioToRaw = f.res.RecordsPerSec / raw
		}
		cfg.Progress("warm %d: %s %9.0f records/s  %5.2f CPU s/M = %.1f%% of raw", n, f.res.Name, f.res.RecordsPerSec, f.res.CPUSecondsPerMillion, 100*f.res.RatioToRaw)
	}
	outs, outBytes, err := loadOutputs(ctx, cfg, mark, r.parts) // untimed
	if err != nil {
		return wp, err
	}
	for _, f := range []struct {
		res   *StageResult
		store *state.Store
	}{{&wp.FloorIO, nil}, {&wp.FloorDay, r.store}} {
		if *f.res, err = runFloorIO(ctx, cfg, in, outs, f.store); err != nil {
			return wp, err
		}
		if raw := (wp.Raw.RecordsPerSec + wp.RawAfter.RecordsPerSec) / 2; raw > 0 {
			f.res.RatioToRaw = f.res.RecordsPerSec / raw
		}
		cfg.Progress("warm %d: %s (%d outputs, %d MiB, written again) %9.0f records/s  %5.2f CPU s/M = %.1f%% of raw", n, f.res.Name,
			f.res.Outputs, outBytes>>20, f.res.RecordsPerSec, f.res.CPUSecondsPerMillion, 100*f.res.RatioToRaw)
	}
	if wp.FloorDay.RecordsPerSec > 0 {
		wp.Full.RatioToFloor = wp.Full.RecordsPerSec / wp.FloorDay.RecordsPerSec
	}
	lsm, vlog := r.store.Size()
	wp.DiskBytesBeforeGC = lsm + vlog
	if wp.VlogGCFiles, err = r.store.GCValueLog(); err != nil {
		return wp, err
	}
	lsm, vlog = r.store.Size()
	wp.DiskBytesBusy = lsm + vlog
	wp.BytesPerSIRENBusy = float64(wp.DiskBytesBusy) / float64(n)
	idleStart := time.Now()
	if wp.IdleGCFiles, err = r.store.IdleGC(); err != nil {
		return wp, err
	}
	wp.IdleGCSeconds = time.Since(idleStart).Seconds()
	wp.Full.BadgerSizeLSM, wp.Full.BadgerSizeVlog = r.store.Size()
	if wp.DiskBytes, err = r.closeStore(); err != nil {
		return wp, err
	}
	wp.BytesPerSIREN = float64(wp.DiskBytes) / float64(n)
	wp.Full.BadgerDiskBytes, wp.Full.BadgerBytesPerSIREN, wp.Full.StoredSIRENs = wp.DiskBytes, wp.BytesPerSIREN, n
	cfg.Progress("warm %d: raw after %9.0f records/s; full = %.0f%% of raw; Badger %.0f B/SIREN after the idle GC (%d files, %.1fs), %.0f busy, %.0f before the value-log GC of %d files", n,
		wp.RawAfter.RecordsPerSec, 100*wp.Full.RatioToRaw, wp.BytesPerSIREN, wp.IdleGCFiles, wp.IdleGCSeconds, wp.BytesPerSIRENBusy,
		float64(wp.DiskBytesBeforeGC)/float64(n), wp.VlogGCFiles)
	return wp, nil
}

func settleDuration(ctx context.Context, r *rig) (float64, error) {
	d, err := settleCompaction(ctx, r.store)
	return d.Seconds(), err
}

// warmRecordsMax bounds the records of one SIREN in a day.
const warmRecordsMax = 5

// warmDay returns the events of SIREN i on stream day D+day (times inside
// that day, not sorted): one usage record per site (1–3, continuing the
// built history's volumes), a profile update for one in five, an outage
// (started, resolved) for one in 24 single-site SIRENs and a claim on it
// for half of those — 1 to 5 records, about 2.3 on average.
func warmDay(i, day int, evs []engine.Event) []engine.Event {
	evs = evs[:0]
	s := gen.SIREN(i)
	d0 := scaleDay.AddDate(0, 0, day).UnixMilli()
	const minute = 60 * 1000
	h := uint64(i)*0x9e3779b97f4a7c15 + 1
	at := func(j int) int64 { // a pseudo-random time of the day per record
		x := (h ^ uint64(j+1)*0xbf58476d1ce4e5b9) * 0x94d049bb133111eb
		return d0 + int64((x>>20)%(24*60*minute))
	}
	sites := 1 + i%3
	postals := [3]string{"75001", "75001", "13001"}
	if i%2 == 1 {
		postals[1] = "69001"
	}
	base := float64(2e7 * (1 + (h>>8)%500))
	growth := 1.0
	if i%10 == 3 {
		growth = 1.006
	}
	by := base * pow(growth, day+89)
	for site := 0; site < sites; site++ {
		evs = append(evs, engine.Event{Kind: engine.KindUsage, EventID: "wu-" + strconv.Itoa(site) + "-" + strconv.Itoa(day), SIREN: s, EventTime: at(site),
			SiteID: "s" + strconv.Itoa(site), PostalCode: postals[site], BytesUp: int64(by / 5), BytesDown: int64(by), ActiveSIMs: int32(1 + i%20), HasActiveSIMs: true})
	}
	if i%5 == 0 {
		evs = append(evs, engine.Event{Kind: engine.KindProfile, EventID: "wp-" + strconv.Itoa(day), SIREN: s, EventTime: at(3),
			Plan: [...]string{gen.PlanBasicSIM, gen.PlanSDWAN, gen.PlanPremiumSLA}[i%3], Workforce: int32(4 + h%200), HasWorkforce: true})
	}
	if i%3 == 0 && i%8 == 0 {
		start := d0 + (at(4)-d0)%(18*60*minute)
		id := "wo-" + strconv.Itoa(day)
		evs = append(evs,
			engine.Event{Kind: engine.KindOutage, EventID: id + "-s", SIREN: s, EventTime: start, SiteID: "s0", PostalCode: postals[0], OutageID: id, Status: engine.OutageStarted},
			engine.Event{Kind: engine.KindOutage, EventID: id + "-r", SIREN: s, EventTime: start + 2*60*minute, SiteID: "s0", PostalCode: postals[0], OutageID: id, Status: engine.OutageResolved})
		if i%16 == 0 {
			evs = append(evs, engine.Event{Kind: engine.KindClaim, EventID: "wc-" + strconv.Itoa(day), SIREN: s, EventTime: start + 4*60*minute,
				ClaimID: "wc-" + strconv.Itoa(day), OutageID: id, HasOutageID: true, AmountCents: 20_000})
		}
	}
	return evs
}

// produceWarmDay writes every SIREN's records of day D+day to the rig's
// topics in event-time order by minute (a counting sort of (SIREN, record)
// by minute of the day; within a minute, SIREN order), and returns the
// records per topic.
func produceWarmDay(ctx context.Context, r *rig, day int) (map[string]int64, error) {
	const minutes = 24 * 60
	d0 := scaleDay.AddDate(0, 0, day).UnixMilli()
	minuteOf := func(ms int64) int { return int((ms - d0) / 60_000) }
	var evs []engine.Event
	var count [minutes + 1]int
	total := 0
	for i := 0; i < r.n; i++ {
		evs = warmDay(i, day, evs)
		for _, ev := range evs {
			count[minuteOf(ev.EventTime)+1]++
		}
		total += len(evs)
	}
	for m := 1; m <= minutes; m++ {
		count[m] += count[m-1]
	}
	// order[k] = SIREN index << 3 | record index, grouped by minute.
	order := make([]uint32, total)
	for i := 0; i < r.n; i++ {
		evs = warmDay(i, day, evs)
		for j, ev := range evs {
			m := minuteOf(ev.EventTime)
			order[count[m]] = uint32(i)<<3 | uint32(j)
			count[m]++
		}
	}
	topicOf := [...]string{engine.KindUsage: r.topics.Usage, engine.KindOutage: r.topics.Outages, engine.KindClaim: r.topics.Claims, engine.KindProfile: r.topics.Profiles}
	genName := [...]string{engine.KindUsage: gen.TopicUsage, engine.KindOutage: gen.TopicOutages, engine.KindClaim: gen.TopicClaims, engine.KindProfile: gen.TopicProfiles}
	byTopic := map[string]int64{}
	batch := make([]kafka.Message, 0, 5000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.w.WriteMessages(ctx, batch...)
		batch = batch[:0]
		return err
	}
	for _, o := range order {
		i, j := int(o>>3), int(o&7)
		evs = warmDay(i, day, evs)
		ev := &evs[j]
		val, err := r.codec.EncodeEvent(nil, ev)
		if err != nil {
			return nil, err
		}
		batch = append(batch, kafka.Message{Topic: topicOf[ev.Kind], Key: []byte(ev.SIREN), Value: val, Time: time.UnixMilli(ev.EventTime)})
		byTopic[genName[ev.Kind]]++
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return byTopic, flush()
}
