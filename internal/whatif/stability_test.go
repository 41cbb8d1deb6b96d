package whatif_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/internal/whatif"
)

// TestStableSegmentsTable (opt-in: SIRENSTREAM_STABILITY_TABLE=1, about 10 s)
// reproduces the issue-22 table on `sirenstream generate --sirens 2000 --days
// 120` (seed 1, 6 partitions): entries, exits and re-entries within 7 days of
// HIDDEN_GROWTH and DATA_HUNGRY under rules default-1 and default-2, and the
// recall and precision of HIDDEN_GROWTH at the end of the run against the
// generator's hidden_growth archetype (flat headcount, +25–45 % traffic a
// month). It checks what the issue asks: default-2 has at most a tenth of
// default-1's re-entries for both segments and still finds the growers.
//
//	SIRENSTREAM_STABILITY_TABLE=1 go test -count=1 -run StableSegmentsTable -v ./internal/whatif
func TestStableSegmentsTable(t *testing.T) {
	if os.Getenv("SIRENSTREAM_STABILITY_TABLE") == "" {
		t.Skip("opt-in: SIRENSTREAM_STABILITY_TABLE=1")
	}
	cfg := gen.Config{SIRENs: 2000, Days: 120, Seed: 1}
	brokers, _ := testkit.Loaded(t, 6, cfg)
	pc := testkit.Config(t, brokers, t.TempDir())
	if err := pc.Store.Close(); err != nil {
		t.Fatal(err)
	}
	cmp, err := whatif.New(whatif.Options{Config: pc, Current: engine.RulesV1(), Proposed: engine.DefaultRules(), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := cmp.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	growers := map[string]bool{}
	for i := range cfg.SIRENs {
		if cfg.ArchetypeOf(i) == gen.HiddenGrowth {
			growers[gen.SIREN(i)] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| segment | rules | entries | exits | re-entries within 7 days | companies flapping |\n|---|---|---:|---:|---:|---:|\n")
	for _, seg := range []string{"HIDDEN_GROWTH", "DATA_HUNGRY"} {
		for _, d := range r.Stability {
			if d.Segment != seg {
				continue
			}
			for _, s := range []struct {
				rules string
				st    whatif.Stability
			}{{r.CurrentVersion, d.Current}, {r.ProposedVersion, d.Proposed}} {
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d |\n", seg, s.rules, s.st.Entries, s.st.Exits, s.st.Flaps, s.st.FlappingSIRENs)
			}
			if d.Proposed.Flaps*10 > d.Current.Flaps {
				t.Errorf("%s: %d re-entries within 7 days under default-2, more than a tenth of default-1's %d", seg, d.Proposed.Flaps, d.Current.Flaps)
			}
		}
	}
	fmt.Fprintf(&b, "\nHIDDEN_GROWTH at day 120 vs the %d hidden_growth companies:\n| rules | held | of them growers | recall | precision |\n|---|---:|---:|---:|---:|\n", len(growers))
	finals := cmp.Finals()
	var recall [2]float64
	for i, version := range []string{r.CurrentVersion, r.ProposedVersion} {
		held, hit := 0, 0
		for s, f := range finals[i] {
			for _, seg := range f.Segments {
				if seg == "HIDDEN_GROWTH" {
					held++
					if growers[s] {
						hit++
					}
				}
			}
		}
		recall[i] = float64(hit) / float64(len(growers))
		fmt.Fprintf(&b, "| %s | %d | %d | %.3f | %.3f |\n", version, held, hit, recall[i], float64(hit)/float64(max(held, 1)))
	}
	t.Log(b.String())
	if recall[1] < 0.9*recall[0] {
		t.Errorf("default-2 finds %.3f of the growers, default-1 %.3f", recall[1], recall[0])
	}
}
