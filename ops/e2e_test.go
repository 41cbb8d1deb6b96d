package ops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/ops"
	"github.com/sirenstream/sirenstream/processor"
)

const genSIRENs = 80

// workload is generated data plus injected bad records with known
// dead-letter reasons.
func workload(t *testing.T, sirens, days int) (msgs []kafka.Message, bad map[string]int) {
	t.Helper()
	msgs = testkit.Generated(t, gen.Config{SIRENs: sirens, Days: days, Seed: 11})
	good := gen.SIREN(3)
	bogus := testkit.Encode(t, engine.Event{Kind: engine.KindUsage, EventID: "bad-siren", SIREN: "12345678X",
		EventTime: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).UnixMilli(), BytesUp: 1})
	msgs = append(msgs,
		kafka.Message{Topic: "usage", Key: []byte(good), Value: []byte{0, 0, 0}},
		kafka.Message{Topic: "claims", Key: []byte(good), Value: []byte{0}},
		kafka.Message{Topic: "outages", Key: []byte(good), Value: []byte{0, 0, 0, 0, 77, 2, 4}},
		kafka.Message{Topic: "usage", Key: []byte("12345678X"), Value: bogus},
		kafka.Message{Topic: "usage", Key: []byte("12345678X"), Value: bogus},
		kafka.Message{Topic: "usage", Key: []byte("12345678X"), Value: bogus},
	)
	return msgs, map[string]int{"truncated": 2, "unknown_schema": 1, "invalid_siren": 3}
}

