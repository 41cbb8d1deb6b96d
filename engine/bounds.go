package engine

// Per-SIREN bounds. Every list a State keeps is bounded by design, so that
// one SIREN's encoding stays far below a Kafka record (1 MiB) and a Badger
// value whatever its input: a hot or hostile SIREN degrades its own
// metrics in documented ways, it never stops its partition. Usage days are
// bounded by Config.UsageDays (one bucket per day); the rest by the caps
// below. When a cap is reached the least relevant entry goes (the rule is
// in each constant's comment), deterministically, and the task counts a
// hit of that Bound (Task.Bounds). With every cap full and every string at
// its longest (256 bytes), a state encodes to about 580 KB (tested); a
// SIREN with realistic ids stays under 60 KB.
const (
	// MaxOpenOutages caps the open outages of a SIREN (they never expire).
	// Above it the one open the longest goes (earliest start, then smallest
	// id): most likely an outage whose RESOLVED was lost. Its RESOLVED, if
	// it comes, then needs started_at.
	MaxOpenOutages = 128
	// MaxResolvedOutages caps the resolved outages (kept HistoryDays by
	// resolution, also to ignore repeats of their events). Above it the one
	// resolved first goes (then smallest id): outages older than 90 days,
	// which count in no metric, go before any that does.
	MaxResolvedOutages = 1024
	// MaxPostalCodes caps the postal codes remembered (90 days after last
	// seen). Above it the one seen least recently goes (then smallest
	// code): distinct_postal_codes_90d saturates at this value.
	MaxPostalCodes = 256
	// MaxClaims caps the claims kept (HistoryDays by claim day). Above it
	// the oldest goes (earliest day, then earliest arrival): claims_365d
	// saturates at this value.
	MaxClaims = 2048
	// MaxWorkforceObservations caps the workforce history of the flat test.
	// Above it the oldest observation goes.
	MaxWorkforceObservations = 1024
)

// Bound names one per-SIREN bound: an index of BoundCounts.
type Bound uint8

// The bounds. String gives the name used in metrics and logs.
const (
	// BoundDedup ("dedup"): an event id left the SIREN's exact set
	// (DedupExact) for a day filter. Its duplicates are still caught; from
	// now on a new event id of the SIREN may be a false positive.
	BoundDedup Bound = iota
	// BoundDedupForgotten ("dedup_forgotten"): an event id was forgotten
	// inside the dedup window because its day filter was full
	// (DedupFilterCap) or dropped (DedupMaxFilters): a re-sent copy of it
	// would be applied again.
	BoundDedupForgotten
	// BoundOpenOutages ("open_outages"): an open outage was dropped
	// (MaxOpenOutages).
	BoundOpenOutages
	// BoundResolvedOutages ("resolved_outages"): a resolved outage was
	// dropped (MaxResolvedOutages).
	BoundResolvedOutages
	// BoundPostalCodes ("postal_codes"): a postal code was dropped
	// (MaxPostalCodes).
	BoundPostalCodes
	// BoundClaims ("claims"): a claim was dropped (MaxClaims).
	BoundClaims
	// BoundWorkforce ("workforce_history"): a workforce observation was
	// dropped (MaxWorkforceObservations).
	BoundWorkforce
	// BoundTimers ("timers"): a pending timer of the task was dropped
	// (MaxTimers).
	BoundTimers
	// BoundEligibilities ("eligibilities"): an offer eligibility was not
	// opened (MaxEligibilities).
	BoundEligibilities

	// NumBounds is the number of bounds.
	NumBounds = iota
)

var boundNames = [NumBounds]string{
	"dedup", "dedup_forgotten", "open_outages", "resolved_outages", "postal_codes", "claims", "workforce_history", "timers", "eligibilities",
}

// String is the bound's name ("dedup", "open_outages", ...).
func (b Bound) String() string {
	if int(b) < len(boundNames) {
		return boundNames[b]
	}
	return "unknown"
}

// BoundCounts counts the hits of every bound since the task was created
// (runtime only: not in the task meta, a restarted task counts from 0).
// A hit is one entry approximated or dropped by a bound.
type BoundCounts struct {
	// Hits are monotonic counters, indexed by Bound.
	Hits [NumBounds]uint64
	// Last is the SIREN of the latest hit of each bound ("" before one).
	Last [NumBounds]string
	// Total is the sum of Hits: compare it to see whether anything changed.
	Total uint64
}

// add counts n hits of b by siren; c may be nil (a decode: nobody counts).
func (c *BoundCounts) add(b Bound, siren string, n int) {
	if c == nil || n <= 0 {
		return
	}
	c.Hits[b] += uint64(n)
	c.Total += uint64(n)
	c.Last[b] = siren
}

// Bounds returns the task's bound counters. It copies a small struct and
// allocates nothing; compare BoundHits first on the hot path.
func (t *Task) Bounds() BoundCounts { return t.bounds }

// BoundHits is Bounds().Total: the number of bound hits so far, a cheap
// per-record check for "did a SIREN just hit a bound".
func (t *Task) BoundHits() uint64 { return t.bounds.Total }
