package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// TestGenerateWithSchemaRegistry: `generate --schema-registry` registers the
// schemas (subjects <topic>-value), frames records with the registry's ids,
// and a processor running with the registry decodes every record.
func TestGenerateWithSchemaRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	// Occupy the low ids so the registry's ids differ from the fixed 1-4.
	for i := 0; i < 7; i++ {
		body := fmt.Sprintf(`{"schema": "{\"type\":\"record\",\"name\":\"Other%d\",\"fields\":[]}"}`, i)
		resp, err := http.Post(reg.URL()+fmt.Sprintf("/subjects/other%d-value/versions", i), "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("seed registry: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	var out, errb bytes.Buffer
	if code := realMain([]string{"generate", "--brokers", brokers[0], "--sirens", "30", "--days", "10", "--partitions", "2", "--schema-registry", reg.URL()}, &out, &errb); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errb.String())
	}
	usage := testkit.ReadAll(t, brokers, "usage")
	if len(usage) == 0 {
		t.Fatal("no usage records produced")
	}
	if id := binary.BigEndian.Uint32(usage[0].Value[1:5]); id <= 4 {
		t.Fatalf("usage framed with id %d; want the registry's id (> 7)", id)
	}
	h, total := startWithRegistry(t, brokers, parts, reg.URL())
	consumed, processed, dead := testkit.Sum(h.P.Progress())
	h.Stop(t)
	if consumed != total || processed != total || dead != 0 {
		t.Fatalf("consumed %d processed %d dead-lettered %d of %d records; want all processed", consumed, processed, dead, total)
	}

}

// TestOutputsAreRegisteredAndReadBack (spec §8): with --schema-registry the
// outputs are registered under segment-changes-value and
// churn-alerts-value, framed with the ids the registry returned, and a
// registry-based consumer reads every record back with the schema it gets
// for that id.
func TestOutputsAreRegisteredAndReadBack(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	for i := 0; i < 5; i++ { // the registry's ids differ from the fixed ones
		if _, _, err := reg.RegisterSchema(fmt.Sprintf("other%d-value", i), sr.Schema{Schema: fmt.Sprintf(`{"type":"record","name":"O%d","fields":[]}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	var out, errb bytes.Buffer
	if code := realMain([]string{"generate", "--brokers", brokers[0], "--sirens", "60", "--days", "40", "--partitions", "2", "--outcome-sirens", "200", "--schema-registry", reg.URL()}, &out, &errb); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errb.String())
	}
	h, _ := startWithRegistry(t, brokers, parts, reg.URL())
	h.Stop(t)

	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, topic := range []string{"segment-changes", "churn-alerts", "offer-outcomes", "siren-daily", "uplift"} {
		latest, err := cl.SchemaByVersion(ctx, topic+"-value", -1)
		if err != nil {
			t.Fatalf("%s-value not registered: %v", topic, err)
		}
		if latest.ID == schemas.IDSegmentChange || latest.ID <= 5 {
			t.Fatalf("%s-value has id %d; want the registry's own", topic, latest.ID)
		}
		msgs := testkit.ReadAll(t, brokers, topic)
		if len(msgs) == 0 && topic != "uplift" { // the uplift table comes once the aggregator caught up
			t.Fatalf("no records on %s", topic)
		}
		for _, m := range msgs {
			id := int(binary.BigEndian.Uint32(m.Value[1:5]))
			if id != latest.ID {
				t.Fatalf("%s record framed with id %d, registry says %d", topic, id, latest.ID)
			}
			s, err := cl.SchemaByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			codec, err := goavro.NewCodec(s.Schema)
			if err != nil {
				t.Fatal(err)
			}
			native, rest, err := codec.NativeFromBinary(m.Value[5:])
			if err != nil || len(rest) != 0 {
				t.Fatalf("%s record does not decode with schema %d: %v (%d bytes left)", topic, id, err, len(rest))
			}
			key := "siren"
			if topic == "uplift" {
				key = "offer"
			}
			if rec := native.(map[string]any); rec[key] != string(m.Key) {
				t.Fatalf("decoded %v for key %s", rec, m.Key)
			}
		}
	}
}

// TestRegistryRefusalIsAClearStartupError: a registry that refuses the
// output schema (incompatible under the subject's rule) stops the start
// with the subject and the registry's message.
func TestRegistryRefusalIsAClearStartupError(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/subjects/segment-changes-value") {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema for subject \"segment-changes-value\""}`)
			return true
		}
		return false
	})
	_, brokers := testkit.Cluster(t, 1)
	cfg := testkit.Config(t, brokers, t.TempDir())
	codec, err := schemas.NewCodec(schemas.Config{RegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Codec = codec
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if !errors.Is(err, schemas.ErrRegistryRefused) || !strings.Contains(err.Error(), "segment-changes-value") || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("Run = %v; want the registry's refusal naming the subject", err)
	}
}

// startWithRegistry starts a processor decoding through the registry at
// url and waits until it consumed every input record; it returns the
// harness and that count.
func startWithRegistry(t *testing.T, brokers []string, parts int, url string) (*testkit.Harness, int64) {
	t.Helper()
	var total int64
	for _, topic := range []string{"usage", "outages", "claims", "profiles", "offer-responses", "contract-events"} {
		total += int64(len(testkit.ReadAll(t, brokers, topic)))
	}
	cfg := testkit.Config(t, brokers, t.TempDir())
	codec, err := schemas.NewCodec(schemas.Config{RegistryURL: url})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Codec = codec
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, total, parts, 90*time.Second)
	return h, total
}
