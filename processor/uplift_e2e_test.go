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

// TestUpliftMeasuresThePlantedEffects runs the generator's planted-effects
// history (gen.OutcomeHistory) through replays: for each offer the measured
// 95 % interval of the conversion lift covers the planted lift, the
// no-effect offer's covers zero, the control share matches the setting, and
// two replays give the same table (deterministic).
func TestUpliftMeasuresThePlantedEffects(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const parts = 2
	holdout := engine.Holdout{ID: "e2e", Salt: "planted", Share: 0.5}
	ocfg := gen.OutcomeConfig{SIRENs: 3000, Holdout: holdout, Seed: 7}
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	var msgs []kafka.Message
	if err := gen.OutcomeHistory(ocfg, func(r *gen.Record) error {
		msgs = append(msgs, testkit.Msg(t, r.Event))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, brokers, msgs...)

	replay := func(topic string) ([]schemas.UpliftRow, []kafka.Message) {
		cfg := testkit.Config(t, brokers, t.TempDir())
		defer cfg.Store.Close()
		cfg.Engine.Holdout = holdout
		cfg.Engine.ConversionWindowMs = 20 * engine.DayMs
		cfg.Engine.ChurnWindowMs = 20 * engine.DayMs
		p, err := processor.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
		defer cancel()
		if err := p.Replay(ctx, processor.ReplayOptions{OutputTopic: topic}); err != nil {
			t.Fatal(err)
		}
		return p.Uplift(), testkit.ReadAllFresh(t, brokers, topic+"-uplift")
	}
	rows, out := replay("uplift-a")
	t.Logf("outcomes %d, repartition %d, daily %d, dlq %d", len(testkit.ReadAllFresh(t, brokers, "uplift-a-offer-outcomes")),
		len(testkit.ReadAllFresh(t, brokers, "uplift-a-uplift-repartition")), len(testkit.ReadAllFresh(t, brokers, "uplift-a-siren-daily")),
		len(testkit.ReadAllFresh(t, brokers, "uplift-a-dlq")))
	if len(out) == 0 {
		t.Fatal("no uplift records written")
	}
	byOffer := map[string]schemas.UpliftRow{}
	for _, r := range rows {
		byOffer[r.Offer] = r
		t.Logf("%s: treatment %d/%d, control %d/%d, lift %.4f [%.4f, %.4f], churn lift %.4f [%.4f, %.4f], control share %.3f",
			r.Offer, r.TreatmentConverted, r.TreatmentEligible, r.ControlConverted, r.ControlEligible,
			r.ConversionLift, r.ConversionLiftLow, r.ConversionLiftHigh, r.ChurnLift, r.ChurnLiftLow, r.ChurnLiftHigh, r.ControlShare)
	}
	for _, e := range gen.DefaultEffects() {
		r, ok := byOffer[e.Offer]
		if !ok {
			t.Fatalf("no uplift row for %s", e.Offer)
		}
		if r.ConversionLiftLow > e.Lift() || e.Lift() > r.ConversionLiftHigh {
			t.Errorf("%s: interval [%.4f, %.4f] misses the planted lift %.4f", e.Offer, r.ConversionLiftLow, r.ConversionLiftHigh, e.Lift())
		}
		if e.Lift() == 0 && (r.ConversionLiftLow > 0 || r.ConversionLiftHigh < 0) {
			t.Errorf("%s: no planted effect, but the interval [%.4f, %.4f] excludes 0", e.Offer, r.ConversionLiftLow, r.ConversionLiftHigh)
		}
		if e.Lift() > 0 && r.ConversionLiftLow <= 0 {
			t.Errorf("%s: planted lift %.2f not detected: [%.4f, %.4f]", e.Offer, e.Lift(), r.ConversionLiftLow, r.ConversionLiftHigh)
		}
		if d := r.ControlShare - holdout.Share; d > 0.05 || d < -0.05 {
			t.Errorf("%s: control share %.3f, setting %.2f", e.Offer, r.ControlShare, holdout.Share)
		}
		if got, want := r.TreatmentEligible+r.ControlEligible, int64(eligibleFor(e.Offer, ocfg.SIRENs)); got != want {
			t.Errorf("%s: %d eligible, want every eligible SIREN (intention-to-treat): %d", e.Offer, got, want)
		}
	}
	again, _ := replay("uplift-b")
	if !reflect.DeepEqual(rows, again) {
		t.Fatalf("a second replay measured another table:\n%+v\n%+v", rows, again)
	}
}

func eligibleFor(offer string, sirens int) int {
	if offer == engine.OfferGoldenHourRepair {
		return (sirens + 1) / 2
	}
	return sirens
}
