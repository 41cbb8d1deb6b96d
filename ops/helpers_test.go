package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/ops"
	"github.com/sirenstream/sirenstream/processor"
)

// instance is a processor with its ops server, on a kfake broker.
type instance struct {
	H       *testkit.Harness
	Metrics *ops.Metrics
	URL     string // http://127.0.0.1:port
	// StopHTTP stops the ops server (the processor stays in the group);
	// cleanup calls it too.
	StopHTTP func()
	// Stop stops the server, then the processor (closing its store); cleanup
	// calls it too.
	Stop func()
}

// startInstance runs a processor of group in dir with an ops server on an
// ephemeral loopback port that advertises its URL to the group. Cleanup
// stops the server, then the processor.
func startInstance(t *testing.T, brokers []string, group, dir, token string) *instance {
	t.Helper()
	return startInstanceWith(t, brokers, group, dir, token, nil)
}

// startInstanceWith is startInstance with the ops server's configuration
// adjusted by opt (when not nil).
func startInstanceWith(t *testing.T, brokers []string, group, dir, token string, opt func(*ops.Config)) *instance {
	t.Helper()
	cfg := testkit.Config(t, brokers, dir)
	cfg.Group = group
	m := ops.NewMetrics(ops.MetricsConfig{StateSize: cfg.Store.Size})
	cfg.Metrics = m
	ln, err := ops.Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	url := ops.AdvertiseURL(ln.Addr())
	cfg.HTTPAdvertise = url
	h := testkit.Start(t, cfg)
	oc := ops.Config{Listener: ln, Token: token, Processor: h.P, Metrics: m, OwnerCacheTTL: 200 * time.Millisecond, TailInterval: 100 * time.Millisecond}
	if opt != nil {
		opt(&oc)
	}
	srv, err := ops.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stopProc := func() { once.Do(func() { h.Stop(t) }) }
	stop := runServer(t, srv, stopProc)
	return &instance{H: h, Metrics: m, URL: url, StopHTTP: stop, Stop: func() { stop(); stopProc() }}
}

// runServer runs srv until the end of the test; cleanup stops it, checks
// that it stopped without error, then calls after (if not nil). The
// returned func stops the server earlier (idempotent).
func runServer(t *testing.T, srv *ops.Server, after func()) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("ops server: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if after != nil {
			after()
		}
	})
	return stop
}

// unstarted returns a processor that never runs (not ready, no partitions):
// enough for the HTTP policy tests, which must not depend on Kafka.
func unstarted(t *testing.T) *processor.Processor {
	t.Helper()
	cfg := testkit.Config(t, []string{"127.0.0.1:1"}, t.TempDir())
	t.Cleanup(func() { _ = cfg.Store.Close() })
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get fetches url with an optional bearer token.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, b
}

// getJSON fetches url and decodes its JSON body into v; it returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	status, b := get(t, url, "")
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: HTTP %d, body is not JSON (%v): %.300s", url, status, err, b)
	}
	return status
}

// sample is one Prometheus sample of a text exposition.
type sample = testkit.Sample

// scrape fetches /metrics and parses the text format.
func scrape(t *testing.T, base string) []sample {
	t.Helper()
	status, b := get(t, base+"/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d: %.300s", status, b)
	}
	out, err := testkit.ParseMetrics(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sum adds the samples of name whose labels include every pair of match.
func sum(ss []sample, name string, match map[string]string) float64 {
	return testkit.SumSamples(ss, name, match)
}

func has(ss []sample, name string) bool {
	for _, s := range ss {
		if s.Name == name {
			return true
		}
	}
	return false
}

// poll calls cond until it returns nil or the deadline passes; then it fails
// with cond's last error.
func poll(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeout after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

var errNotYet = errors.New("not yet")
