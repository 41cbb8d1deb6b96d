// Package uplift is the statistics of sirenstream's outcome measurement
// (spec §8): the difference of two proportions (treatment − control) with a
// 95 % confidence interval, the relative lift, and the sample size needed to
// detect a given lift. Pure functions, no I/O.
//
// The interval is Newcombe's hybrid score interval (method 10 of Newcombe
// 1998), built from the Wilson intervals of each rate: unlike the Wald
// interval it stays inside [-1, 1] and keeps its coverage when a rate is
// near 0 or a group is small, which a 5 % control group often is. Wald is
// kept for comparison and for the sample-size formula.
package uplift

import "math"

// Z95 is the two-sided 95 % normal quantile.
const Z95 = 1.959963984540054

// Rate is k successes out of n.
type Rate struct {
	K, N int64
}

// P is the rate k/n (0 when n = 0).
func (r Rate) P() float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.K) / float64(r.N)
}

// Wilson returns the Wilson score interval of r at z (0, 1 when n = 0).
func (r Rate) Wilson(z float64) (lo, hi float64) {
	if r.N == 0 {
		return 0, 1
	}
	n, p := float64(r.N), r.P()
	z2 := z * z
	den := 1 + z2/n
	mid := (p + z2/(2*n)) / den
	half := z * math.Sqrt(p*(1-p)/n+z2/(4*n*n)) / den
	return math.Max(0, mid-half), math.Min(1, mid+half)
}

// Diff is treatment − control with an interval.
type Diff struct {
	Lift, Low, High float64
}

// Newcombe returns treatment.P() − control.P() with Newcombe's hybrid score
// interval at z. With an empty group the interval is [-1, 1].
func Newcombe(treatment, control Rate, z float64) Diff {
	p1, p2 := treatment.P(), control.P()
	d := Diff{Lift: p1 - p2, Low: -1, High: 1}
	if treatment.N == 0 || control.N == 0 {
		return d
	}
	l1, u1 := treatment.Wilson(z)
	l2, u2 := control.Wilson(z)
	d.Low = d.Lift - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	d.High = d.Lift + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return d
}

// Wald returns the difference with the Wald interval at z.
func Wald(treatment, control Rate, z float64) Diff {
	p1, p2 := treatment.P(), control.P()
	d := Diff{Lift: p1 - p2, Low: -1, High: 1}
	if treatment.N == 0 || control.N == 0 {
		return d
	}
	se := math.Sqrt(p1*(1-p1)/float64(treatment.N) + p2*(1-p2)/float64(control.N))
	d.Low, d.High = d.Lift-z*se, d.Lift+z*se
	return d
}

// Relative returns (treatment − control) / control rate, false when the
// control rate is 0 (the lift is then undefined).
func Relative(treatment, control Rate) (float64, bool) {
	p2 := control.P()
	if p2 == 0 {
		return 0, false
	}
	return (treatment.P() - p2) / p2, true
}

// Z80 is the one-sided normal quantile of 80 % power.
const Z80 = 0.8416212335729143

// SampleSize returns the number of eligible SIRENs needed in total to
// detect an absolute lift delta over a base conversion rate base with a
// control share share, at 95 % two-sided confidence and 80 % power
// (normal approximation, unequal groups): n_c = share·N, n_t = (1−share)·N.
func SampleSize(base, delta, share float64) int64 {
	if delta <= 0 || share <= 0 || share >= 1 {
		return 0
	}
	p1 := base + delta
	v := p1*(1-p1)/(1-share) + base*(1-base)/share
	n := (Z95 + Z80) * (Z95 + Z80) * v / (delta * delta)
	return int64(math.Ceil(n))
}