// TestLiveInstance runs one processor with its ops server over generated
// data and checks every surface against the processor's own accounting and
// its output topic: /readyz, /metrics scraped during the run, the query API,
// /v1/segments and the live page in headless Chromium.
func TestLiveInstance(t *testing.T) {
	const parts = 3
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs, bad := workload(t, genSIRENs, 75)
	testkit.Produce(t, brokers, msgs...)

	in := startInstance(t, brokers, "ops-live", t.TempDir(), "")
	total := float64(len(msgs))

	// Scrape while the processor works: counters only move forward, and the
	// run ends with every produced record consumed.
	var prev float64
	scrapes := 0
	poll(t, 60*time.Second, func() error {
		ss := scrape(t, in.URL)
		scrapes++
		c := sum(ss, "sirenstream_records_consumed_total", nil)
		if c < prev {
			t.Fatalf("records_consumed_total went backwards: %v after %v", c, prev)
		}
		prev = c
		if c < total {
			return fmt.Errorf("consumed %v of %v", c, total)
		}
		for _, tp := range in.H.P.Progress() {
			if !tp.CaughtUp {
				return fmt.Errorf("partition %d not caught up", tp.Partition)
			}
		}
		if lag := sum(ss, "sirenstream_consumer_lag_records", nil); lag != 0 {
			return fmt.Errorf("lag %v", lag)
		}
		return nil
	})
	t.Logf("%d scrapes until %v records were consumed", scrapes, total)

	t.Run("readyz", func(t *testing.T) {
		var body struct {
			Ready      bool
			Partitions []int32
		}
		if status := getJSON(t, in.URL+"/readyz", &body); status != http.StatusOK || !body.Ready || len(body.Partitions) != parts {
			t.Fatalf("/readyz: HTTP %d %+v", status, body)
		}
	})

	out := testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes"))
	latest := testkit.Latest(out)
	if len(latest) == 0 {
		t.Fatal("no segment changes: the workload is too small to test anything")
	}
	wantCounts := map[string]int64{}
	for _, name := range engine.AllSegments.Names() {
		wantCounts[name] = 0
	}
	for _, c := range latest {
		for _, s := range c.Segments {
			wantCounts[s]++
		}
	}

	t.Run("metrics", func(t *testing.T) {
		ss := scrape(t, in.URL)
		prog := in.H.P.Progress()
		if len(prog) != parts {
			t.Fatalf("progress of %d partitions, want %d", len(prog), parts)
		}
		for _, tp := range prog {
			p := map[string]string{"partition": strconv.Itoa(int(tp.Partition))}
			consumed := sum(ss, "sirenstream_records_consumed_total", p)
			processed := sum(ss, "sirenstream_records_processed_total", p)
			dead := sum(ss, "sirenstream_records_dead_lettered_total", p)
			if consumed != float64(tp.Consumed) || processed != float64(tp.Processed) || dead != float64(tp.DeadLettered) {
				t.Errorf("partition %d: metrics consumed/processed/dead %v/%v/%v, processor says %d/%d/%d",
					tp.Partition, consumed, processed, dead, tp.Consumed, tp.Processed, tp.DeadLettered)
			}
			if consumed != processed+dead {
				t.Errorf("partition %d: consumed %v != processed %v + dead-lettered %v", tp.Partition, consumed, processed, dead)
			}
			if st := sum(ss, "sirenstream_stream_time_seconds", p); st != float64(tp.StreamTime)/1000 || st == 0 {
				t.Errorf("partition %d: stream_time_seconds %v, processor says %d ms", tp.Partition, st, tp.StreamTime)
			}
		}
		if c := sum(ss, "sirenstream_records_consumed_total", nil); c != total {
			t.Errorf("records_consumed_total %v, produced %v", c, total)
		}
		for reason, n := range bad {
			if got := sum(ss, "sirenstream_records_dead_lettered_total", map[string]string{"reason": reason}); got != float64(n) {
				t.Errorf("dead-lettered with reason %s: %v, injected %d", reason, got, n)
			}
		}
		if got := sum(ss, "sirenstream_records_dead_lettered_total", map[string]string{"reason": "invalid_siren", "topic": "usage"}); got != 3 {
			t.Errorf("invalid_siren on usage: %v, want 3", got)
		}
		// Transitions: entered - left = SIRENs in the segment now (fresh state).
		if n := sum(ss, "sirenstream_segment_transitions_total", nil); n == 0 {
			t.Error("no segment transitions counted")
		}
		if got := sum(ss, "sirenstream_segment_changes_total", nil); got != float64(len(out)) {
			t.Errorf("segment_changes_total %v, %d events on the output topic", got, len(out))
		}
		for name, want := range wantCounts {
			seg := map[string]string{"segment": name}
			entered := sum(ss, "sirenstream_segment_transitions_total", map[string]string{"segment": name, "direction": "entered"})
			left := sum(ss, "sirenstream_segment_transitions_total", map[string]string{"segment": name, "direction": "left"})
			if entered-left != float64(want) || sum(ss, "sirenstream_segment_sirens", seg) != float64(want) {
				t.Errorf("%s: entered %v - left %v, segment_sirens %v; the output topic says %d SIRENs",
					name, entered, left, sum(ss, "sirenstream_segment_sirens", seg), want)
			}
		}
		if got := sum(ss, "sirenstream_owned_partitions", nil); got != parts {
			t.Errorf("owned_partitions %v, want %d", got, parts)
		}
		if sum(ss, "sirenstream_commit_duration_seconds_count", nil) == 0 || sum(ss, "sirenstream_committed_states_total", nil) == 0 {
			t.Error("no commit observed")
		}
		for _, name := range []string{"sirenstream_state_size_bytes", "go_goroutines", "process_resident_memory_bytes"} {
			if !has(ss, name) {
				t.Errorf("%s missing from /metrics", name)
			}
		}
	})

	t.Run("segments", func(t *testing.T) {
		var got ops.SegmentCounts
		if status := getJSON(t, in.URL+"/v1/segments", &got); status != http.StatusOK {
			t.Fatalf("HTTP %d", status)
		}
		if !got.Complete || len(got.Partitions) != parts || !reflect.DeepEqual(got.Segments, wantCounts) {
			t.Fatalf("/v1/segments = %+v; the output topic says %v", got, wantCounts)
		}
	})

	t.Run("query owned", func(t *testing.T) {
		// Every SIREN's view agrees with its latest segment change.
		sirens := make([]string, 0, len(latest))
		for s := range latest {
			sirens = append(sirens, s)
		}
		sort.Strings(sirens)
		for _, s := range sirens[:min(len(sirens), 15)] {
			var v ops.SIRENView
			if status := getJSON(t, in.URL+"/v1/sirens/"+s, &v); status != http.StatusOK {
				t.Fatalf("%s: HTTP %d", s, status)
			}
			c := latest[s]
			if v.SIREN != s || v.Seq != c.Seq || !reflect.DeepEqual(v.Segments, c.Segments) || v.RulesVersion != c.RulesVersion ||
				v.ControlGroup != c.ControlGroup || v.Partition != processor.PartitionOf(s, parts) || v.AsOf == "" {
				t.Errorf("%s: view %+v disagrees with its latest change seq %d %v", s, v, c.Seq, c.Segments)
			}
		}
		// Nulls are JSON nulls, as in the Avro contract.
		_, body := get(t, in.URL+"/v1/sirens/"+sirens[0], "")
		for _, field := range []string{`"traffic_velocity"`, `"intensity_percentile"`, `"workforce"`, `"offers"`, `"reasons"`, `"seq"`, `"partition"`, `"control_group"`, `"rules_version"`} {
			if !bytes.Contains(body, []byte(field)) {
				t.Errorf("view lacks %s: %s", field, body)
			}
		}
	})

	t.Run("query unknown", func(t *testing.T) {
		unknown := gen.SIREN(genSIRENs + 1000)
		var body map[string]any
		if status := getJSON(t, in.URL+"/v1/sirens/"+unknown, &body); status != http.StatusNotFound ||
			!strings.Contains(fmt.Sprint(body["error"]), "unknown SIREN") || body["siren"] != unknown {
			t.Fatalf("unknown SIREN: HTTP %d %v, want 404 naming it", status, body)
		}
	})

	t.Run("browser page", func(t *testing.T) {
		var siren string
		for _, c := range out {
			if len(c.Segments) > 1 {
				siren = c.SIREN
			}
		}
		if siren == "" {
			siren = out[0].SIREN
		}
		// Without /v1/uplift (404) the uplift panel is hidden.
		browserPage(t, in.URL+"/#"+siren, siren, "", []pageCheck{{"uplift hidden", `id="uplift-card" hidden`, 1}})
		// With it, its rows are shown: a front that adds /v1/uplift.
		browserPage(t, withUplift(t, in.URL)+"/#"+siren, siren, "screenshot.png", []pageCheck{
			{"uplift rows", `<tr class="upliftrow">`, 2},
			{"uplift shown", `id="uplift-card" hidden`, -1},
		})
	})
}

