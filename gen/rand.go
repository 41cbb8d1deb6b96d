package gen

import "math"

// rng is a small, self-contained splitmix64 generator. The generator does not
// use math/rand so that its output is stable across Go releases: the same
// Config yields the same bytes forever.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// newRNG derives an independent stream from the seed, a salt naming the
// purpose, and up to three coordinates (firm, site, day...). Streams are
// counter-based: drawing from one never shifts another.
func newRNG(seed int64, salt, a, b, c uint64) rng {
	x := mix64(uint64(seed) + salt*golden)
	x = mix64(x ^ (a+1)*golden)
	x = mix64(x ^ (b+1)*0xd1b54a32d192ed03)
	x = mix64(x ^ (c+1)*0x8cb92ba72f3d8dd7)
	return rng{s: x}
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// between returns a uniform int in [lo, hi] (inclusive).
func (r *rng) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + int(r.next()%uint64(hi-lo+1))
}

func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

func (r *rng) chance(p float64) bool { return r.float() < p }

// norm returns a standard normal variate (Box–Muller).
func (r *rng) norm() float64 {
	u1 := r.float()
	if u1 < 1e-300 {
		u1 = 1e-300
	}
	u2 := r.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// logNormal returns median*exp(sigma*N(0,1)).
func (r *rng) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.norm())
}

func clamp(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}
