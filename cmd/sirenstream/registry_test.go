package main

import (
	"bytes"

	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sirenstream/sirenstream/internal/testkit"
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
	var total int64
	for _, topic := range []string{"usage", "outages", "claims", "profiles"} {
		total += int64(len(testkit.ReadAll(t, brokers, topic)))
	}

	cfg := testkit.Config(t, brokers, t.TempDir())
	codec, err := schemas.NewCodec(schemas.Config{RegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Codec = codec
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, total, parts, 60*time.Second)
	consumed, processed, dead := testkit.Sum(h.P.Progress())
	h.Stop(t)
	if consumed != total || processed != total || dead != 0 {
		t.Fatalf("consumed %d processed %d dead-lettered %d of %d records; want all processed", consumed, processed, dead, total)
	}

}