// upliftRows are /v1/uplift rows with the fields of spec §8 (uplift), as
// another part of the product serves them.
const upliftRows = `{"rows": [
 {"day": "2026-03-16", "rules_version": "default-1", "holdout_id": "default", "offer": "GOLDEN_HOUR_REPAIR",
  "treatment": {"eligible": 412, "converted": 61, "churned": 9, "revenue_cents": 1834000},
  "control": {"eligible": 22, "converted": 2, "churned": 2, "revenue_cents": 51000},
  "conversion_lift": 0.0572, "conversion_lift_low": 0.0121, "conversion_lift_high": 0.1023, "relative_lift": 0.63,
  "churn_lift": -0.069, "churn_lift_low": -0.141, "churn_lift_high": 0.003, "control_share": 0.051},
 {"day": "2026-03-16", "rules_version": "default-1", "holdout_id": "default", "offer": "SD_WAN_UPSELL",
  "treatment": {"eligible": 130, "converted": 14, "churned": 1, "revenue_cents": 702000},
  "control": {"eligible": 7, "converted": 0, "churned": 0, "revenue_cents": 0},
  "conversion_lift": 0.1077, "conversion_lift_low": 0.0545, "conversion_lift_high": 0.1609, "relative_lift": null,
  "churn_lift": 0.0077, "churn_lift_low": -0.0073, "churn_lift_high": 0.0227, "control_share": 0.051}
]}`

// withUplift serves base with a /v1/uplift answering upliftRows.
func withUplift(t *testing.T, base string) string {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/uplift", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(upliftRows))
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// chromium finds the headless browser: skipped locally without one, a
// failure in CI (CI=true), where .ci/run installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: CI must install it (apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium); the browser test runs in CI")
	return ""
}

