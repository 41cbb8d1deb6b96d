package gen

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
)

func hashRecord(h hash.Hash, r *Record) {
	var b [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	flag := func(v bool) {
		if v {
			num(1)
		} else {
			num(0)
		}
	}
	e := &r.Event
	str(r.Topic)
	str(r.Bad)
	num(int64(e.Kind))
	str(e.EventID)
	str(e.SIREN)
	num(e.EventTime)
	str(e.SiteID)
	str(e.PostalCode)
	num(e.BytesUp)
	num(e.BytesDown)
	num(int64(e.ActiveSIMs))
	flag(e.HasActiveSIMs)
	str(e.OutageID)
	num(int64(e.Status))
	num(e.StartedAt)
	flag(e.HasStartedAt)
	str(e.ClaimID)
	flag(e.HasOutageID)
	num(e.AmountCents)
	num(int64(e.Workforce))
	flag(e.HasWorkforce)
	str(e.Plan)
}

func digest(t testing.TB, cfg Config) ([32]byte, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	err := Generate(cfg, func(r *Record) error {
		hashRecord(h, r)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d, n
}

func collect(t testing.TB, cfg Config) []Record {
	t.Helper()
	var out []Record
	if err := Generate(cfg, func(r *Record) error { out = append(out, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

var small = Config{SIRENs: 400, Days: 75, BadRate: 0.01}

func TestDeterminism(t *testing.T) {
	a, n := digest(t, small)
	b, m := digest(t, small)
	if a != b || n != m {
		t.Fatalf("same config gave different output: %x (%d) vs %x (%d)", a, n, b, m)
	}
	if n == 0 {
		t.Fatal("no records")
	}
	other := small
	other.Seed = 2
	if c, _ := digest(t, other); c == a {
		t.Fatal("different seed gave the same output")
	}
}

// Bad records are extra: the good records are the same whatever BadRate.
func TestBadRecordsDoNotShiftGoodOnes(t *testing.T) {
	clean := small
	clean.BadRate = 0
	want, _ := digest(t, clean)
	h := sha256.New()
	err := Generate(small, func(r *Record) error {
		if r.Bad == "" {
			hashRecord(h, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got [32]byte
	copy(got[:], h.Sum(nil))
	if got != want {
		t.Fatal("good records differ between BadRate 0 and BadRate > 0")
	}
}

func TestOrderingAndConsistency(t *testing.T) {
	cfg := small
	cfg.BadRate = 0
	recs := collect(t, cfg)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	end := start + int64(cfg.Days)*dayMs
	started := map[string]int64{}
	resolved := map[string]int64{}
	ids := map[string]bool{}
	prev := int64(-1 << 62)
	for i := range recs {
		e := &recs[i].Event
		if e.EventTime < prev {
			t.Fatalf("record %d (%s) goes back in time: %d < %d", i, e.EventID, e.EventTime, prev)
		}
		prev = e.EventTime
		if e.EventTime < start || e.EventTime >= end {
			t.Fatalf("record %s outside the run: %d", e.EventID, e.EventTime)
		}
		if ids[e.EventID] {
			t.Fatalf("duplicate event id %s", e.EventID)
		}
		ids[e.EventID] = true
		if !LuhnValid(e.SIREN) {
			t.Fatalf("good record %s has invalid SIREN %q", e.EventID, e.SIREN)
		}
		switch e.Kind {
		case engine.KindUsage:
			if e.BytesUp < 0 || e.BytesDown < 0 || e.BytesUp+e.BytesDown < 1e6 {
				t.Fatalf("usage %s bytes %d/%d", e.EventID, e.BytesUp, e.BytesDown)
			}
			if e.SiteID == "" || len(e.PostalCode) != 5 {
				t.Fatalf("usage %s site %q postal %q", e.EventID, e.SiteID, e.PostalCode)
			}
		case engine.KindOutage:
			if e.Status == engine.OutageStarted {
				started[e.OutageID] = e.EventTime
			} else {
				s, ok := started[e.OutageID]
				if !ok || !e.HasStartedAt || e.StartedAt != s {
					t.Fatalf("resolved %s without matching start", e.EventID)
				}
				h := float64(e.EventTime-s) / float64(hourMs)
				if h < 0.5 || h > 96 {
					t.Fatalf("outage %s lasted %.1f h", e.OutageID, h)
				}
				resolved[e.OutageID] = e.EventTime
			}
		case engine.KindClaim:
			if e.HasOutageID {
				r, ok := resolved[e.OutageID]
				if !ok || e.EventTime < r+dayMs {
					t.Fatalf("claim %s not 1+ day after its outage's resolution", e.EventID)
				}
			}
			if e.AmountCents <= 0 {
				t.Fatalf("claim %s amount %d", e.EventID, e.AmountCents)
			}
		case engine.KindProfile:
			if e.HasWorkforce && (e.Workforce < 1 || e.Workforce > 1000) {
				t.Fatalf("profile %s workforce %d", e.EventID, e.Workforce)
			}
			if e.Plan == "" {
				t.Fatalf("profile %s has no plan", e.EventID)
			}
		}
	}
}

func TestSIREN(t *testing.T) {
	for _, s := range []string{"732829320", "552100554", "542051180", "443061841"} {
		if !LuhnValid(s) {
			t.Errorf("LuhnValid(%s) = false", s)
		}
	}
	for _, s := range []string{"123456789", "732829321", "73282932", "7328293200", "73282932A", ""} {
		if LuhnValid(s) {
			t.Errorf("LuhnValid(%q) = true", s)
		}
	}
	seen := make(map[string]int, 200_000)
	check := func(i int) {
		s := SIREN(i)
		if len(s) != 9 || s[0] == '0' || !LuhnValid(s) {
			t.Fatalf("SIREN(%d) = %q is not a valid SIREN", i, s)
		}
		if j, dup := seen[s]; dup {
			t.Fatalf("SIREN(%d) = SIREN(%d) = %s", i, j, s)
		}
		seen[s] = i
	}
	for i := range 200_000 {
		check(i)
	}
	for i := maxSIRENs - 1000; i < maxSIRENs; i++ {
		check(i)
	}
	if SIREN(7) != SIREN(7) {
		t.Fatal("SIREN not deterministic")
	}
}

func TestTopics(t *testing.T) {
	want := map[engine.Kind]string{
		engine.KindUsage: TopicUsage, engine.KindOutage: TopicOutages,
		engine.KindClaim: TopicClaims, engine.KindProfile: TopicProfiles,
	}
	count := map[string]int{}
	err := Generate(small, func(r *Record) error {
		if want[r.Event.Kind] != r.Topic {
			t.Fatalf("kind %d on topic %q", r.Event.Kind, r.Topic)
		}
		count[r.Topic]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range want {
		if count[topic] == 0 {
			t.Errorf("no records on %s", topic)
		}
	}
	t.Logf("records per topic: %v", count)
}

func TestBadRecords(t *testing.T) {
	cfg := Config{SIRENs: 300, Days: 60, BadRate: 0.05}
	kinds := map[string]int{}
	good, bad := 0, 0
	err := Generate(cfg, func(r *Record) error {
		e := &r.Event
		if r.Bad == "" {
			good++
			return nil
		}
		bad++
		kinds[r.Bad]++
		if !strings.HasPrefix(e.EventID, "x-") {
			t.Fatalf("bad record id %q", e.EventID)
		}
		switch r.Bad {
		case BadSIRENLetters, BadSIRENLength, BadSIRENLuhn:
			if LuhnValid(e.SIREN) {
				t.Fatalf("%s record has a valid SIREN %q", r.Bad, e.SIREN)
			}
		case BadNegativeBytes:
			if e.Kind != engine.KindUsage || e.BytesUp >= 0 {
				t.Fatalf("negative_bytes record %+v", e)
			}
		case BadResolvedWithoutStart:
			if e.Kind != engine.KindOutage || e.Status != engine.OutageResolved || e.HasStartedAt {
				t.Fatalf("resolved_without_start record %+v", e)
			}
		default:
			t.Fatalf("unknown badness %q", r.Bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range badKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s records", k)
		}
	}
	rate := float64(bad) / float64(good)
	if rate < 0.03 || rate > 0.07 {
		t.Errorf("bad/good = %.3f, want ≈ 0.05", rate)
	}
	t.Logf("good %d bad %d: %v", good, bad, kinds)
}

func TestArchetypeCoverage(t *testing.T) {
	cfg := Config{SIRENs: 2000}
	var n [NumArchetypes]int
	for i := range cfg.SIRENs {
		n[cfg.ArchetypeOf(i)]++
	}
	for a := Archetype(0); a < NumArchetypes; a++ {
		share := float64(n[a]) / float64(cfg.SIRENs)
		if n[a] == 0 || share < ArchetypeWeights[a]/2 || share > ArchetypeWeights[a]*1.5 {
			t.Errorf("archetype %s: %d SIRENs (%.1f %%), weight %.0f %%", a, n[a], 100*share, 100*ArchetypeWeights[a])
		}
	}
	sum := 0.0
	for _, w := range ArchetypeWeights {
		sum += w
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("weights sum to %v", sum)
	}
}

func TestValidate(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SIRENs != 2000 || c.Days != 120 || c.Seed != 1 || !c.Start.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []Config{{SIRENs: -1}, {Days: -3}, {BadRate: 1}, {BadRate: -0.1}, {Days: 100000}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if err := Generate(Config{BadRate: 2}, func(*Record) error { return nil }); err == nil {
		t.Error("Generate accepted an invalid config")
	}
}

func TestEmitErrorStops(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	err := Generate(small, func(*Record) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("err %v after %d records", err, n)
	}
	n = 0
	err = Generate(small, func(*Record) error { n++; return ErrStop })
	if err != nil || n != 1 {
		t.Fatalf("ErrStop: err %v after %d records", err, n)
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := Config{SIRENs: 2000, Days: 120, BadRate: 0.001}
	total := 0
	for b.Loop() {
		if err := Generate(cfg, func(*Record) error { total++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(total)/float64(b.N), "events/run")
}
