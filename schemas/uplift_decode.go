package schemas

import (
	"encoding/json"
	"fmt"
)

// DecodeUplift decodes a Confluent-framed uplift record (id 103). For
// tests, tools and the demo: it allocates per field (DecodeRecord).
func DecodeUplift(b []byte) (*UpliftRow, error) {
	m, id, err := DecodeRecord(b)
	if err != nil {
		return nil, err
	}
	if id != IDUplift {
		return nil, fmt.Errorf("%w: schema id %d, want the uplift's %d", ErrUnknownSchema, id, IDUplift)
	}
	if u, ok := m["relative_lift"].(map[string]any); ok { // goavro's union form
		m["relative_lift"] = u["double"]
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var r UpliftRow
	if err := json.Unmarshal(j, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