func runChromium(t *testing.T, bin, window string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=" + window, "--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// pageCheck: the rendered DOM has at least min matches of re (min < 0:
// none at all).
type pageCheck struct {
	what string
	re   string
	min  int
}

// browserPage loads the page (with a SIREN lookup in the fragment), checks
// what its JavaScript rendered (the common checks and extra), and takes a
// screenshot; with UPDATE_SCREENSHOT=1 it is saved as testdata/<shot> (shot
// not empty), and with SCREENSHOT_DIR set it is copied there.
func browserPage(t *testing.T, url, siren, shot string, extra []pageCheck) {
	browserPageChecks(t, url, shot, append(commonChecks(siren), extra...))
}

// commonChecks are the page checks of a live instance that processed the
// workload, with siren looked up.
func commonChecks(siren string) []pageCheck {
	return []pageCheck{
		{"data loaded", `<body[^>]*data-loaded="1"`, 1},
		{"ready pill", `<span id="ready" class="pill ok">ready</span>`, 1},
		{"segment count rows", `class="countrow"`, 6},
		{"timeline series", `<path [^>]*class="series"`, 6},
		{"lag rows", `class="lagrow"`, 3},
		{"recent changes", `<tr class="change">`, 5},
		{"reasons", `threshold`, 3},
		{"lookup result", `class="resulthead"><b class="mono">` + siren + `</b>`, 1},
		{"lookup metrics", `traffic_30d_bytes`, 1},
		{"throughput", `class="kpi"`, 4},
		{"dead letters by reason", `class="dlqrow"`, 3},
		{"lag per input", `class="inputrow"`, 4},
		{"group members", `class="memberrow`, 1},
		{"this instance among the members", `class="memberrow self"`, 1},
	}
}

// browserPageChecks is browserPage with the checks given.
func browserPageChecks(t *testing.T, url, shot string, checks []pageCheck) {
	t.Helper()
	bin := chromium(t)
	dom := string(runChromium(t, bin, "1280,900", "--dump-dom", url))
	for _, c := range checks {
		n := len(regexp.MustCompile(c.re).FindAllStringIndex(dom, -1))
		if c.min < 0 && n > 0 || c.min >= 0 && n < c.min {
			t.Errorf("page: %s: %d matches of %q, want %s", c.what, n, c.re, map[bool]string{true: "none", false: fmt.Sprint("≥ ", c.min)}[c.min < 0])
		}
	}
	// The chart's axes repeat no label.
	for _, axis := range []string{`class="axis xlabel">([^<]+)<`, `text-anchor="end" class="axis">([^<]+)<`} {
		seen := map[string]bool{}
		ms := regexp.MustCompile(axis).FindAllStringSubmatch(dom, -1)
		if len(ms) < 1 {
			t.Errorf("page: no axis labels of %q", axis)
		}
		for _, m := range ms {
			if seen[m[1]] {
				t.Errorf("page: axis label %q repeated (%q)", m[1], axis)
			}
			seen[m[1]] = true
		}
	}
	// Recent changes: newest event time first.
	times := regexp.MustCompile(`<tr class="change"><td class="mono">([^<]+)</td>`).FindAllStringSubmatch(dom, -1)
	for i := 1; i < len(times); i++ {
		if times[i][1] > times[i-1][1] {
			t.Errorf("page: recent change at %s listed after one at %s", times[i][1], times[i-1][1])
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", tail(dom, 6000))
	}
	file := filepath.Join(t.TempDir(), "screenshot.png")
	// Tall enough to show every panel, the recent changes included.
	runChromium(t, bin, "1280,1900", "--hide-scrollbars", "--screenshot="+file, url)
	png, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 20_000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot is %d bytes, not a rendered page", len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", file, len(png))
	name := shot
	if name == "" {
		name = strings.ReplaceAll(t.Name(), "/", "_") + ".png"
	}
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" && shot != "" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", shot), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestForeignSIRENNamesOwner: two instances of one group split the
// partitions; asking one for a SIREN of the other's partition answers 421
// naming the owner (member, client, host, advertised URL) when proxying is
// off (Config.Redirect, or ?redirect=1 per request), and the URL works.
func TestForeignSIRENNamesOwner(t *testing.T) {
	const parts = 4
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs, _ := workload(t, 40, 40)
	testkit.Produce(t, brokers, msgs...)

	a := startInstanceWith(t, brokers, "ops-pair", t.TempDir(), "", func(c *ops.Config) { c.Redirect = true })
	b := startInstance(t, brokers, "ops-pair", t.TempDir(), "")
	waitPair(t, parts, a, b)
	ownedByB := map[int32]bool{}
	for _, p := range b.H.P.Owned() {
		ownedByB[p] = true
	}
	var siren string
	for i := 0; i < 40 && siren == ""; i++ {
		if s := gen.SIREN(i); ownedByB[processor.PartitionOf(s, parts)] {
			siren = s
		}
	}
	if siren == "" {
		t.Fatal("no generated SIREN on b's partitions")
	}
	part := processor.PartitionOf(siren, parts)

	var mis ops.Misdirected
	poll(t, 20*time.Second, func() error {
		mis = ops.Misdirected{}
		status := getJSON(t, a.URL+"/v1/sirens/"+siren, &mis)
		if status != http.StatusMisdirectedRequest {
			return fmt.Errorf("HTTP %d, want 421", status)
		}
		if mis.Owner == nil {
			return fmt.Errorf("421 names no owner yet: %+v", mis)
		}
		return nil
	})
	if mis.Partition != part || mis.SIREN != siren || mis.Owner.HTTP != b.URL ||
		mis.OwnerURL != b.URL+"/v1/sirens/"+siren || mis.Owner.MemberID == "" || mis.Owner.ClientID == "" || mis.Owner.Host == "" {
		t.Fatalf("421 body %+v (owner %+v); want partition %d owned by %s", mis, *mis.Owner, part, b.URL)
	}
	found := false
	for _, p := range mis.Owner.Partitions {
		found = found || p == part
	}
	if !found {
		t.Errorf("owner's partitions %v lack %d", mis.Owner.Partitions, part)
	}
	var v ops.SIRENView
	if status := getJSON(t, mis.OwnerURL, &v); status != http.StatusOK || v.SIREN != siren || v.Partition != part {
		t.Fatalf("owner_url %s: HTTP %d %+v", mis.OwnerURL, status, v)
	}
	// And the other way round: b sends a's SIRENs to a.
	for i := 0; i < 40; i++ {
		s := gen.SIREN(i)
		if ownedByB[processor.PartitionOf(s, parts)] {
			continue
		}
		var m ops.Misdirected
		if status := getJSON(t, b.URL+"/v1/sirens/"+s+"?redirect=1", &m); status != http.StatusMisdirectedRequest || m.Owner == nil || m.Owner.HTTP != a.URL {
			t.Fatalf("b about %s: HTTP %d %+v, want 421 naming %s", s, status, m, a.URL)
		}
		break
	}
}

// waitPair waits until instances a and b split the parts partitions and
// have caught up with their inputs.
func waitPair(t *testing.T, parts int, a, b *instance) {
	t.Helper()
	caughtUp := func(in *instance) error {
		if !in.H.P.Ready() {
			return errors.New("not ready")
		}
		owned := in.H.P.Owned()
		if len(owned) == 0 {
			return errors.New("owns no partition")
		}
		prog := map[int32]processor.TaskProgress{}
		for _, tp := range in.H.P.Progress() {
			prog[tp.Partition] = tp
		}
		for _, p := range owned {
			if tp, ok := prog[p]; !ok || !tp.CaughtUp || tp.Done {
				return fmt.Errorf("partition %d not caught up", p)
			}
		}
		return nil
	}
	poll(t, 60*time.Second, func() error {
		if err := caughtUp(a); err != nil {
			return fmt.Errorf("instance a: %w", err)
		}
		if err := caughtUp(b); err != nil {
			return fmt.Errorf("instance b: %w", err)
		}
		if n := len(a.H.P.Owned()) + len(b.H.P.Owned()); n != parts {
			return fmt.Errorf("%d partitions owned in all, want %d", n, parts)
		}
		return nil
	})
}
