package gen

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

// A small, independent reading of spec §5–§6 (not the engine): it replays a
// generated run, evaluates every SIREN at each stream-day change with the
// default thresholds and hysteresis, and reports the share of SIRENs in each
// segment. It checks that the generator's archetypes reach every segment.

const (
	segDH = iota
	segHG
	segSLA
	segRE
	segMS
	segCR
	numSegs
)

var segNames = [numSegs]string{"DATA_HUNGRY", "HIDDEN_GROWTH", "SLA_SENSITIVE", "RECOVERY_EXPOSED", "MULTI_SITE", "CHURN_RISK"}

type refOutage struct{ start, end int64 } // end 0: open

type refFirm struct {
	idx       int
	part      int
	bytes     []int64 // per day
	sims      []int32 // max active_sims per day
	firstDay  int
	wf        []int32 // workforce in effect per day (-1 unknown), filled lazily
	curWF     int32
	plan      string
	outages   map[string]*refOutage
	claimDays []int
	postals   map[string]int // last day seen
	segs      [numSegs]bool
	ever      [numSegs]bool
	intensity float64
	scored    bool
	pct       float64
	hasPct    bool
}

type segmentReport struct {
	n      int
	end    [numSegs]int
	ever   [numSegs]int
	offers map[string]int
	byArch [NumArchetypes][numSegs]int
	arch   [NumArchetypes]int
}

