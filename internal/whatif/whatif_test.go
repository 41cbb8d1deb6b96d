package whatif_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/internal/whatif"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestRaisingRecoveryThresholdEmptiesRecoveryExposed: with
// recovery_exposed.enter raised from 4 h to 1000 h no SIREN can be
// RECOVERY_EXPOSED, so every SIREN that ends RECOVERY_EXPOSED under the
// current rules leaves it, CHURN_RISK (which needs it) empties, and
// GOLDEN_HOUR_REPAIR is lost by exactly those SIRENs; other segments do not
// move. The counts are checked against an ordinary replay under the current
// rules, and the what-if writes to no topic.
func TestRaisingRecoveryThresholdEmptiesRecoveryExposed(t *testing.T) {
	const parts = 3
	brokers, msgs := testkit.Loaded(t, parts, gen.Config{SIRENs: 300, Days: 75, Seed: 5, BadRate: 0.002})

	// Reference: an ordinary replay under the current rules, read back.
	cfg := testkit.Config(t, brokers, t.TempDir())
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := p.Replay(ctx, processor.ReplayOptions{OutputTopic: "reference"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Store.Close(); err != nil {
		t.Fatal(err)
	}
	latest := testkit.Latest(testkit.Changes(t, testkit.ReadAllFresh(t, brokers, "reference")))
	holders := map[string][]string{} // segment → SIRENs holding it at the end
	for s, sc := range latest {
		for _, seg := range sc.Segments {
			holders[seg] = append(holders[seg], s)
		}
	}
	for _, l := range holders {
		sort.Strings(l)
	}
	exposed, churn := holders["RECOVERY_EXPOSED"], holders["CHURN_RISK"]
	if len(exposed) == 0 || len(churn) == 0 {
		t.Fatalf("the generated history must have RECOVERY_EXPOSED (%d) and CHURN_RISK (%d) SIRENs", len(exposed), len(churn))
	}

	// GOLDEN_HOUR_REPAIR from RECOVERY_EXPOSED alone (not also from a
	// golden-hour breach), so that it follows the segment.
	current := engine.DefaultRules()
	current.Offers.GoldenHourMinBreaches = 0
	strict := engine.DefaultRules()
	strict.Offers.GoldenHourMinBreaches = 0
	strict.Version = "strict-recovery"
	strict.RecoveryExposed.Enter = 1000
	before := testkit.AllEndOffsets(t, brokers)
	rep := compare(t, cfg, current, strict)
	if after := testkit.AllEndOffsets(t, brokers); !reflect.DeepEqual(before, after) {
		t.Fatalf("the what-if wrote to Kafka:\nbefore %v\nafter  %v", before, after)
	}

	if rep.CurrentVersion != engine.DefaultRulesVersion || rep.ProposedVersion != "strict-recovery" || rep.Records != int64(len(msgs)) {
		t.Errorf("report header: %q → %q over %d records, want %q → strict-recovery over %d", rep.CurrentVersion, rep.ProposedVersion, rep.Records, engine.DefaultRulesVersion, len(msgs))
	}
	for _, name := range []string{"RECOVERY_EXPOSED", "CHURN_RISK"} {
		d, want := rep.Segment(name), holders[name]
		if d.Current != len(want) || d.Proposed != 0 || d.Leaving != len(want) || d.Entering != 0 {
			t.Errorf("%s: %+v; want current = leaving = %d (the reference replay), proposed = entering = 0", name, d, len(want))
		}
		if len(d.LeavingExamples) != min(5, len(want)) || !reflect.DeepEqual(d.LeavingExamples, want[:len(d.LeavingExamples)]) {
			t.Errorf("%s leaving examples %v, want the first SIRENs of %v", name, d.LeavingExamples, want)
		}
	}
	for _, name := range []string{"DATA_HUNGRY", "HIDDEN_GROWTH", "SLA_SENSITIVE", "MULTI_SITE"} {
		d := rep.Segment(name)
		if d.Entering != 0 || d.Leaving != 0 || d.Current != len(holders[name]) || d.Proposed != d.Current {
			t.Errorf("%s must not move: %+v (reference %d)", name, d, len(holders[name]))
		}
	}
	// Every holder loses it (those on PREMIUM_SLA, its product, never had it).
	if o := rep.Offer("GOLDEN_HOUR_REPAIR"); o.Lost != o.Current || o.Current == 0 || o.Current > len(exposed) || o.Proposed != 0 || o.Gained != 0 {
		t.Errorf("GOLDEN_HOUR_REPAIR: %+v, want all lost, at most the %d RECOVERY_EXPOSED", o, len(exposed))
	}
	if rep.Changed != len(exposed) {
		t.Errorf("%d SIRENs changed, want the %d RECOVERY_EXPOSED ones", rep.Changed, len(exposed))
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), fmt.Sprintf("RECOVERY_EXPOSED leaving (%d), e.g. %s", len(exposed), exposed[0])) {
		t.Errorf("text report lacks the leaving line:\n%s", text.String())
	}

	t.Run("unchanged rules give an empty diff", func(t *testing.T) {
		f, err := os.Open("../../engine/default_rules.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		same, err := engine.ParseRules(f)
		if err != nil {
			t.Fatal(err)
		}
		rep := compare(t, cfg, engine.DefaultRules(), same)
		if !rep.Empty() || rep.Changed != 0 || rep.SIRENs != len(latestHolding(latest)) {
			t.Fatalf("diff of identical rules is not empty: %+v", rep)
		}
		var text bytes.Buffer
		if err := rep.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "no change") {
			t.Errorf("text report: %s", text.String())
		}
	})
}

func TestCompareIsSortedAndCounts(t *testing.T) {
	cur := map[string]whatif.Final{
		"3": {Segments: []string{"MULTI_SITE"}, Offers: []string{"MULTISITE_VPN"}},
		"1": {Segments: []string{"MULTI_SITE", "SLA_SENSITIVE"}, Offers: []string{"MULTISITE_VPN"}},
		"2": {Segments: []string{"SLA_SENSITIVE"}},
	}
	prop := map[string]whatif.Final{
		"1": {Segments: []string{"MULTI_SITE"}, Offers: []string{"MULTISITE_VPN"}},
		"2": {Segments: []string{"SLA_SENSITIVE"}},
		"4": {Segments: []string{"MULTI_SITE"}, Offers: []string{"MULTISITE_VPN"}},
		"5": {Segments: []string{"MULTI_SITE"}, Offers: []string{"MULTISITE_VPN"}},
	}
	rep := whatif.Compare(cur, prop, 1)
	ms := rep.Segment("MULTI_SITE")
	if ms.Current != 2 || ms.Proposed != 3 || ms.Entering != 2 || ms.Leaving != 1 ||
		!reflect.DeepEqual(ms.EnteringExamples, []string{"4"}) || !reflect.DeepEqual(ms.LeavingExamples, []string{"3"}) {
		t.Errorf("MULTI_SITE %+v", ms)
	}
	if sla := rep.Segment("SLA_SENSITIVE"); sla.Current != 2 || sla.Proposed != 1 || sla.Leaving != 1 {
		t.Errorf("SLA_SENSITIVE %+v", sla)
	}
	if o := rep.Offer("MULTISITE_VPN"); o.Current != 2 || o.Proposed != 3 || o.Gained != 2 || o.Lost != 1 {
		t.Errorf("MULTISITE_VPN %+v", o)
	}
	if rep.Changed != 4 || rep.SIRENs != 5 || len(rep.Examples) != 1 || rep.Examples[0].SIREN != "1" {
		t.Errorf("changed %d of %d, examples %+v", rep.Changed, rep.SIRENs, rep.Examples)
	}
	var a, b bytes.Buffer
	if err := rep.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := whatif.Compare(cur, prop, 1).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("the same comparison printed two different JSON documents")
	}
}

func compare(t *testing.T, base processor.Config, current, proposed *engine.Rules) *whatif.Report {
	t.Helper()
	base.Store = nil
	c, err := whatif.New(whatif.Options{Config: base, Current: current, Proposed: proposed, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rep, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func latestHolding(latest map[string]*schemas.SegmentChange) []string {
	var out []string
	for s, sc := range latest {
		if len(sc.Segments) > 0 || len(sc.Offers) > 0 {
			out = append(out, s)
		}
	}
	return out
}
