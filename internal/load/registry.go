package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

// Register registers the project's input schemas with a Confluent schema
// registry under the TopicNameStrategy subjects "<topic>-value" and returns
// the ids the registry assigned, per event kind. Producers must frame records
// with these ids when the processor runs with --schema-registry.
func Register(ctx context.Context, registryURL string, topicOf func(string) string) (map[engine.Kind]uint32, error) {
	ids := map[engine.Kind]uint32{}
	for _, in := range topology.Define().Inputs {
		topic := in.Default
		if topicOf != nil {
			topic = topicOf(topic)
		}
		schema, _ := schemas.Schema(in.SchemaID)
		body, _ := json.Marshal(map[string]string{"schema": schema, "schemaType": "AVRO"})
		url := strings.TrimRight(registryURL, "/") + "/subjects/" + topic + "-value/versions"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("register schema for %s: %w", topic, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("register schema for %s: HTTP %d: %s", topic, resp.StatusCode, b)
		}
		var out struct {
			ID uint32 `json:"id"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.ID == 0 {
			return nil, fmt.Errorf("register schema for %s: unexpected answer %s", topic, b)
		}
		ids[in.Kind] = out.ID
	}
	return ids, nil
}
