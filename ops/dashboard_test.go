package ops_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/ops"
)

// TestDashboardUsesExportedMetrics: every sirenstream_* name in the Grafana
// dashboard and the README-documented set is exported by /metrics once each
// processor.Metrics method has been called.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	m := ops.NewMetrics(ops.MetricsConfig{StateSize: func() (int64, int64) { return 1, 2 }})
	m.Owned([]int32{0})
	m.RestoreProgress(0, 5, 10)
	m.Loaded(0, map[string]int64{"MULTI_SITE": 1})
	m.Consumed("usage", 0)
	m.Processed("usage", 0)
	m.DeadLettered("usage", 0, "late")
	m.Transition("MULTI_SITE", true)
	m.StreamTime(0, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	m.Lag("usage", 0, 3)
	m.Commit(0, time.Millisecond, 2)
	m.Outcome(0, engine.OfferMultisiteVPN, true, false)
	m.SegmentChange(0, &engine.Decision{SIREN: gen.SIREN(1), Seq: 1, Segments: engine.MultiSite, Added: engine.MultiSite})
	base := serve(t, "", m)
	exported := map[string]bool{}
	for _, s := range scrape(t, base) {
		name := s.Name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suf)
		}
		exported[name] = true
		exported[s.Name] = true
	}
	b, err := os.ReadFile("../deploy/grafana/dashboards/sirenstream.json")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`sirenstream_[a-z0-9_]+`).FindAllString(string(b), -1)
	if len(used) < 10 {
		t.Fatalf("dashboard uses only %d sirenstream metrics", len(used))
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("dashboard uses %s, which /metrics does not export", name)
		}
	}
	for _, name := range []string{
		"sirenstream_records_consumed_total", "sirenstream_records_processed_total", "sirenstream_records_dead_lettered_total",
		"sirenstream_consumer_lag_records", "sirenstream_stream_time_seconds", "sirenstream_segment_transitions_total",
		"sirenstream_segment_changes_total", "sirenstream_segment_sirens", "sirenstream_state_size_bytes",
		"sirenstream_commit_duration_seconds", "sirenstream_committed_states_total", "sirenstream_restore_records_read",
		"sirenstream_restore_records_total", "sirenstream_owned_partitions", "sirenstream_offer_outcomes_total",
		"sirenstream_segment_flaps_total",
	} {
		if !exported[name] {
			t.Errorf("%s not exported", name)
		}
	}
	// Revoked partitions leave no stale gauges behind.
	m.Owned(nil)
	for _, s := range scrape(t, base) {
		if s.Labels["partition"] == "0" && (s.Name == "sirenstream_consumer_lag_records" || s.Name == "sirenstream_stream_time_seconds" || strings.HasPrefix(s.Name, "sirenstream_restore_")) {
			t.Errorf("%s{partition=0} still exported after the partition was revoked", s.Name)
		}
	}
}
