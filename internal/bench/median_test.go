package bench

import "testing"

func TestMedianRounds(t *testing.T) {
	round := func(n int, raw, decode, full float64) []StageResult {
		return []StageResult{
			{Name: StageRaw, Round: n, RecordsPerSec: raw, RatioToRaw: 1},
			{Name: StageDecode, Round: n, RecordsPerSec: decode * raw, RatioToRaw: decode},
			{Name: StageFull, Round: n, RecordsPerSec: full * raw, RatioToRaw: full},
		}
	}
	rounds := [][]StageResult{
		round(1, 600, 0.9, 0.62),  // full 372/s
		round(2, 700, 1.1, 0.45),  // full 315/s
		round(3, 1000, 0.8, 0.51), // full 510/s

	}
	got := medianRounds(rounds)
	// raw by records/s (700: round 2); the others by ratio: decode 0.9
	// (round 1), full 0.51 (round 3; by records/s it would be round 1).
	want := []int{2, 1, 3}
	if len(got) != len(want) {
		t.Fatalf("got %d stages, want %d", len(got), len(want))
	}
	for i, s := range got {
		if s.Round != want[i] || s != rounds[want[i]-1][i] {
			t.Errorf("stage %s: median round %d, want %d", s.Name, s.Round, want[i])
		}
	}
	// Even count: the lower middle.
	if got := medianRounds(rounds[:2]); got[2].Round != 2 || got[0].Round != 1 {
		t.Errorf("two rounds: full from round %d, raw from round %d; want 2 and 1", got[2].Round, got[0].Round)
	}
	if medianRounds(nil) != nil {
		t.Error("no rounds: want nil")
	}
}
