package processor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
)

func restoreStats(p *processor.Processor) (sirens, records int64, full int) {
	for _, tp := range p.Progress() {
		sirens += tp.Restore.SIRENs
		records += tp.Restore.Records
		if tp.Restore.Full && tp.Restore.SIRENs > 0 {
			full++
		}
	}
	return
}

// headerKeyCut returns seeded data (200 SIRENs, 70 days) and a cut: the part
// before it ends 30 records into 2026-02-11, whose day change (on this data)
// changes a segment, so the last writes of an instance that stops there
// include a sweep's header key.
func headerKeyCut(t *testing.T) ([]kafka.Message, int) {
	all := testkit.Generated(t, gen.Config{SIRENs: 200, Days: 70, Seed: 5})
	half := 0
	for cut := time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC); all[half].Time.Before(cut); half++ {
	}
	return all, half + 30
}

// TestRestoreFromChangelog: an instance's state directory is deleted; the
// restarted instance rebuilds every partition from the changelog alone and
// its state (states, input offsets, task meta) equals the original. Then a
// second instance takes the partitions over, processes more input, and the
// first instance, restarted on its intact but stale directory, restores only
// the tail it lacks. The instances run with a cache smaller than a
// partition, so their sweeps write header keys (state.KV.Header) that the
// changelog carries as whole states.
func TestRestoreFromChangelog(t *testing.T) {
	const parts = 3
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	all, half := headerKeyCut(t)
	testkit.Produce(t, brokers, all[:half]...)
	config := func(dir string) processor.Config {
		cfg := testkit.Config(t, brokers, dir)
		// ~67 SIRENs per partition; sweep chunks committed before the next
		// day's records rewrite their states whole.
		cfg.CacheSIRENs, cfg.CommitRecords = 20, 10
		return cfg
	}

	dirA := t.TempDir()
	h := testkit.Start(t, config(dirA))
	h.WaitConsumed(t, int64(half), parts, 120*time.Second)
	h.Stop(t)
	st, err := processor.OpenStore(state.Options{Dir: dirA, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	headers := 0
	for p := int32(0); p < parts; p++ {
		n, err := st.Headers(p)
		if err != nil {
			t.Fatal(err)
		}
		headers += n
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if headers == 0 {
		t.Fatal("no header keys: the test does not cover header writes")
	}
	original := dumpState(t, dirA, parts)

	// Lose the disk: a fresh directory restores everything from the changelog.
	dirFresh := t.TempDir()
	h = testkit.Start(t, config(dirFresh))
	h.WaitConsumed(t, 0, parts, 120*time.Second)
	sirens, _, full := restoreStats(h.P)
	h.Stop(t)
	if full != parts || sirens < 200 {
		t.Fatalf("fresh directory: %d partitions fully restored with %d SIRENs, want %d partitions and ≥ 200 SIRENs", full, sirens, parts)
	}
	if got := dumpState(t, dirFresh, parts); got != original {
		t.Fatal("state restored from the changelog differs from the original state")
	}

	// Another instance (dirFresh) processes the rest of the input...
	testkit.Produce(t, brokers, all[half:]...)
	h = testkit.Start(t, config(dirFresh))
	h.WaitConsumed(t, int64(len(all)-half), parts, 120*time.Second)
	h.Stop(t)
	final := dumpState(t, dirFresh, parts)

	// ...and the first one comes back with its stale directory: tail only.
	h = testkit.Start(t, config(dirA))
	h.WaitConsumed(t, 0, parts, 120*time.Second)
	tailSIRENs, tailRecords, full := restoreStats(h.P)
	h.Stop(t)
	if full != 0 || tailSIRENs == 0 {
		t.Fatalf("stale directory: full restores %d, tail SIRENs %d; want a tail-only restore", full, tailSIRENs)
	}
	if got := dumpState(t, dirA, parts); got != final {
		t.Fatal("state after a tail restore differs from the instance that processed the tail")
	}
	t.Logf("tail restore read %d changelog records (%d SIRENs); %d header keys after the first run", tailRecords, tailSIRENs, headers)
}

// BenchmarkRestore100k measures SIRENs restored per second from a changelog
// partition holding 100k SIREN states of 800 bytes (a realistic size) in
// commits of 1000 states + checkpoint, into a fresh Badger directory.
func BenchmarkRestore100k(b *testing.B) {
	const sirens = 100_000
	_, brokers := testkit.Cluster(b, 1)
	testkit.CreateTopics(b, brokers, 1)
	// Build a realistic changelog: states in commits of 5000 + checkpoints.
	val := make([]byte, 800)
	for i := range val {
		val[i] = byte(i)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	ctx := context.Background()
	batch := make([]kafka.Record, 0, 1001)
	meta := engine.NewTask(engine.DefaultRules(), engine.Config{}).AppendMeta([]byte{1, 0, 0}) // processor meta v1, no sweep
	cp := state.AppendCheckpoint(nil, state.Checkpoint{Offsets: map[string]int64{"usage": 0, "outages": 0, "claims": 0, "profiles": 0}, Meta: meta})
	for i := 0; i < sirens; i++ {
		batch = append(batch, kafka.Record{Key: kafka.NewBytes([]byte(gen.SIREN(i))), Value: kafka.NewBytes(val)})
		if len(batch) == 1000 || i == sirens-1 {
			batch = append(batch, kafka.Record{Key: kafka.NewBytes([]byte("\x00checkpoint")), Value: kafka.NewBytes(cp)})
			resp, err := client.Produce(ctx, &kafka.ProduceRequest{Topic: "sirenstream-changelog", Partition: 0, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(batch...)})
			if err != nil || resp.Error != nil {
				b.Fatalf("produce changelog: %v %v", err, resp.Error)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		cfg := testkit.Config(b, brokers, b.TempDir())
		cfg.Group = fmt.Sprintf("restore-bench-%d", i)
		cfg.Topics.Changelog = "sirenstream-changelog" // written above, without a group
		h := testkit.Start(b, cfg)
		h.WaitConsumed(b, 0, 1, 5*time.Minute)
		var got int64
		for _, tp := range h.P.Progress() {
			got += tp.Restore.SIRENs
			total += tp.Restore.Elapsed
		}
		h.Stop(b)
		if got != sirens {
			b.Fatalf("restored %d SIRENs, want %d", got, sirens)
		}
	}
	b.ReportMetric(float64(sirens*b.N)/total.Seconds(), "sirens/s")
}
