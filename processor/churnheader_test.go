package processor

import (
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

// TestChurnAlertCarriesTheControlGroupHeader: a churn alert carries the
// SIREN's holdout group in the header control_group, so alerting systems
// can hold back a control SIREN's alert without decoding it (spec §8);
// the segment change itself has no header.
func TestChurnAlertCarriesTheControlGroupHeader(t *testing.T) {
	for _, control := range []bool{true, false} {
		b := &committer{}
		c := &collector{routes: routes{segments: "segment-changes", churn: "churn-alerts"}, batch: b}
		c.change(&engine.Decision{SIREN: "732829320", Seq: 1, Segments: engine.ChurnRisk, Added: engine.ChurnRisk, ControlGroup: control})
		if len(b.outputs) != 2 {
			t.Fatalf("%d outputs, want the change and its churn alert", len(b.outputs))
		}
		if h := b.outputs[0].Headers; len(h) != 0 {
			t.Errorf("segment change has headers %v", h)
		}
		alert := b.outputs[1]
		want := map[bool]string{true: "true", false: "false"}[control]
		if len(alert.Headers) != 1 || alert.Headers[0].Key != "control_group" || string(alert.Headers[0].Value) != want {
			t.Errorf("control %v: churn alert headers %v, want control_group=%s", control, alert.Headers, want)
		}
	}
}
