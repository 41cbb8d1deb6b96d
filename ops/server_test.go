package ops_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/ops"
)

// serve runs an ops server for an unstarted processor on 127.0.0.1:0.
func serve(t *testing.T, token string, m *ops.Metrics) string {
	t.Helper()
	if m == nil {
		m = ops.NewMetrics(ops.MetricsConfig{})
	}
	srv, err := ops.New(ops.Config{Addr: "127.0.0.1:0", Token: token, Processor: unstarted(t), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	runServer(t, srv, nil)
	return "http://" + srv.Addr()
}

func TestBindAddrIsLoopbackUnlessExplicit(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		want   string
	}{
		{":8080", false, "127.0.0.1:8080"},
		{":8080", true, "0.0.0.0:8080"},
		{"0.0.0.0:8080", false, "0.0.0.0:8080"},
		{"127.0.0.1:9", true, "127.0.0.1:9"},
		{"[::1]:8080", false, "[::1]:8080"},
		{"10.1.2.3:80", false, "10.1.2.3:80"},
	} {
		got, err := ops.BindAddr(tc.addr, tc.public)
		if err != nil || got != tc.want {
			t.Errorf("BindAddr(%q, public=%v) = %q, %v; want %q", tc.addr, tc.public, got, err, tc.want)
		}
	}
	if _, err := ops.BindAddr("8080", false); err == nil {
		t.Error("BindAddr(\"8080\") accepted an address without a colon")
	}
	// The real listener of a host-less address is on loopback.
	srv, err := ops.New(ops.Config{Addr: ":0", Processor: unstarted(t), Metrics: ops.NewMetrics(ops.MetricsConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Run(ctx); err != nil { // closes the listener
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(srv.Addr())
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("\":0\" bound %s, want a loopback address", srv.Addr())
	}
}

func TestTokenGuardsEverythingButHealth(t *testing.T) {
	const token = "s3cret-token"
	base := serve(t, token, nil)
	for _, path := range []string{"/metrics", "/v1/segments", "/v1/timeline", "/v1/changes", "/v1/partitions", "/v1/sirens/" + gen.SIREN(1), "/", "/app.js"} {
		if status, _ := get(t, base+path, ""); status != http.StatusUnauthorized {
			t.Errorf("%s without token: HTTP %d, want 401", path, status)
		}
		if status, _ := get(t, base+path, "wrong"); status != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: HTTP %d, want 401", path, status)
		}
		if status, _ := get(t, base+path, token+"x"); status != http.StatusUnauthorized {
			t.Errorf("%s with a longer token: HTTP %d, want 401", path, status)
		}
		status, body := get(t, base+path, token)
		if status == http.StatusUnauthorized || status >= 500 && status != http.StatusServiceUnavailable {
			t.Errorf("%s with the token: HTTP %d: %.200s", path, status, body)
		}
	}
	// Browsers: Basic auth with the token as password.
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/segments", nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("anyone:"+token)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("basic auth with the token: HTTP %d", resp.StatusCode)
	}
	// The 401 tells a browser how to authenticate.
	resp, err = client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := strings.Join(resp.Header.Values("WWW-Authenticate"), " | "); !strings.Contains(got, "Basic") || !strings.Contains(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want Bearer and Basic challenges", got)
	}
	// Health endpoints are open: orchestrators probe them without secrets.
	if status, _ := get(t, base+"/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz without token: HTTP %d", status)
	}
	if status, _ := get(t, base+"/readyz", ""); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz of an unstarted processor without token: HTTP %d, want 503", status)
	}
}

