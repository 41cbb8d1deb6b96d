package ops_test

import (
	"testing"

	"github.com/sirenstream/sirenstream/ops"
)

// TestBuildInfoAndRestoreGaugesAtZero: sirenstream_build_info is 1 with the
// version and commit; the restore gauges of owned partitions exist at 0
// before any restore; the state size comes from the store.
func TestBuildInfoAndRestoreGaugesAtZero(t *testing.T) {
	m := ops.NewMetrics(ops.MetricsConfig{NoRuntime: true, Version: "1.2.3", Commit: "abc",
		StateSize: func() (int64, int64) { return 4096, 6_400_000 }})
	m.Owned([]int32{0, 2})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, mf := range mfs {
		count[mf.GetName()] = len(mf.GetMetric())
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := s.GetGauge().GetValue()
			switch mf.GetName() {
			case "sirenstream_build_info":
				if v != 1 || labels["version"] != "1.2.3" || labels["commit"] != "abc" {
					t.Errorf("build_info %v = %v", labels, v)
				}
			case "sirenstream_restore_records_read", "sirenstream_restore_records_total":
				if v != 0 {
					t.Errorf("%s%v = %v before any restore, want 0", mf.GetName(), labels, v)
				}
			case "sirenstream_state_size_bytes":
				if want := map[string]float64{"lsm": 4096, "vlog": 6_400_000}[labels["part"]]; v != want {
					t.Errorf("state_size_bytes%v = %v, want %v", labels, v, want)
				}
			}
		}
	}
	for name, want := range map[string]int{"sirenstream_build_info": 1, "sirenstream_restore_records_read": 2,
		"sirenstream_restore_records_total": 2, "sirenstream_state_size_bytes": 2} {
		if count[name] != want {
			t.Errorf("%s: %d series, want %d", name, count[name], want)
		}
	}
}
