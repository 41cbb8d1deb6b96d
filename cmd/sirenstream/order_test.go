package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
)

// kcat's delimiters for binary Avro values: byte strings no record holds
// (checked when the files are written).
const (
	kcatKeyDelim = "\xbe\xef\xfa\xce\x04\x05\x06\x07"
	kcatMsgDelim = "\xfe\xed\xfa\xce\x01\x02\x03\x04"
)

// kcatFile writes records as a kcat -l input (key, key delimiter, value,
// message delimiter) and returns its path.
func kcatFile(t *testing.T, dir, name string, recs []kafka.Message) string {
	t.Helper()
	var b bytes.Buffer
	for _, m := range recs {
		if bytes.Contains(m.Key, []byte(kcatKeyDelim)) || bytes.Contains(m.Value, []byte(kcatMsgDelim)) || bytes.Contains(m.Value, []byte(kcatKeyDelim)) {
			t.Fatalf("record of %s holds a kcat delimiter", m.Key)
		}
		b.Write(m.Key)
		b.WriteString(kcatKeyDelim)
		b.Write(m.Value)
		b.WriteString(kcatMsgDelim)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// kcatProduce produces a kcat -l file to topic with librdkafka's
// Java-compatible partitioner (murmur2), as a non-Go producer would.
func kcatProduce(t *testing.T, addr, topic, file string) {
	t.Helper()
	esc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		}
		return b.String()
	}
	out, err := exec.Command("kcat", "-P", "-b", addr, "-t", topic, "-X", "topic.partitioner=murmur2_random",
		"-K", esc(kcatKeyDelim), "-D", esc(kcatMsgDelim), "-l", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -P %s: %v\n%s", topic, err, out)
	}
}

// orderRun is one `sirenstream run` process of an ordering test.
type orderRun struct {
	cmd  *exec.Cmd
	http string
	log  *testkit.LockedBuffer
	done chan struct{}
}

func startOrderRun(t *testing.T, bin, addr, dir string, extra ...string) *orderRun {
	t.Helper()
	r := &orderRun{http: freeAddr(t), log: &testkit.LockedBuffer{}, done: make(chan struct{})}
	args := append([]string{"run", "--brokers", addr, "--group", "order", "--state-dir", dir, "--http", r.http,
		"--session-timeout", "6s", "--log-format", "console", "--log-level", "info", "--commit-interval", "50ms"}, extra...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stderr = r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	// Ready (group joined, topics created) before anything is produced, so
	// the topics have the processor's partition count.
	if ok, why := testkit.Poll(60*time.Second, 50*time.Millisecond, func() (bool, string) {
		return r.metric(t, "sirenstream_owned_partitions") > 0, "no partition owned yet"
	}); !ok {
		t.Fatalf("run not ready: %s\n%s", why, tail(r.log.String(), 3000))
	}
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("run log (tail):\n%s", tail(r.log.String(), 4000))
		}
	})
	return r
}

// metric sums a metric of the process's /metrics (0 while it does not answer).
func (r *orderRun) metric(t *testing.T, name string) float64 {
	resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + r.http + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0
	}
	ss, err := testkit.ParseMetrics(body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return testkit.SumSamples(ss, name, nil)
}

// waitConsumed waits until the process consumed n records and has no lag.
func (r *orderRun) waitConsumed(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	ok, why := testkit.Poll(timeout, 50*time.Millisecond, func() (bool, string) {
		select {
		case <-r.done:
			t.Fatalf("run exited:\n%s", tail(r.log.String(), 3000))
		default:
		}
		c := int64(r.metric(t, "sirenstream_records_consumed_total"))
		lag := r.metric(t, "sirenstream_consumer_lag_records")
		return c >= n && lag == 0, fmt.Sprintf("consumed %d of %d, lag %v", c, n, lag)
	})
	if !ok {
		t.Fatalf("run did not consume the input: %s", why)
	}
}

func (r *orderRun) stop(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop within 60 s")
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("run exited %d", code)
	}
}

// replayTopics runs `sirenstream replay` of the inputs into topic out.
func replayTopics(t *testing.T, bin, addr, out string) {
	t.Helper()
	o, err := exec.Command(bin, "replay", "--brokers", addr, "--state-dir", t.TempDir(), "--output-topic", out,
		"--log-format", "console").CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, o)
	}
}

// outcome is what a run emitted, deduplicated by event_id: each SIREN's last
// segments and the flaps (a segment left and entered again within 7 days of
// event time).
type outcome struct {
	final map[string]string
	flaps map[string]int
	n     int
}

func outcomeOf(t *testing.T, msgs []kafka.Message) outcome {
	t.Helper()
	o := outcome{final: map[string]string{}, flaps: map[string]int{}}
	left := map[string]int64{} // SIREN/segment → event time it was left
	for _, c := range testkit.Dedup(testkit.Changes(t, msgs)) {
		o.n++
		o.final[c.SIREN] = strings.Join(c.Segments, ",")
		for _, s := range c.Removed {
			left[c.SIREN+"/"+s] = c.EventTime
		}
		for _, s := range c.Added {
			if at, ok := left[c.SIREN+"/"+s]; ok && c.EventTime-at <= 7*engine.DayMs {
				o.flaps[s]++
			}
		}
	}
	return o
}