func TestOnlyGETWithoutBody(t *testing.T) {
	base := serve(t, "", nil)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		for _, path := range []string{"/metrics", "/v1/segments", "/healthz", "/nope"} {
			req, _ := http.NewRequest(method, base+path, strings.NewReader("x=1"))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: HTTP %d Allow %q, want 405 with Allow: GET, HEAD", method, path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/segments", strings.NewReader(`{"a":1}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET with a body: HTTP %d, want 400", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodHead, base+"/healthz", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /healthz: HTTP %d", resp.StatusCode)
	}
}

// rawGET sends a request line as is (no client-side cleaning or escaping)
// and returns the status, or 0 when the server closed without answering.
func rawGET(t *testing.T, addr, target string, extra string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", target, extra); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMalformedPathsNeverPanic(t *testing.T) {
	base := serve(t, "", nil)
	addr := strings.TrimPrefix(base, "http://")
	long := strings.Repeat("9", 100_000)
	for _, tc := range []struct {
		target string
		want   []int // acceptable statuses
	}{
		{"/v1/sirens/%00", []int{400}},
		{"/v1/sirens/12345678%00", []int{400}},
		{"/v1/sirens/..%2F..%2Fetc%2Fpasswd", []int{400}},
		{"/v1/sirens/../../etc/passwd", []int{301, 307, 400, 404}},
		{"/../../../etc/passwd", []int{301, 307, 400, 404}},
		{"/v1/sirens/%ZZ", []int{400}},
		{"/v1/sirens/%ff%fe%fd", []int{400}},
		{"/v1/sirens/" + "%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7%D9%A8%D9%A9%D9%A0%D9%A1", []int{400}}, // Arabic-Indic digits
		{"/v1/sirens/٣٤٥٦٧٨٩٠١", []int{400}},
		{"/v1/sirens/１２３４５６７８２", []int{400}}, // full-width digits
		{"/v1/sirens/-12345678", []int{400}},
		{"/v1/sirens/1e8", []int{400}},
		{"/v1/sirens/" + strings.Repeat("9", 5000), []int{400}},
		{"/v1/sirens/" + long, []int{400, 414, 431, 0}},
		{"/v1/sirens/", []int{404}},
		{"/v1/sirens/" + gen.SIREN(7) + "/extra", []int{404}},
		{"/v1/sirens/" + gen.SIREN(7) + "?x=%00", []int{503}}, // valid SIREN: not ready yet
		{"/v1/segments?%00=%ff&a=" + strings.Repeat("b", 2000), []int{200}},
		{"//v1//segments", []int{301, 307, 404}},
		{"/app.js%00", []int{400, 404}},
		{"/%2e%2e/%2e%2e/etc/passwd", []int{301, 307, 400, 404}},
		{"*", []int{400, 404, 405}},
		{"http://evil.example/v1/segments", []int{200, 400}},
	} {
		got := rawGET(t, addr, tc.target, "")
		ok := false
		for _, w := range tc.want {
			ok = ok || got == w
		}
		if !ok {
			t.Errorf("GET %.80q: HTTP %d, want one of %v", tc.target, got, tc.want)
		}
	}
	// Oversized headers are refused (MaxHeaderBytes), not buffered.
	if got := rawGET(t, addr, "/healthz", "X-Big: "+strings.Repeat("a", 64<<10)+"\r\n"); got != http.StatusRequestHeaderFieldsTooLarge && got != 0 {
		t.Errorf("64 KiB header: HTTP %d, want 431", got)
	}
	if status, _ := get(t, base+"/healthz", ""); status != http.StatusOK {
		t.Fatalf("server unhealthy after malformed requests: HTTP %d", status)
	}
}

func TestInvalidSIRENIs400WithJSON(t *testing.T) {
	base := serve(t, "", nil)
	for _, s := range []string{"123456789", "12345678X", "abc", "1234567890"} {
		if engine.ValidSIREN(s) {
			continue
		}
		var body map[string]any
		if status := getJSON(t, base+"/v1/sirens/"+s, &body); status != http.StatusBadRequest || body["error"] == nil {
			t.Errorf("%s: HTTP %d %v, want 400 with an error", s, status, body)
		}
	}
}

// TestTimelineKeepsWholeHistoryBounded: a year of hourly changes stays
// within the point budget and still spans the whole stream time.
func TestTimelineKeepsWholeHistoryBounded(t *testing.T) {
	m := ops.NewMetrics(ops.MetricsConfig{NoRuntime: true})
	m.Owned([]int32{0})
	m.Loaded(0, map[string]int64{})
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	const hours = 24 * 365
	for h := int64(0); h < hours; h++ {
		d := engine.Decision{SIREN: gen.SIREN(int(h % 50)), Seq: h + 1, EventTime: start + h*3600_000}
		if h%2 == 0 {
			d.Segments, d.Added = engine.MultiSite, engine.MultiSite
		} else {
			d.Previous, d.Removed = engine.MultiSite, engine.MultiSite
		}
		m.SegmentChange(0, &d)
	}
	base := serve(t, "", m)
	var tl ops.Timeline
	if status := getJSON(t, base+"/v1/timeline", &tl); status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	if n := len(tl.Points); n == 0 || n > 720 {
		t.Fatalf("%d timeline points, want 1..720", n)
	}
	first, last := tl.Points[0].T, tl.Points[len(tl.Points)-1].T
	if first-start > tl.BucketMs || last != start+(hours-1)*3600_000 {
		t.Fatalf("timeline spans %d..%d (bucket %d ms), want %d..%d", first, last, tl.BucketMs, start, start+(hours-1)*3600_000)
	}
	for i := 1; i < len(tl.Points); i++ {
		if tl.Points[i].T <= tl.Points[i-1].T {
			t.Fatalf("timeline not increasing at %d", i)
		}
	}
	var changes struct{ Changes []json.RawMessage }
	getJSON(t, base+"/v1/changes", &changes)
	if len(changes.Changes) != 100 {
		t.Fatalf("%d recent changes kept, want 100", len(changes.Changes))
	}
}
