package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sirenstream/sirenstream/internal/bench"
)

// TestBenchSmoke runs `sirenstream bench` at tiny sizes (in-process broker,
// every stage, a 1 s latency run and a tiny scale and warm point) and checks that the
// JSON report holds every stage with sane, non-zero figures. It never checks
// speed.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	var out, errb bytes.Buffer
	code := realMain([]string{"bench", "--broker", "inproc", "--json", "--events", "3000", "--sirens", "200",
		"--partitions", "2", "--rounds", "2", "--latency", "1s", "--rate", "1000", "--scale", "--scale-sizes", "300", "--warm", "--warm-sizes", "300",
		"--work-dir", t.TempDir()}, &out, &errb)
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errb.String())
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out.String())
	}
	if r.Input == nil || r.Input.Events != 3000 {
		t.Fatalf("input = %+v, want 3000 events", r.Input)
	}
	if len(r.Stages) != len(bench.AllStages) {
		t.Fatalf("stages = %d, want %v", len(r.Stages), bench.AllStages)
	}
	for i, s := range r.Stages {
		if s.Name != bench.AllStages[i] {
			t.Errorf("stage %d is %q, want %q", i, s.Name, bench.AllStages[i])
		}
		if s.Records != 3000 || s.RecordsPerSec <= 0 || s.Seconds <= 0 || s.RatioToRaw <= 0 || s.PeakRSSBytes <= 0 {
			t.Errorf("stage %s: implausible figures %+v", s.Name, s)
		}
	}
	if len(r.Rounds) != 2 {
		t.Fatalf("rounds = %d, want 2", len(r.Rounds))
	}
	for i, s := range r.Stages {
		if s.Round < 1 || s.Round > 2 || r.Rounds[s.Round-1][i] != s {
			t.Errorf("stage %s: round %d is not one of the rounds run", s.Name, s.Round)
		}
	}
	byName := map[string]bench.StageResult{}
	for _, s := range r.Stages {
		byName[s.Name] = s
	}
	full := byName[bench.StageFull]
	if full.Changes == 0 || full.StoredSIRENs == 0 || full.BadgerBytesPerSIREN <= 0 {
		t.Errorf("full stage: no changes or no Badger figures: %+v", full)
	}
	// floor-io writes again every output of its round's full stage: at least
	// a siren-daily record per SIREN per day change.
	if fio := byName[bench.StageFloorIO]; fio.Outputs < int64(r.Input.SIRENs) {
		t.Errorf("floor-io wrote %d outputs, want at least one per SIREN (%d): %+v", fio.Outputs, r.Input.SIRENs, fio)
	}
	if full.RatioToFloor <= 0 || len(r.Warm) == 0 || r.Warm[0].Full.RatioToFloor <= 0 {
		t.Errorf("full stages without their ratio to the floor: %+v", full)
	}
	if l := r.Latency; l == nil || l.Probes == 0 || l.Observed == 0 || l.P99Ms <= 0 || l.P50Ms > l.P99Ms {
		t.Errorf("latency = %+v", r.Latency)
	}
	if len(r.Warm) != 1 || r.Warm[0].SIRENs != 300 || r.Warm[0].Records < 300 || r.Warm[0].Full.Records <= r.Warm[0].Records ||
		r.Warm[0].Full.RatioToRaw <= 0 || r.Warm[0].Raw.RecordsPerSec <= 0 || r.Warm[0].RawAfter.RecordsPerSec <= 0 ||
		r.Warm[0].DaySweep.Day != 2 || r.Warm[0].DaySweep.Seconds <= 0 || r.Warm[0].FirstSnapshot.Changes == 0 || r.Warm[0].DiskBytes <= 0 ||
		r.Warm[0].FloorDay.Records != r.Warm[0].Raw.Records || r.Warm[0].FloorDay.Outputs < 300 || r.Warm[0].FloorDay.RatioToRaw <= 0 || r.Warm[0].FloorIO.Outputs != r.Warm[0].FloorDay.Outputs || r.Warm[0].FloorIO.RatioToRaw <= 0 {
		t.Errorf("warm = %+v", r.Warm)
	}
	if len(r.Scale) != 1 || r.Scale[0].SIRENs != 300 || len(r.Scale[0].Sweeps) != 3 || r.Scale[0].DiskBytes <= 0 ||
		r.Scale[0].Sweeps[0].Seconds <= 0 || r.Scale[0].Sweeps[0].Changes == 0 ||
		r.Scale[0].Sweeps[2].Day != 3 || r.Scale[0].Sweeps[2].Seconds <= 0 || r.Scale[0].Sweeps[2].Pass1 == "" {
		t.Errorf("scale = %+v", r.Scale)
	}
}