func compareFinal(t *testing.T, what string, replay, live outcome) {
	t.Helper()
	var diff []string
	for s, v := range replay.final {
		if live.final[s] != v {
			diff = append(diff, fmt.Sprintf("%s: replay %q, live %q", s, v, live.final[s]))
		}
	}
	for s, v := range live.final {
		if _, ok := replay.final[s]; !ok && v != "" {
			diff = append(diff, fmt.Sprintf("%s: replay none, live %q", s, v))
		}
	}
	slices.Sort(diff)
	if len(diff) > 0 {
		t.Fatalf("%s: %d SIRENs end with other segments than the replay, e.g. %v", what, len(diff), diff[:min(5, len(diff))])
	}
}

// orderData is generated history as Confluent-framed records, by topic.
func orderData(t *testing.T, cfg gen.Config) map[string][]kafka.Message {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][]kafka.Message{}
	if err := gen.Generate(cfg, func(r *gen.Record) error {
		v, err := codec.EncodeEvent(nil, &r.Event)
		if err != nil {
			return err
		}
		by[r.Topic] = append(by[r.Topic], kafka.Message{Key: []byte(r.Event.SIREN), Value: v, Time: time.UnixMilli(r.Event.EventTime)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return by
}

// TestRunConvergesWhateverTheArrivalOrder: `sirenstream run` is started
// first, then a non-Go producer (kcat, librdkafka's murmur2 partitioner)
// loads the inputs through a `sirenstream broker` process —
//   - one whole topic after another (usage, profiles, outages, claims): every
//     SIREN's last emitted segments (corrections with trigger REPAIR
//     included) equal those of a `sirenstream replay` of the same topics;
//   - in event-time order with the usage feed stalled for two days while the
//     other inputs flow: day changes wait for the lagging feed
//     (--max-task-idle), so the run ends as the replay does and flaps no
//     more than the replay.
func TestRunConvergesWhateverTheArrivalOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("drives broker and processor processes")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (apt-get install kcat); CI installs it")
	}
	bin := buildBinary(t)
	cfg := gen.Config{SIRENs: 400, Days: 100, Seed: 3, BadRate: 0.002}
	data := orderData(t, cfg)
	dir := t.TempDir()

	t.Run("topics one after another", func(t *testing.T) {
		addr, _ := startBroker(t, bin)
		run := startOrderRun(t, bin, addr, t.TempDir(), "--max-task-idle", "1s")
		var n int64
		for _, topic := range []string{"usage", "profiles", "outages", "claims"} {
			kcatProduce(t, addr, topic, kcatFile(t, dir, "seq-"+topic, data[topic]))
			n += int64(len(data[topic]))
			run.waitConsumed(t, n, 120*time.Second)
		}
		repairs := run.metric(t, "sirenstream_repairs_total")
		run.stop(t)
		replayTopics(t, bin, addr, "replayed")
		live := outcomeOf(t, testkit.ReadAllFresh(t, []string{addr}, "segment-changes"))
		replay := outcomeOf(t, testkit.ReadAllFresh(t, []string{addr}, "replayed"))
		compareFinal(t, "topics one after another", replay, live)
		t.Logf("%d records; live: %d changes, %v repairs; replay: %d changes", n, live.n, repairs, replay.n)
		if repairs == 0 {
			t.Fatal("no repair: the test did not exercise late topics")
		}
	})

	t.Run("usage stalled two days", func(t *testing.T) {
		addr, _ := startBroker(t, bin)
		run := startOrderRun(t, bin, addr, t.TempDir(), "--max-task-idle", "5s")
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		stallFrom, stallTo := start+60*engine.DayMs, start+62*engine.DayMs
		phase := func(keep func(topic string, ms int64) bool) map[string][]kafka.Message {
			out := map[string][]kafka.Message{}
			for topic, ms := range data {
				for _, m := range ms {
					if keep(topic, m.Time.UnixMilli()) {
						out[topic] = append(out[topic], m)
					}
				}
			}
			return out
		}
		produce := func(name string, p map[string][]kafka.Message) int64 {
			var n int64
			for _, topic := range []string{"profiles", "outages", "claims", "usage"} {
				if len(p[topic]) > 0 {
					kcatProduce(t, addr, topic, kcatFile(t, dir, name+"-"+topic, p[topic]))
					n += int64(len(p[topic]))
				}
			}
			return n
		}
		// Days before the stall, all inputs.
		n := produce("before", phase(func(_ string, ms int64) bool { return ms < stallFrom }))
		run.waitConsumed(t, n, 120*time.Second)
		// Two days of everything but usage: the usage feed is stalled.
		n += produce("stall", phase(func(topic string, ms int64) bool { return topic != "usage" && ms >= stallFrom && ms < stallTo }))
		time.Sleep(2 * time.Second)
		// The feed catches up, then everything after the stall.
		n += produce("catchup", phase(func(topic string, ms int64) bool { return topic == "usage" && ms >= stallFrom && ms < stallTo }))
		n += produce("after", phase(func(_ string, ms int64) bool { return ms >= stallTo }))
		run.waitConsumed(t, n, 120*time.Second)
		run.stop(t)
		replayTopics(t, bin, addr, "replayed")
		live := outcomeOf(t, testkit.ReadAllFresh(t, []string{addr}, "segment-changes"))
		replay := outcomeOf(t, testkit.ReadAllFresh(t, []string{addr}, "replayed"))
		compareFinal(t, "usage stalled", replay, live)
		for seg, k := range live.flaps {
			if k > replay.flaps[seg] {
				t.Errorf("%s: %d re-entries within 7 days live, %d in the replay: the stall made SIRENs flap", seg, k, replay.flaps[seg])
			}
		}
		t.Logf("%d records; live: %d changes, flaps %v; replay: %d changes, flaps %v", n, live.n, live.flaps, replay.n, replay.flaps)
	})
}
