package schemas

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sirenstream/sirenstream/engine"
)

// Writer schemas of other producers.
const (
	// v2: active_sims dropped (reader default null), tenant added (ignored),
	// bytes_up written as int (promoted to long), fields reordered, another
	// namespace, event_time as a plain long.
	usageV2 = `{"type":"record","name":"UsageEvent","namespace":"com.telco","fields":[
		{"name":"siren","type":"string"},
		{"name":"event_id","type":"string"},
		{"name":"tenant","type":"string"},
		{"name":"site_id","type":"string"},
		{"name":"postal_code","type":"bytes"},
		{"name":"event_time","type":"long"},
		{"name":"bytes_up","type":"int"},
		{"name":"bytes_down","type":"long"}]}`
	// outage v2: a named enum referenced by name in another field's union,
	// started_at as a union of int/long, an extra field with a record type.
	outageV2 = `{"type":"record","name":"Outage","namespace":"sirenstream","fields":[
		{"name":"event_id","type":"string"},
		{"name":"outage_id","type":"string"},
		{"name":"siren","type":"string"},
		{"name":"site_id","type":"string"},
		{"name":"postal_code","type":"string"},
		{"name":"status","type":{"type":"enum","name":"OutageStatus","symbols":["RESOLVED","STARTED"]}},
		{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"started_at","type":["null","long"],"default":null},
		{"name":"geo","type":{"type":"record","name":"Geo","fields":[{"name":"lat","type":"double"}]}},
		{"name":"prev_status","type":["null","OutageStatus"],"default":null}]}`
	// Not resolvable: bytes_up is a string.
	usageBadType = `{"type":"record","name":"Usage","namespace":"sirenstream","fields":[
		{"name":"event_id","type":"string"},{"name":"siren","type":"string"},{"name":"site_id","type":"string"},
		{"name":"postal_code","type":"string"},{"name":"event_time","type":"long"},
		{"name":"bytes_up","type":"string"},{"name":"bytes_down","type":"long"}]}`
	// Not resolvable: siren missing (no default in the reader).
	usageNoSIREN = `{"type":"record","name":"Usage","namespace":"sirenstream","fields":[
		{"name":"event_id","type":"string"},{"name":"site_id","type":"string"},
		{"name":"postal_code","type":"string"},{"name":"event_time","type":"long"},
		{"name":"bytes_up","type":"long"},{"name":"bytes_down","type":"long"}]}`
	// Not resolvable: an enum symbol the reader lacks.
	outageExtraSymbol = `{"type":"record","name":"Outage","namespace":"sirenstream","fields":[
		{"name":"event_id","type":"string"},{"name":"outage_id","type":"string"},{"name":"siren","type":"string"},
		{"name":"site_id","type":"string"},{"name":"postal_code","type":"string"},
		{"name":"status","type":{"type":"enum","name":"OutageStatus","symbols":["STARTED","RESOLVED","DEGRADED"]}},
		{"name":"event_time","type":"long"}]}`
	// Not resolvable: a nullable siren.
	usageNullableSIREN = `{"type":"record","name":"Usage","namespace":"sirenstream","fields":[
		{"name":"event_id","type":"string"},{"name":"siren","type":["null","string"]},{"name":"site_id","type":"string"},
		{"name":"postal_code","type":"string"},{"name":"event_time","type":"long"},
		{"name":"bytes_up","type":"long"},{"name":"bytes_down","type":"long"}]}`
)

const (
	idUsageV2 = 21 + iota
	idOutageV2
	idUsageBadType
	idUsageNoSIREN
	idOutageExtraSymbol
	idUsageNullableSIREN
	idUsageCopy // our usage schema, reformatted, under another id
)

