package engine

// nextIntensities is the multiset of the intensities every SIREN of the
// partition will have on day `day` — what pass 1 of the day change to `day`
// would compute by reading every state. Pass 2 of a day change builds it
// (each state it evaluates, at the next day) and every Step keeps it exact
// (the SIREN's value before the step out, after the step in), so the next
// day change skips pass 1. A caller whose partition fits in memory has a
// cheap pass 1 and does not ask for it (KeepNextDay). It is an optimisation
// only: when it is missing (a fresh or restarted task, a pass 2 resumed after
// a crash, a day change that skips days) pass 1 runs as before, and both give
// the same values, so outputs do not depend on which one ran.
type nextIntensities struct {
	day    int32
	counts map[float64]int32 // value → SIRENs with it (null intensities are left out)
}

func newNextIntensities(day int32) *nextIntensities {
	return &nextIntensities{day: day, counts: make(map[float64]int32)}
}

func (s *nextIntensities) add(v float64) { s.counts[v]++ }

func (s *nextIntensities) remove(v float64) {
	if n := s.counts[v]; n > 1 {
		s.counts[v] = n - 1
	} else {
		delete(s.counts, v)
	}
}

// appendValues appends every value as many times as SIRENs have it (map
// order: setSnapshot sorts).
func (s *nextIntensities) appendValues(dst []float64) []float64 {
	for v, n := range s.counts {
		for range n {
			dst = append(dst, v)
		}
	}
	return dst
}
