package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestReplayCommandMeasuresThePlantedUplift: `sirenstream generate` writes
// the planted-effects cohort by default; two `sirenstream replay` runs of
// the same topics, with the holdout and windows given to generate, write
// uplift tables whose intervals cover the planted lifts, and the same
// tables (deterministic). --outcomes=false writes no outcome inputs.
func TestReplayCommandMeasuresThePlantedUplift(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	_, brokers := testkit.Cluster(t, 2)
	outcome := []string{"--holdout-salt", "planted", "--holdout-share", "0.5", "--conversion-window", "20d", "--churn-window", "20d"}
	var out, errb testkit.LockedBuffer
	args := append([]string{"generate", "--brokers", brokers[0], "--sirens", "100", "--days", "5", "--outcome-sirens", "2000"}, outcome...)
	if code := realMain(args, &out, &errb); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "offer-responses") || !strings.Contains(out.String(), "contract-events") {
		t.Errorf("generate wrote no outcome inputs: %s", out.String())
	}
	tables := map[string]map[string]schemas.UpliftRow{}
	for _, topic := range []string{"uplift-a", "uplift-b"} {
		var out, errb testkit.LockedBuffer
		args := append([]string{"replay", "--brokers", brokers[0], "--state-dir", t.TempDir(), "--output-topic", topic,
			"--progress", "off", "--log-level", "warn"}, outcome...)
		if code := realMain(args, &out, &errb); code != 0 {
			t.Fatalf("replay %s: exit %d: %s", topic, code, errb.String())
		}
		rows := map[string]schemas.UpliftRow{}
		for _, m := range testkit.ReadAllFresh(t, brokers, topic+"-uplift") {
			r, err := schemas.DecodeUplift(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			rows[r.Offer] = *r
		}
		tables[topic] = rows
	}
	a := tables["uplift-a"]
	for _, e := range gen.DefaultEffects() {
		r, ok := a[e.Offer]
		if !ok {
			t.Fatalf("no uplift row for %s: %+v", e.Offer, a)
		}
		t.Logf("%s: treatment %d/%d, control %d/%d, lift %.4f [%.4f, %.4f] (planted %.2f)", e.Offer, r.TreatmentConverted, r.TreatmentEligible,
			r.ControlConverted, r.ControlEligible, r.ConversionLift, r.ConversionLiftLow, r.ConversionLiftHigh, e.Lift())
		if r.ConversionLiftLow > e.Lift() || e.Lift() > r.ConversionLiftHigh {
			t.Errorf("%s: interval [%.4f, %.4f] misses the planted lift %.4f", e.Offer, r.ConversionLiftLow, r.ConversionLiftHigh, e.Lift())
		}
	}
	if !reflect.DeepEqual(a, tables["uplift-b"]) {
		t.Errorf("two replays wrote different tables:\n%+v\n%+v", a, tables["uplift-b"])
	}

	// --outcomes=false: no outcome inputs.
	_, brokers = testkit.Cluster(t, 2)
	out, errb = testkit.LockedBuffer{}, testkit.LockedBuffer{}
	if code := realMain([]string{"generate", "--brokers", brokers[0], "--sirens", "50", "--days", "3", "--outcomes=false"}, &out, &errb); code != 0 {
		t.Fatalf("generate --outcomes=false: exit %d: %s", code, errb.String())
	}
	for _, topic := range []string{"offer-responses", "contract-events"} {
		if n := len(testkit.ReadAllFresh(t, brokers, topic)); n != 0 {
			t.Errorf("--outcomes=false: %d records in %s", n, topic)
		}
	}
}
