package engine

// DayMs is the length of one UTC day in milliseconds. Day windows are whole
// UTC days: day = floor(ms / DayMs).
const DayMs int64 = 86_400_000

// Day returns the UTC day number (days since 1970-01-01) of a Unix-ms time,
// rounding toward negative infinity.
func Day(ms int64) int32 {
	d := ms / DayMs
	if ms%DayMs < 0 {
		d--
	}
	return int32(d)
}

// ValidSIREN reports whether s is 9 ASCII digits passing the Luhn check.
// It allocates nothing.
func ValidSIREN(s string) bool {
	if len(s) != 9 {
		return false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		c := s[8-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// segmentNames is indexed by bit position (alphabetical order).
var segmentNames = [...]string{
	"CHURN_RISK",
	"DATA_HUNGRY",
	"HIDDEN_GROWTH",
	"MULTI_SITE",
	"RECOVERY_EXPOSED",
	"SLA_SENSITIVE",
}

// AllSegments is the set of every known segment.
const AllSegments Segments = ChurnRisk | DataHungry | HiddenGrowth | MultiSite | RecoveryExposed | SLASensitive

// Names returns the labels of s, sorted. It allocates one slice; use
// AppendNames on the hot path.
func (s Segments) Names() []string {
	return s.AppendNames(make([]string, 0, 6))
}

// AppendNames appends the labels of s to dst in sorted order. The strings are
// constants: it allocates only if dst must grow.
func (s Segments) AppendNames(dst []string) []string {
	for i, n := range segmentNames {
		if s&(1<<i) != 0 {
			dst = append(dst, n)
		}
	}
	return dst
}

// Has reports whether every segment of o is in s.
func (s Segments) Has(o Segments) bool { return s&o == o }

// String returns the labels joined by "|" ("" for the empty set), for logs
// and tests.
func (s Segments) String() string {
	out := ""
	for i, n := range segmentNames {
		if s&(1<<i) != 0 {
			if out != "" {
				out += "|"
			}
			out += n
		}
	}
	return out
}

// ParseSegment returns the segment with the exact label name.
func ParseSegment(name string) (Segments, bool) {
	for i, n := range segmentNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// fnv64a hashes the concatenation of up to three strings with 64-bit FNV-1a,
// without allocating.
func fnv64a(parts ...string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= prime
		}
	}
	return h
}

func fnv64aString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
