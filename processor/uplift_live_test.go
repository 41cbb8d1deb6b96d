package processor_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestLiveUpliftMeasuresThePlantedEffects: a live run (consumer group) on
// generate's data — a population and, before it, the planted-effects cohort
// (gen.Cohort) — publishes an uplift table whose 95 % intervals cover the
// planted lifts, with every cohort SIREN eligible (intention-to-treat); a
// restart rebuilds the same table from the repartition topic and writes it
// again; a replay of the same topics measures the same figures.
func TestLiveUpliftMeasuresThePlantedEffects(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const parts, size = 2, 2000
	holdout := engine.Holdout{ID: "live", Salt: "planted", Share: 0.5}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const window = 20 * engine.DayMs
	cohort := gen.Cohort(size, 100, start.UnixMilli(), window, window, engine.DefaultAllowedLatenessMs, holdout, 3)
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 100, Days: 5, Start: start, Seed: 3, Outcomes: &cohort})
	dir := t.TempDir()
	config := func(dir string) processor.Config {
		cfg := testkit.Config(t, brokers, dir)
		cfg.Engine.Holdout = holdout
		cfg.Engine.ConversionWindowMs, cfg.Engine.ChurnWindowMs = window, window
		return cfg
	}
	complete := func(p *processor.Processor) func() (bool, string) {
		return func() (bool, string) {
			got := map[string]int64{}
			for _, r := range p.Uplift() {
				got[r.Offer] = r.TreatmentEligible + r.ControlEligible
			}
			ok := got[engine.OfferMultisiteVPN] == size && got[engine.OfferGoldenHourRepair] == size/2
			return ok, "uplift rows not complete yet"
		}
	}

	h := testkit.Start(t, config(dir))
	h.WaitConsumed(t, int64(len(msgs)), parts, 120*time.Second)
	if ok, why := testkit.Poll(60*time.Second, 50*time.Millisecond, complete(h.P)); !ok {
		t.Fatalf("%s: %+v", why, h.P.Uplift())
	}
	live := h.P.Uplift()
	for _, r := range live {
		t.Logf("live %s: treatment %d/%d, control %d/%d, lift %.4f [%.4f, %.4f], control share %.3f", r.Offer,
			r.TreatmentConverted, r.TreatmentEligible, r.ControlConverted, r.ControlEligible, r.ConversionLift, r.ConversionLiftLow, r.ConversionLiftHigh, r.ControlShare)
	}
	checkPlanted(t, live, holdout.Share)
	written := len(testkit.ReadAllFresh(t, brokers, "uplift"))
	if last := latestUplift(t, testkit.ReadAllFresh(t, brokers, "uplift")); !reflect.DeepEqual(last, rowsByOffer(live)) {
		t.Errorf("the uplift topic's latest rows differ from /v1/uplift's:\n%+v\n%+v", last, live)
	}
	h.Stop(t)

	// A restart folds the repartition topic again and writes the same table.
	h = testkit.Start(t, config(dir))
	if ok, why := testkit.Poll(60*time.Second, 50*time.Millisecond, complete(h.P)); !ok {
		t.Fatalf("after a restart, %s: %+v", why, h.P.Uplift())
	}
	if again := h.P.Uplift(); !reflect.DeepEqual(again, live) {
		t.Errorf("after a restart the table differs:\n%+v\n%+v", again, live)
	}
	if ok, why := testkit.Poll(30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return len(testkit.ReadAllFresh(t, brokers, "uplift")) >= written+len(live), "the restart did not write the table again"
	}); !ok {
		t.Error(why)
	}
	if last := latestUplift(t, testkit.ReadAllFresh(t, brokers, "uplift")); !reflect.DeepEqual(last, rowsByOffer(live)) {
		t.Errorf("after a restart the uplift topic's latest rows differ:\n%+v\n%+v", last, live)
	}
	h.Stop(t)

	// A replay of the same topics measures the same figures.
	cfg := config(t.TempDir())
	defer cfg.Store.Close()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := p.Replay(ctx, processor.ReplayOptions{OutputTopic: "live-replay"}); err != nil {
		t.Fatal(err)
	}
	if replayed := p.Uplift(); !reflect.DeepEqual(replayed, live) {
		t.Errorf("the replay measured another table:\n%+v\n%+v", replayed, live)
	}
	if last := latestUplift(t, testkit.ReadAllFresh(t, brokers, "live-replay-uplift")); !reflect.DeepEqual(last, rowsByOffer(live)) {
		t.Errorf("the replay's uplift topic differs from the live table:\n%+v\n%+v", last, live)
	}
}

// checkPlanted: each offer's 95 % interval covers its planted lift, excludes
// 0 when there is one, and the control share matches the setting.
func checkPlanted(t *testing.T, rows []schemas.UpliftRow, share float64) {
	t.Helper()
	by := rowsByOffer(rows)
	for _, e := range gen.DefaultEffects() {
		r, ok := by[e.Offer]
		if !ok {
			t.Errorf("no uplift row for %s", e.Offer)
			continue
		}
		if r.ConversionLiftLow > e.Lift() || e.Lift() > r.ConversionLiftHigh {
			t.Errorf("%s: interval [%.4f, %.4f] misses the planted lift %.4f", e.Offer, r.ConversionLiftLow, r.ConversionLiftHigh, e.Lift())
		}
		if e.Lift() > 0 && r.ConversionLiftLow <= 0 {
			t.Errorf("%s: planted lift %.2f not detected: [%.4f, %.4f]", e.Offer, e.Lift(), r.ConversionLiftLow, r.ConversionLiftHigh)
		}
		if d := r.ControlShare - share; d > 0.05 || d < -0.05 {
			t.Errorf("%s: control share %.3f, setting %.2f", e.Offer, r.ControlShare, share)
		}
	}
}

func rowsByOffer(rows []schemas.UpliftRow) map[string]schemas.UpliftRow {
	m := map[string]schemas.UpliftRow{}
	for _, r := range rows {
		m[r.Offer] = r
	}
	return m
}

// latestUplift is the latest row per offer of an uplift topic.
func latestUplift(t *testing.T, msgs []kafka.Message) map[string]schemas.UpliftRow {
	t.Helper()
	m := map[string]schemas.UpliftRow{}
	for _, msg := range msgs {
		r, err := schemas.DecodeUplift(msg.Value)
		if err != nil {
			t.Fatalf("uplift record at %d/%d: %v", msg.Partition, msg.Offset, err)
		}
		m[r.Offer] = *r
	}
	return m
}
