package engine

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/scenarios/*.txt with the actual output")

// TestScenarios runs the data-driven rule scenarios of testdata/scenarios:
// blocks of "command key=value..." lines, "----", the expected output, and a
// blank line (etcd raft style). go test ./engine -run Scenarios -update
// rewrites the expectations. Days are relative to d0, SIRENs are names.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

type block struct {
	cmd, want string
	comments  []string
}

func readBlocks(t *testing.T, path string) []block {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var bs []block
	var cur *block
	inOut := false
	sc := bufio.NewScanner(fh)
	var comments []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && (strings.HasPrefix(line, "#") || strings.TrimSpace(line) == ""):
			comments = append(comments, line)
		case cur == nil:
			bs = append(bs, block{cmd: line, comments: comments})
			comments = nil
			cur = &bs[len(bs)-1]
		case !inOut && line == "----":
			inOut = true
		case inOut && line == "":
			cur, inOut = nil, false
		case inOut:
			cur.want += line + "\n"
		default:
			t.Fatalf("%s: unexpected line %q after %q", path, line, cur.cmd)
		}
	}
	return bs
}

func runScenario(t *testing.T, path string) {
	blocks := readBlocks(t, path)
	h := newHarness(t, nil)
	names := map[string]string{}
	siren := func(name string) string {
		if s, ok := names[name]; ok {
			return s
		}
		s := mkSIREN(500 + len(names))
		names[name] = s
		return s
	}
	var out strings.Builder
	for i := range blocks {
		b := &blocks[i]
		got := execScenarioCmd(t, h, siren, b.cmd)
		for k, v := range names {
			got = strings.ReplaceAll(got, v, k)
		}
		got = hidePopulation(got)
		if *update {
			b.want = got
		} else if got != b.want {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", path, b.cmd, got, b.want)
		}
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", b.cmd, b.want)
	}
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func execScenarioCmd(t *testing.T, h *harness, siren func(string) string, line string) string {
	f := strings.Fields(line)
	args := map[string]string{}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		args[k] = v
	}
	num := func(k string, def int64) int64 {
		v, ok := args[k]
		if !ok {
			return def
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%q: %s=%q", line, k, v)
		}
		return int64(x)
	}
	when := func() int64 { return at(d0+int32(num("day", 0)), int(num("h", 0))) }
	s := siren(args["s"])
	var evs []Event
	switch f[0] {
	case "usage":
		evs = append(evs, usageEv(s, when(), args["pc"], num("bytes", 0), int32(num("sims", -1))))
	case "daily":
		for d := num("from", 0); d <= num("to", 0); d++ {
			evs = append(evs, usageEv(s, at(d0+int32(d), int(num("h", 12))), args["pc"], num("bytes", 0), int32(num("sims", -1))))
		}
	case "start":
		evs = append(evs, outageStartEv(s, args["outage"], when(), args["pc"]))
	case "resolve":
		started := int64(-1)
		if v, ok := args["started"]; ok {
			d, hh, _ := strings.Cut(v, ":")
			di, _ := strconv.Atoi(d)
			hi, _ := strconv.Atoi(hh)
			started = at(d0+int32(di), hi)
		}
		evs = append(evs, outageResolvedEv(s, args["outage"], when(), started, args["pc"]))
	case "claim":
		evs = append(evs, claimEv(s, when(), num("amount", 0), args["outage"]))
	case "profile":
		evs = append(evs, profileEv(s, when(), int32(num("wf", -1)), args["plan"]))
	case "tick":
		evs = append(evs, profileEv(filler, when(), -1, ""))
	case "population":
		for i := 0; i < int(num("n", 0)); i++ {
			evs = append(evs, usageEv(siren(fmt.Sprintf("pop%03d", i)), when(), "P", int64(i)*1e9, 1))
		}
	case "view":
		return fmtView(h.view(s))
	default:
		t.Fatalf("unknown command %q", line)
	}
	var out strings.Builder
	for _, ev := range evs {
		if id, ok := args["id"]; ok {
			ev.EventID = id
		}
		h.out = nil
		if err := h.feed(ev); err != nil {
			fmt.Fprintf(&out, "error %s: %v\n", DLQReason(err), err)
		}
		for _, d := range h.out {
			out.WriteString(fmtDecision(d))
		}
	}
	h.out = nil
	if out.Len() == 0 {
		return "ok\n"
	}
	return out.String()
}

// hidePopulation drops the decisions of the "pop…" filler SIRENs (a
// decision is its header line and the indented lines after it).
func hidePopulation(s string) string {
	var b strings.Builder
	skip := false
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "  ") {
			skip = strings.HasPrefix(l, "decision pop")
		}
		if !skip {
			b.WriteString(l)
		}
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func fmtDay(ms int64) string {
	d := Day(ms)
	return fmt.Sprintf("day=%d h=%d", d-d0, (ms-int64(d)*DayMs)/3_600_000)
}

func fmtDecision(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "decision %s seq=%d %s trigger=%s segments=%v added=%v removed=%v\n", d.EventID, d.Seq, fmtDay(d.EventTime),
		d.Trigger, d.Segments.Names(), d.Added.Names(), d.Removed.Names())
	fmtTail(&b, d)
	if len(d.OffersAdded)+len(d.OffersRemoved) > 0 {
		fmt.Fprintf(&b, "  offers_added %v offers_removed %v\n", d.OffersAdded, d.OffersRemoved)
	}
	return b.String()
}

func fmtView(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "view seq=%d segments=%v\n", d.Seq, d.Segments.Names())
	fmtTail(&b, d)
	return b.String()
}

func fmtTail(b *strings.Builder, d Decision) {
	m := d.Metrics
	null := func(has bool, v float64) string {
		if !has {
			return "null"
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	wf := "null"
	if m.HasWorkforce {
		wf = strconv.Itoa(int(m.Workforce))
	}
	fmt.Fprintf(b, "  traffic_30d=%d prev_30d=%d velocity=%s intensity=%s basis=%q percentile=%s workforce=%s\n",
		m.Traffic30dBytes, m.TrafficPrev30dBytes, null(m.HasTrafficVelocity, m.TrafficVelocity),
		null(m.HasDigitalIntensity, m.DigitalIntensity), m.IntensityBasis, null(m.HasIntensityPercentile, m.IntensityPercentile), wf)
	fmt.Fprintf(b, "  outages_90d=%d open=%d exposure_h=%g max_h=%g golden_hour_breaches=%d claims_365d=%d amount=%d postal_codes=%d\n",
		m.Outages90d, m.OpenOutages, m.RecoveryExposureHours90d, m.MaxRecoveryHours90d, m.GoldenHourBreaches90d, m.Claims365d, m.ClaimAmount365dCents, m.DistinctPostalCodes90d)
	for _, r := range d.Reasons {
		fmt.Fprintf(b, "  reason %s %s=%g threshold=%g\n", r.Segment, r.Metric, r.Value, r.Threshold)
	}
	if len(d.Offers) > 0 {
		fmt.Fprintf(b, "  offers %v\n", d.Offers)
	}
}
