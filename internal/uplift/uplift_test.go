package uplift

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestNewcombeMatchesThePublishedExample(t *testing.T) {
	// Newcombe (1998), table II, example (a): 56/70 vs 48/80,
	// difference 0.2, method 10 interval 0.0524 to 0.3339.
	d := Newcombe(Rate{56, 70}, Rate{48, 80}, Z95)
	if math.Abs(d.Lift-0.2) > 1e-12 || math.Abs(d.Low-0.0524) > 5e-4 || math.Abs(d.High-0.3339) > 5e-4 {
		t.Fatalf("got %+v, want 0.2000 (0.0524, 0.3339)", d)
	}
}

func TestNewcombeStaysInsideTheUnitRangeWhereWaldDoesNot(t *testing.T) {
	d := Newcombe(Rate{0, 10}, Rate{10, 10}, Z95)
	if d.Low < -1 || d.High > 1 {
		t.Fatalf("%+v outside [-1, 1]", d)
	}
	// Wald degenerates at the edges: a zero-width interval.
	if w := Wald(Rate{0, 10}, Rate{10, 10}, Z95); w.High-w.Low != 0 {
		t.Fatalf("Wald %+v, expected the degenerate interval", w)
	}
	if d.High-d.Low <= 0 {
		t.Fatalf("Newcombe %+v has no width", d)
	}
}

func TestCoverageOfTheNinetyFivePercentInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const runs = 2000
	p1, p2 := 0.12, 0.05
	covered := 0
	for i := 0; i < runs; i++ {
		t1, t2 := Rate{N: 1900}, Rate{N: 100}
		for j := int64(0); j < t1.N; j++ {
			if rng.Float64() < p1 {
				t1.K++
			}
		}
		for j := int64(0); j < t2.N; j++ {
			if rng.Float64() < p2 {
				t2.K++
			}
		}
		if d := Newcombe(t1, t2, Z95); d.Low <= p1-p2 && p1-p2 <= d.High {
			covered++
		}
	}
	if c := float64(covered) / runs; c < 0.93 || c > 0.975 {
		t.Fatalf("coverage %.3f, want about 0.95", c)
	}
}

func TestRelativeIsUndefinedWithoutControlConversions(t *testing.T) {
	if _, ok := Relative(Rate{5, 10}, Rate{0, 10}); ok {
		t.Fatal("relative lift over a 0 control rate")
	}
	if r, _ := Relative(Rate{20, 100}, Rate{10, 100}); math.Abs(r-1) > 1e-12 {
		t.Fatalf("relative = %v, want 1", r)
	}
}

func TestSampleSizeGrowsAsTheLiftShrinks(t *testing.T) {
	a := SampleSize(0.05, 0.05, 0.05)
	b := SampleSize(0.05, 0.02, 0.05)
	c := SampleSize(0.05, 0.02, 0.5)
	if !(a < b && c < b) || a <= 0 {
		t.Fatalf("sample sizes %d %d %d", a, b, c)
	}
}
