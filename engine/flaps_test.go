package engine

import "testing"

func TestFlaps(t *testing.T) {
	f := NewFlaps()
	a, b := mkSIREN(1), mkSIREN(2)
	steps := []struct {
		siren          string
		day            int32
		added, removed Segments
		want           Segments
	}{
		{a, 0, HiddenGrowth | DataHungry, 0, 0},
		{a, 1, 0, HiddenGrowth, 0},
		{b, 2, HiddenGrowth, 0, 0},                     // another SIREN's exit is not b's
		{a, 8, HiddenGrowth, DataHungry, HiddenGrowth}, // 7 days after the exit: a flap
		{a, 9, 0, HiddenGrowth, 0},
		{a, 17, HiddenGrowth | DataHungry, 0, 0}, // 8 days after: not (and DATA_HUNGRY left on day 8)
	}
	for i, s := range steps {
		if got := f.Observe(s.siren, at(d0+s.day, 3), s.added, s.removed); got != s.want {
			t.Fatalf("step %d: flaps %v, want %v", i, got, s.want)
		}
	}
	if len(f.left) != 0 {
		t.Fatalf("exits older than the window are kept: %v", f.left)
	}
}
