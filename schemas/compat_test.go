package schemas

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/sirenstream/sirenstream/engine"
)

// TestVersion1ReadersDecodeVersion2Records: a consumer holding the first
// segment_change schema (testdata/segment_change_v1.avsc, as released)
// decodes the records written today by Avro schema resolution, with
// another Avro implementation than ours or goavro (hamba/avro): every
// version 2 field has a default or is skipped, nothing of version 1 moves.
func TestVersion1ReadersDecodeVersion2Records(t *testing.T) {
	v1Text, err := os.ReadFile(filepath.Join("testdata", "segment_change_v1.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := avro.Parse(string(v1Text))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := Schema(IDSegmentChange)
	writer, err := avro.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
	if err != nil {
		t.Fatalf("version 1 cannot read version 2: %v", err)
	}
	d := engine.Decision{
		EventID: "732829320-4", SIREN: "732829320", Seq: 4, EventTime: 1_767_225_600_000,
		Segments: engine.RecoveryExposed, Previous: engine.RecoveryExposed,
		Metrics: engine.Metrics{Outages90d: 1, OpenOutages: 1, RecoveryExposureHours90d: 1.5, MaxRecoveryHours90d: 1.5,
			GoldenHourBreaches90d: 1, Workforce: 12, HasWorkforce: true},
		Offers:       []string{"GOLDEN_HOUR_REPAIR", "LOGICAL_VIP_BACKUP"},
		OffersAdded:  []string{"LOGICAL_VIP_BACKUP"},
		RulesVersion: "default-2", Trigger: engine.TriggerTimer,
	}
	b := AppendSegmentChange(nil, &d)
	var got map[string]any
	if err := avro.Unmarshal(resolved, b[5:], &got); err != nil {
		t.Fatalf("version 1 reader: %v", err)
	}
	if got["event_id"] != d.EventID || got["seq"] != int64(4) || got["rules_version"] != "default-2" {
		t.Fatalf("decoded %v", got)
	}
	if !reflect.DeepEqual(got["offers"], []any{"GOLDEN_HOUR_REPAIR", "LOGICAL_VIP_BACKUP"}) {
		t.Fatalf("offers %v", got["offers"])
	}
	m := got["metrics"].(map[string]any)
	if m["open_outages"] != 1 || m["recovery_exposure_hours_90d"] != 1.5 || m["distinct_postal_codes_90d"] != 0 {
		t.Fatalf("metrics %v", m)
	}
	for _, k := range []string{"trigger", "offers_added"} {
		if _, ok := got[k]; ok {
			t.Fatalf("a version 1 reader sees %s", k)
		}
	}
	if _, ok := m["golden_hour_breaches_90d"]; ok {
		t.Fatal("a version 1 reader sees golden_hour_breaches_90d")
	}
}