// testRegistry is srfake behind a handler that counts requests, checks basic
// auth and can be switched to fail with HTTP 503.
type testRegistry struct {
	*srfake.Registry
	srv      *httptest.Server
	requests atomic.Int64
	down     atomic.Bool
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{Registry: srfake.NewRegistry()}
	seed := func(subject string, id int, schema string) {
		r.SeedSchema(subject, id, id, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	}
	for k := engine.Kind(0); k < numKinds; k++ {
		s, _ := Schema(IDForKind(k))
		seed(kindName(k)+"-value", IDForKind(k), s)
	}
	seed("usage-v2", idUsageV2, usageV2)
	seed("outage-v2", idOutageV2, outageV2)
	seed("usage-bad", idUsageBadType, usageBadType)
	seed("usage-nosiren", idUsageNoSIREN, usageNoSIREN)
	seed("outage-extra", idOutageExtraSymbol, outageExtraSymbol)
	seed("usage-nullable", idUsageNullableSIREN, usageNullableSIREN)
	s, _ := Schema(IDUsage)
	seed("usage-copy", idUsageCopy, strings.ReplaceAll(strings.ReplaceAll(s, "\n", ""), "  ", ""))

	h := r.Handler()
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if u, p, ok := req.BasicAuth(); !ok || u != "user" || p != "secret" {
			http.Error(w, `{"error_code":40101,"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if r.down.Load() {
			http.Error(w, `{"error_code":50001,"message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *testRegistry) codec(t *testing.T) *Codec {
	return newCodec(t, Config{RegistryURL: r.srv.URL, BasicAuthUser: "user", BasicAuthPassword: "secret"})
}

func encodeWith(t *testing.T, schema string, id int, native map[string]any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	return goavroFrame(t, c, id, native)
}

// Our own schema in the registry — under its fixed id or another id, however
// formatted — takes the hand-written fast path.
func TestRegistryOwnSchemaTakesFastPath(t *testing.T) {
	reg := newTestRegistry(t)
	c := reg.codec(t)
	ev := sampleEvents()["usage"]
	for _, id := range []int{IDUsage, idUsageCopy} {
		b := mustEncode(t, ev)
		b = append(AppendHeader(nil, id), b[headerLen:]...)
		var got engine.Event
		if err := c.Decode(context.Background(), engine.KindUsage, b, &got); err != nil {
			t.Fatalf("id %d: %v", id, err)
		}
		if got != ev {
			t.Fatalf("id %d: got %+v", id, got)
		}
		e, _ := c.lookup(context.Background(), id)
		if !e.fast {
			t.Errorf("id %d: not on the fast path", id)
		}
		allocs := testing.AllocsPerRun(100, func() { _ = c.Decode(context.Background(), engine.KindUsage, b, &got) })
		if allocs > 1 {
			t.Errorf("id %d: %.0f allocs per cached Decode", id, allocs)
		}
	}
	if n := reg.requests.Load(); n != 2 {
		t.Errorf("%d registry requests, want 2 (one per id, then cached)", n)
	}
}

func TestRegistryResolvesEvolvedWriterSchema(t *testing.T) {
	reg := newTestRegistry(t)
	c := reg.codec(t)
	ctx := context.Background()

	t.Run("usage without active_sims and with tenant", func(t *testing.T) {
		b := encodeWith(t, usageV2, idUsageV2, map[string]any{
			"siren": "732829320", "event_id": "u-9", "tenant": "acme", "site_id": "s1", "postal_code": []byte("75011"),
			"event_time": t0, "bytes_up": int32(-7), "bytes_down": int64(1 << 40),
		})
		var got engine.Event
		got.HasActiveSIMs, got.Plan = true, "stale" // Decode overwrites everything
		if err := c.Decode(ctx, engine.KindUsage, b, &got); err != nil {
			t.Fatal(err)
		}
		want := engine.Event{Kind: engine.KindUsage, EventID: "u-9", SIREN: "732829320", SiteID: "s1", PostalCode: "75011",
			EventTime: t0, BytesUp: -7, BytesDown: 1 << 40}
		if got != want {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		if engine.DLQReason(c.Decode(ctx, engine.KindUsage, append(b, 0), &got)) != "malformed" {
			t.Error("trailing byte accepted on the slow path")
		}
		if engine.DLQReason(c.Decode(ctx, engine.KindUsage, b[:len(b)-1], &got)) != "malformed" {
			t.Error("truncated body accepted on the slow path")
		}
	})
	t.Run("outage with reordered enum and extra fields", func(t *testing.T) {
		for _, tc := range []struct {
			status  string
			started any
			want    engine.Event
		}{
			{"RESOLVED", goavro.Union("long", t0), engine.Event{Kind: engine.KindOutage, EventID: "o", OutageID: "OUT", SIREN: "732829320",
				SiteID: "s", PostalCode: "p", Status: engine.OutageResolved, EventTime: t1, StartedAt: t0, HasStartedAt: true}},
			{"STARTED", nil, engine.Event{Kind: engine.KindOutage, EventID: "o", OutageID: "OUT", SIREN: "732829320",
				SiteID: "s", PostalCode: "p", Status: engine.OutageStarted, EventTime: t1}},
		} {
			b := encodeWith(t, outageV2, idOutageV2, map[string]any{
				"event_id": "o", "outage_id": "OUT", "siren": "732829320", "site_id": "s", "postal_code": "p",
				"status": tc.status, "event_time": ts(t1), "started_at": tc.started,
				"geo": map[string]any{"lat": 48.85}, "prev_status": goavro.Union("sirenstream.OutageStatus", "STARTED"),
			})
			var got engine.Event
			if err := c.Decode(ctx, engine.KindOutage, b, &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		}
	})
}

func TestRegistryRejectsWrongWriterSchema(t *testing.T) {
	reg := newTestRegistry(t)
	c := reg.codec(t)
	ctx := context.Background()
	usageNative := map[string]any{"event_id": "e", "siren": "732829320", "site_id": "s", "postal_code": "p",
		"event_time": t0, "bytes_up": "12", "bytes_down": int64(1)}
	cases := []struct {
		name  string
		kind  engine.Kind
		value []byte
		want  string
	}{
		{"bytes_up is a string", engine.KindUsage, encodeWith(t, usageBadType, idUsageBadType, usageNative), "wrong_schema"},
		{"siren missing", engine.KindUsage, append(AppendHeader(nil, idUsageNoSIREN), 0), "wrong_schema"},
		{"nullable siren", engine.KindUsage, append(AppendHeader(nil, idUsageNullableSIREN), 0), "wrong_schema"},
		{"enum symbol unknown to the reader", engine.KindOutage, append(AppendHeader(nil, idOutageExtraSymbol), 0), "wrong_schema"},
		{"outage schema on the usage topic", engine.KindUsage, mustEncode(t, sampleEvents()["outage_started"]), "wrong_schema"},
		{"evolved usage on the claims topic", engine.KindClaim, append(AppendHeader(nil, idUsageV2), 0), "wrong_schema"},
		{"unknown id", engine.KindUsage, append(AppendHeader(nil, 999), 0), "unknown_schema"},
		{"bad magic before any lookup", engine.KindUsage, []byte{7, 0, 0, 0, 1}, "bad_magic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev engine.Event
			err := c.Decode(ctx, tc.kind, tc.value, &ev)
			if got := engine.DLQReason(err); got != tc.want {
				t.Fatalf("engine.DLQReason(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

func TestClassifyRejectsNonAvro(t *testing.T) {
	c := newCodec(t, Config{RegistryURL: "http://127.0.0.1:1"})
	for _, s := range []sr.Schema{
		{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";`},
		{Type: sr.TypeAvro, Schema: `{"type":"record"`},
		{Type: sr.TypeAvro, Schema: `"string"`},
		{Type: sr.TypeAvro, Schema: `{"type":"record","name":"X","fields":[]}`, References: []sr.SchemaReference{{Name: "Y", Subject: "y", Version: 1}}},
	} {
		e := c.classify(50, s)
		if e.err == nil {
			// A non-record schema yields plans that all fail.
			for k := range e.plans {
				if e.plans[k].err == nil {
					t.Errorf("%q classified as usable for kind %d", s.Schema, k)
				}
			}
			continue
		}
		if !errors.Is(e.err, ErrWrongSchema) {
			t.Errorf("%q: %v", s.Schema, e.err)
		}
	}
}

// Registry failures are not the record's fault and are not cached; unknown
// ids are remembered for NotFoundTTL.
func TestRegistryFailuresAreRetriable(t *testing.T) {
	reg := newTestRegistry(t)
	c := reg.codec(t)
	ctx := context.Background()
	b := mustEncode(t, sampleEvents()["usage"])
	var ev engine.Event

	reg.down.Store(true)
	err := c.Decode(ctx, engine.KindUsage, b, &ev)
	if !errors.Is(err, ErrRegistry) || engine.DLQReason(err) != "" {
		t.Fatalf("registry down: %v (reason %q)", err, engine.DLQReason(err))
	}
	reg.down.Store(false)
	if err := c.Decode(ctx, engine.KindUsage, b, &ev); err != nil {
		t.Fatalf("after recovery: %v", err)
	}

	before := reg.requests.Load()
	unknown := append(AppendHeader(nil, 999), 0)
	for i := 0; i < 5; i++ {
		if err := c.Decode(ctx, engine.KindUsage, unknown, &ev); !errors.Is(err, ErrUnknownSchema) {
			t.Fatal(err)
		}
	}
	if n := reg.requests.Load() - before; n != 1 {
		t.Errorf("%d requests for an unknown id, want 1 (negative cache)", n)
	}

	wrongAuth := newCodec(t, Config{RegistryURL: reg.srv.URL})
	if err := wrongAuth.Decode(ctx, engine.KindUsage, b, &ev); !errors.Is(err, ErrRegistry) {
		t.Errorf("401: %v", err)
	}

	reg.srv.Close()
	fresh := reg.codec(t)
	if err := fresh.Decode(ctx, engine.KindUsage, b, &ev); !errors.Is(err, ErrRegistry) {
		t.Errorf("unreachable registry: %v", err)
	}
}

// Run with -race: concurrent first use of the same ids.
func TestCodecConcurrentUse(t *testing.T) {
	reg := newTestRegistry(t)
	c := reg.codec(t)
	evs := sampleEvents()
	var values [][]byte
	var want []engine.Event
	for _, ev := range evs {
		values = append(values, mustEncode(t, ev))
		want = append(want, ev)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ev engine.Event
			for i := 0; i < 200; i++ {
				j := (i + g) % len(values)
				if err := c.Decode(context.Background(), want[j].Kind, values[j], &ev); err != nil || ev != want[j] {
					t.Errorf("decode %d: %v %+v", j, err, ev)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := reg.requests.Load(); n > 4+8 {
		t.Errorf("%d registry requests for 4 ids", n)
	}
}