func simulateSegments(t testing.TB, cfg Config, partitions int) *segmentReport {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startMs := cfg.Start.UnixMilli()
	firms := map[string]*refFirm{}
	var order []*refFirm
	for i := range cfg.SIRENs {
		s := SIREN(i)
		h := fnv.New32a()
		h.Write([]byte(s))
		f := &refFirm{idx: i, part: int(h.Sum32() % uint32(partitions)), bytes: make([]int64, cfg.Days),
			sims: make([]int32, cfg.Days), firstDay: -1, wf: make([]int32, cfg.Days), curWF: -1,
			outages: map[string]*refOutage{}, postals: map[string]int{}}
		firms[s] = f
		order = append(order, f)
	}
	var streamTime int64
	day := -1
	eval := func(D int) {
		for _, f := range order {
			f.wf[D] = f.curWF
		}
		// intensity and percentiles per partition
		byPart := make([][]float64, partitions)
		for _, f := range order {
			f.scored = false
			var t30 int64
			for d := max(0, D-29); d <= D; d++ {
				t30 += f.bytes[d]
			}
			base := 0.0
			if f.curWF > 0 {
				base = float64(f.curWF)
			} else {
				var m int32
				for d := max(0, D-29); d <= D; d++ {
					m = max(m, f.sims[d])
				}
				base = float64(m)
			}
			if base > 0 {
				f.intensity, f.scored = float64(t30)/1e9/base, true
				byPart[f.part] = append(byPart[f.part], f.intensity)
			}
		}
		for p := range byPart {
			slices.Sort(byPart[p])
		}
		for _, f := range order {
			f.hasPct = false
			if vals := byPart[f.part]; f.scored && len(vals) >= 100 {
				below := sort.SearchFloat64s(vals, f.intensity)
				f.pct, f.hasPct = 100*float64(below)/float64(len(vals)-1), true
			}
			var t30, prev int64
			for d := max(0, D-29); d <= D; d++ {
				t30 += f.bytes[d]
			}
			for d := max(0, D-59); d <= D-30; d++ {
				prev += f.bytes[d]
			}
			vel, hasVel := 0.0, false
			if f.firstDay >= 0 && f.firstDay <= D-59 && prev >= 1e9 {
				vel, hasVel = float64(t30)/float64(prev)-1, true
			}
			exp := 0.0
			for _, o := range f.outages {
				switch {
				case o.end == 0:
					exp += float64(streamTime-o.start) / float64(hourMs)
				case int((o.end-startMs)/dayMs) >= D-89:
					exp += float64(o.end-o.start) / float64(hourMs)
				}
			}
			claims := 0
			for _, d := range f.claimDays {
				if d >= D-364 {
					claims++
				}
			}
			postals := 0
			for _, d := range f.postals {
				if d >= D-89 {
					postals++
				}
			}
			flat := true
			if D >= 60 && f.curWF > 0 && f.wf[D-60] > 0 {
				r := float64(f.curWF)/float64(f.wf[D-60]) - 1
				flat = r <= 0.05 && r >= -0.05
			}
			s := &f.segs
			s[segDH] = f.hasPct && (f.pct >= 80 || s[segDH] && f.pct >= 75)
			s[segHG] = hasVel && !s[segDH] && flat && (vel >= 0.20 || s[segHG] && vel >= 0.15)
			s[segSLA] = claims >= 1
			s[segRE] = exp >= 4 || s[segRE] && exp >= 2
			s[segMS] = postals >= 2
			s[segCR] = (s[segSLA] || s[segDH]) && s[segRE]
			for k := range s {
				f.ever[k] = f.ever[k] || s[k]
			}
		}
	}
	err := Generate(cfg, func(r *Record) error {
		if r.Bad != "" {
			return nil
		}
		e := &r.Event
		d := int((e.EventTime - startMs) / dayMs)
		if d != day {
			if day >= 0 {
				eval(day)
			}
			day = d
		}
		streamTime = max(streamTime, e.EventTime)
		f := firms[e.SIREN]
		switch e.Kind {
		case engine.KindUsage:
			f.bytes[d] += e.BytesUp + e.BytesDown
			if f.firstDay < 0 {
				f.firstDay = d
			}
			if e.HasActiveSIMs {
				f.sims[d] = max(f.sims[d], e.ActiveSIMs)
			}
			f.postals[e.PostalCode] = d
		case engine.KindProfile:
			f.curWF = -1
			if e.HasWorkforce {
				f.curWF = e.Workforce
			}
			f.plan = e.Plan
		case engine.KindOutage:
			f.postals[e.PostalCode] = d
			if e.Status == engine.OutageStarted {
				f.outages[e.OutageID] = &refOutage{start: e.EventTime}
			} else {
				f.outages[e.OutageID].end = e.EventTime
			}
		case engine.KindClaim:
			if e.HasOutageID {
				f.claimDays = append(f.claimDays, d)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eval(day)
	rep := &segmentReport{n: cfg.SIRENs, offers: map[string]int{}}
	for _, f := range order {
		a := cfg.ArchetypeOf(f.idx)
		rep.arch[a]++
		for k := range numSegs {
			if f.segs[k] {
				rep.end[k]++
				rep.byArch[a][k]++
			}
			if f.ever[k] {
				rep.ever[k]++
			}
		}
		if f.segs[segDH] && f.plan == PlanBasicSIM {
			rep.offers["SD_WAN_UPSELL"]++
		}
		if f.segs[segSLA] && f.curWF > 0 && f.curWF < 50 {
			rep.offers["LOGICAL_VIP_BACKUP"]++
		}
	}
	return rep
}

func (r *segmentReport) String() string {
	var b strings.Builder
	pc := func(n, of int) string { return fmt.Sprintf("%5.1f%%", 100*float64(n)/float64(max(of, 1))) }
	fmt.Fprintf(&b, "%-17s %7s %7s\n", "segment", "end", "ever")
	for k := range numSegs {
		fmt.Fprintf(&b, "%-17s %7s %7s\n", segNames[k], pc(r.end[k], r.n), pc(r.ever[k], r.n))
	}
	for _, o := range []string{"SD_WAN_UPSELL", "LOGICAL_VIP_BACKUP"} {
		fmt.Fprintf(&b, "%-17s %7s\n", o, pc(r.offers[o], r.n))
	}
	fmt.Fprintf(&b, "\nby archetype (share of the archetype in each segment at the end)\n%-15s %6s", "archetype", "n")
	for k := range numSegs {
		fmt.Fprintf(&b, " %8.8s", segNames[k])
	}
	b.WriteByte('\n')
	for a := Archetype(0); a < NumArchetypes; a++ {
		fmt.Fprintf(&b, "%-15s %6d", a, r.arch[a])
		for k := range numSegs {
			fmt.Fprintf(&b, " %8s", pc(r.byArch[a][k], r.arch[a]))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestSegmentShares(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, cfg := range []Config{{SIRENs: 2000, Days: 120}, {SIRENs: 3000, Days: 90, Seed: 7}} {
		rep := simulateSegments(t, cfg, 6)
		t.Logf("sirens=%d days=%d seed=%d\n%s", cfg.SIRENs, cfg.Days, max(cfg.Seed, 1), rep)
		for k := range numSegs {
			if share := float64(rep.end[k]) / float64(rep.n); share < 0.02 {
				t.Errorf("%s holds %.1f %% of SIRENs at the end, want ≥ 2 %%", segNames[k], 100*share)
			}
		}
		for o, n := range rep.offers {
			if n == 0 {
				t.Errorf("offer %s never given", o)
			}
		}
	}
}
