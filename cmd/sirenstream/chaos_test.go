package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/schemas"
)

// The chaos tests run `sirenstream broker --data-dir` and `sirenstream run`
// as processes on loopback and SIGKILL the broker, restarting it on the
// same port and directory, while `run` works. The processor must keep its
// PID (a broker fault restarts the partition task that met it, never the
// process), catch up, and write the output a `sirenstream replay` of the
// same topics writes: deduplicated by event_id, the same segment changes
// byte for byte, so the same final segments per SIREN.
//
// Input flows while the broker dies: a producer in the test appends the
// generated history partition by partition, in event-time order, one
// produce request per run of records of one input and one day. The live
// merge does not wait for an input that looks caught up (README, "Live
// order vs replay order"), so before a run goes to another input than the
// last one, the producer waits until the partition's stream time
// (/metrics) shows the previous run processed: the live order is then the
// replay's, and any difference in output is the faults' doing. Day-change
// holds for lagging inputs (--max-task-idle, when the binary has it) are
// off for the same reason: here no input lags, they would only add waits.

// TestBrokerRestartsWhileInputFlows: the broker is SIGKILLed 5 times (down
// 0.5-3 s each, restarted on the same port) at points spread over the
// input (37k records, 90 days of 300 SIRENs) while records flow into a
// running processor.
func TestBrokerRestartsWhileInputFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a broker process for about a minute")
	}
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	start := time.Now()
	c := newChaos(t, "chaos")
	runs := chaosRuns(t, gen.Config{SIRENs: 300, Days: 90, Seed: 11}, c.parts)
	p := c.run.start("chaos", 0)
	pid := p.cmd.Process.Pid
	c.watch(p)

	const kills = 5
	total := 0
	for _, rs := range runs {
		total += len(rs)
	}
	prod := c.produce(runs)
	for k := 1; k <= kills; k++ {
		// Kill points spread over the input (10, 27, 44, 61, 78 % of the
		// runs): each lands while records flow, after the processor caught
		// up with the last kill.
		c.waitRuns(prod, total*(17*k-7)/100, p, 60*time.Second)
		down := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		c.broker.kill()
		time.Sleep(down) // the broker's downtime
		c.broker.start()
		if p.exited() {
			t.Fatalf("sirenstream run exited after broker kill %d:\n%s", k, tail(p.log.String(), 3000))
		}
		t.Logf("kill %d: SIGKILL at %d of %d runs produced, down %s, restarted", k, prod.done.Load(), total, down)
	}
	if err := prod.wait(90 * time.Second); err != nil {
		t.Fatalf("producer: %v\n%s", err, c.debug(p))
	}
	ends := testkit.EndOffsets(t, c.brokers, testkit.InputTopics, c.parts)
	c.waitCommitted("chaos", ends, p, 60*time.Second)
	if p.exited() || p.cmd.Process.Pid != pid {
		t.Fatalf("sirenstream run (pid %d) did not survive", pid)
	}
	c.run.stop(p)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sirenstream run exited %d after SIGTERM:\n%s", code, tail(p.log.String(), 3000))
	}
	t.Logf("sirenstream run pid %d alive through %d broker kills, caught up, stopped cleanly; %d records in %d produce runs, retried %d; %s",
		pid, c.broker.kills, events(ends), total, prod.retries.Load(), chaosWarns(p.log.String()))
	c.compareWithReplay()
	t.Logf("whole test %s (seed %d, SIRENSTREAM_CHAOS_SEED)", time.Since(start).Round(time.Millisecond), seed)
}

// TestIdleProcessorSurvivesBrokerRestarts: a processor with nothing to do
// (caught up) sees its broker SIGKILLed and restarted 3 times; it stays up,
// becomes ready again each time, and then processes new input like a
// replay would.
func TestIdleProcessorSurvivesBrokerRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a broker process")
	}
	rng := rand.New(rand.NewPCG(chaosSeed(t), 3))
	c := newChaos(t, "idle")
	runs := chaosRuns(t, gen.Config{SIRENs: 40, Days: 10, Seed: 12}, c.parts)
	first, second := chaosSplit(runs, 5)
	p := c.run.start("idle", 0)
	pid := p.cmd.Process.Pid
	c.watch(p)
	if err := c.produce(first).wait(60 * time.Second); err != nil {
		t.Fatalf("producer: %v\n%s", err, c.debug(p))
	}
	c.waitCommitted("idle", testkit.EndOffsets(t, c.brokers, testkit.InputTopics, c.parts), p, 60*time.Second)
	for k := 1; k <= 3; k++ {
		down := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		c.broker.kill()
		time.Sleep(down) // the broker's downtime
		c.broker.start()
		took := c.waitReady(p, 60*time.Second)
		t.Logf("idle kill %d: down %s; ready again %s after the restart", k, down, took.Round(time.Millisecond))
	}
	if err := c.produce(second).wait(60 * time.Second); err != nil {
		t.Fatalf("producer after the restarts: %v\n%s", err, c.debug(p))
	}
	ends := testkit.EndOffsets(t, c.brokers, testkit.InputTopics, c.parts)
	c.waitCommitted("idle", ends, p, 60*time.Second)
	if p.exited() || p.cmd.Process.Pid != pid {
		t.Fatalf("sirenstream run (pid %d) did not survive", pid)
	}
	c.run.stop(p)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sirenstream run exited %d after SIGTERM:\n%s", code, tail(p.log.String(), 3000))
	}
	t.Logf("idle sirenstream run pid %d alive through %d broker kills, then caught up with new input (%d records in all); %s", pid, c.broker.kills, events(ends), chaosWarns(p.log.String()))
	c.compareWithReplay()
}

func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(20261106)
	if s := os.Getenv("SIRENSTREAM_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SIRENSTREAM_CHAOS_SEED: %v", err)
		}
		seed = v
	}
	return seed
}

// chaos is one broker process, one logical processor (crashRun) and what
// the test knows of them.
type chaos struct {
	t       *testing.T
	bin     string
	parts   int
	broker  *chaosBroker
	brokers []string
	run     *crashRun
	// streamMs is each partition's stream time (ms) from the processor's
	// /metrics, -1 while unknown.
	streamMs []atomic.Int64
}

func newChaos(t *testing.T, name string) *chaos {
	t.Helper()
	// Holding day changes for lagging inputs would only add waits here.
	t.Setenv("SIRENSTREAM_MAX_TASK_IDLE", "-1s")
	c := &chaos{t: t, bin: buildBinary(t), parts: 3}
	c.broker = &chaosBroker{t: t, bin: c.bin, addr: chaosAddr(t), dir: filepath.Join(t.TempDir(), "broker")}
	c.broker.start()
	t.Cleanup(c.broker.stop)
	c.brokers = []string{c.broker.addr}
	testkit.CreateTopics(t, c.brokers, c.parts)
	c.run = newCrashRun(t, c.bin, c.broker.addr, name)
	c.streamMs = make([]atomic.Int64, c.parts)
	return c
}

// chaosBroker is a `sirenstream broker --data-dir` process that can be
// killed and started again on the same address.
type chaosBroker struct {
	t         *testing.T
	bin       string
	addr, dir string
	cmd       *exec.Cmd
	done      chan struct{}
	kills     int
}

// chaosAddr is a free loopback address whose port is below Linux's
// ephemeral range (32768-60999): while the broker is down, no client
// connection can take its port as a local one.
func chaosAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	return freeAddr(t)
}

// start starts the broker, again if its port is briefly taken.
func (b *chaosBroker) start() {
	b.t.Helper()
	for attempt := 1; ; attempt++ {
		err := b.try()
		if err == nil {
			return
		}
		if attempt == 10 {
			b.t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the port may be free again
	}
}

func (b *chaosBroker) try() error {
	t := b.t
	t.Helper()
	cmd := exec.Command(b.bin, "broker", "--listen", b.addr, "--partitions", "3", "--data-dir", b.dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "broker listening on ") {
				close(listening)
			}
		}
		_ = cmd.Wait() // after the pipe's last read
		close(done)
	}()
	select {
	case <-listening:
	case <-done:
		return fmt.Errorf("broker exited at start (%v): %s", cmd.ProcessState, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not report its address")
	}
	b.cmd, b.done = cmd, done
	return nil
}

func (b *chaosBroker) kill() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	<-b.done
	b.kills++
}

func (b *chaosBroker) stop() {
	if b.cmd == nil {
		return
	}
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		<-b.done
	}
}

// chaosRun is one produce request: records of one input partition, one
// day, in event-time order.
type chaosRun struct {
	topic     string
	partition int
	recs      []kafka.Message
	lastMs    int64 // event time of the last record
}

// chaosRuns cuts gen's history under cfg into runs, per partition (murmur2
// of the SIREN, like the processor's producers). A record with the event
// time of the one before it in its partition is left out: the stream time
// polled between runs would not tell them apart.
func chaosRuns(t *testing.T, cfg gen.Config, parts int) [][]chaosRun {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	bal := kafka.Murmur2Balancer{}
	out := make([][]chaosRun, parts)
	lastMs := make([]int64, parts)
	for i := range lastMs {
		lastMs[i] = math.MinInt64
	}
	err = gen.Generate(cfg, func(r *gen.Record) error {
		v, err := codec.EncodeEvent(nil, &r.Event)
		if err != nil {
			return err
		}
		m := kafka.Message{Topic: testkit.TopicOf(r.Event.Kind), Key: []byte(r.Event.SIREN), Value: v, Time: time.UnixMilli(r.Event.EventTime)}
		p := bal.Balance(m, ids...)
		ms := r.Event.EventTime
		if ms == lastMs[p] {
			return nil
		}
		rs := out[p]
		if n := len(rs); n == 0 || rs[n-1].topic != m.Topic || engine.Day(rs[n-1].lastMs) != engine.Day(ms) {
			rs = append(rs, chaosRun{topic: m.Topic, partition: p})
		}
		rs[len(rs)-1].recs = append(rs[len(rs)-1].recs, m)
		rs[len(rs)-1].lastMs, lastMs[p] = ms, ms
		out[p] = rs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chaosSplit splits every partition's runs at the start of day (runs of
// earlier days first).
func chaosSplit(runs [][]chaosRun, day int32) (before, after [][]chaosRun) {
	for _, rs := range runs {
		i := sort.Search(len(rs), func(i int) bool { return engine.Day(rs[i].lastMs)-engine.Day(rs[0].lastMs) >= day })
		before, after = append(before, rs[:i]), append(after, rs[i:])
	}
	return before, after
}

// producer appends runs, one goroutine per partition.
type producer struct {
	done    atomic.Int64 // runs produced and, before a switch of input, processed
	retries atomic.Int64 // produce requests sent again (broker down)
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	stop    context.CancelFunc
}

func (c *chaos) produce(runs [][]chaosRun) *producer {
	ctx, cancel := context.WithCancel(context.Background())
	pr := &producer{stop: cancel}
	c.t.Cleanup(func() {
		cancel()
		pr.wg.Wait()
	})
	for p := range runs {
		pr.wg.Add(1)
		go func() {
			defer pr.wg.Done()
			if err := c.producePartition(ctx, pr, runs[p]); err != nil {
				pr.mu.Lock()
				pr.err = fmt.Errorf("partition %d: %w", p, err)
				pr.mu.Unlock()
				cancel()
			}
		}()
	}
	return pr
}

// producePartition appends the runs of one partition: each in one produce
// request (retried while the broker is down: a request whose answer was
// lost may be appended twice, a duplicate the replay sees as well), and
// before a run of another input than the last, waits until the partition's
// stream time shows the last run processed.
func (c *chaos) producePartition(ctx context.Context, pr *producer, runs []chaosRun) error {
	tr := &kafka.Transport{DialTimeout: 2 * time.Second, MetadataTTL: time.Second}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: 5 * time.Second, Transport: tr}
	for i, r := range runs {
		if i > 0 && runs[i-1].topic != r.topic {
			if err := c.awaitStream(ctx, r.partition, runs[i-1].lastMs); err != nil {
				return err
			}
		}
		for attempt := 0; ; attempt++ {
			recs := make([]kafka.Record, len(r.recs))
			for j, m := range r.recs {
				recs[j] = kafka.Record{Time: m.Time, Key: kafka.NewBytes(m.Key), Value: kafka.NewBytes(m.Value)}
			}
			resp, err := client.Produce(ctx, &kafka.ProduceRequest{
				Topic: r.topic, Partition: r.partition, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...),
			})
			if err == nil && resp.Error != nil {
				err = resp.Error
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt > 300 {
				return fmt.Errorf("produce %s/%d: %w", r.topic, r.partition, err)
			}
			pr.retries.Add(1)
			time.Sleep(100 * time.Millisecond) // the broker is down: retry
		}
		pr.done.Add(1)
	}
	return c.awaitStream(ctx, runs[len(runs)-1].partition, runs[len(runs)-1].lastMs)
}

// awaitStream waits until partition p's stream time reached ms.
func (c *chaos) awaitStream(ctx context.Context, p int, ms int64) error {
	for c.streamMs[p].Load() < ms {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond): // polled from /metrics by watch
		}
	}
	return nil
}

func (pr *producer) wait(timeout time.Duration) error {
	done := make(chan struct{})
	go func() {
		pr.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		pr.stop()
		<-done
		return fmt.Errorf("not done after %s (%d runs produced)", timeout, pr.done.Load())
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.err
}

// waitRuns waits until n runs were produced.
func (c *chaos) waitRuns(pr *producer, n int, p *crashProc, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for pr.done.Load() < int64(n) {
		if p.exited() {
			c.t.Fatalf("sirenstream run exited:\n%s", tail(p.log.String(), 3000))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d runs produced after %s, want %d\n%s", pr.done.Load(), timeout, n, c.debug(p))
		}
		time.Sleep(5 * time.Millisecond) // polling the producer's progress
	}
}

// watch polls the processor's /metrics for the partitions' stream times
// until the test ends.
func (c *chaos) watch(p *crashProc) {
	for i := range c.streamMs {
		c.streamMs[i].Store(-1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	c.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: time.Second}
		for ctx.Err() == nil {
			if resp, err := client.Get("http://" + p.http + "/metrics"); err == nil {
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if ss, perr := testkit.ParseMetrics(body); err == nil && perr == nil {
					for _, s := range ss {
						if s.Name != "sirenstream_stream_time_seconds" {
							continue
						}
						if part, err := strconv.Atoi(s.Labels["partition"]); err == nil && part < len(c.streamMs) {
							// The gauge is ms/1000: round back to ms.
							c.streamMs[part].Store(int64(math.Round(s.Value * 1000)))
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond): // the poll interval
			}
		}
	}()
}

// waitReady polls /readyz until it answers 200 twice in a row 1 s apart
// (group joined, every owned partition loaded); it fails the test if the
// process exits.
func (c *chaos) waitReady(p *crashProc, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	ready := func() bool {
		resp, err := client.Get("http://" + p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	time.Sleep(time.Second) // the group notices the restart
	for {
		if p.exited() {
			c.t.Fatalf("sirenstream run exited after a broker restart:\n%s", tail(p.log.String(), 3000))
		}
		if ready() {
			time.Sleep(time.Second) // still ready a second later: not a generation about to end
			if ready() {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("not ready %s after a broker restart\n%s", timeout, c.debug(p))
		}
		time.Sleep(50 * time.Millisecond) // polling /readyz
	}
}

// waitCommitted polls until the group's committed offsets (sent after the
// state is durable) reach ends on every input partition that has records.
func (c *chaos) waitCommitted(group string, ends map[string]int64, p *crashProc, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := crashGroupOffsets(c.brokers, group, c.parts)
		missing := ""
		for k, end := range ends {
			if end > 0 && got[k] != end {
				missing = fmt.Sprintf("%s committed %d of %d", k, got[k], end)
				break
			}
		}
		if missing == "" {
			return
		}
		if p.exited() {
			c.t.Fatalf("sirenstream run exited before catching up:\n%s", tail(p.log.String(), 3000))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not caught up after %s: %s\n%s", timeout, missing, c.debug(p))
		}
		time.Sleep(100 * time.Millisecond) // polling the group's offsets
	}
}

// debug is what the test knows when it is stuck.
func (c *chaos) debug(p *crashProc) string {
	st := make([]string, len(c.streamMs))
	for i := range c.streamMs {
		st[i] = time.UnixMilli(c.streamMs[i].Load()).UTC().Format(time.RFC3339)
	}
	alive := "running"
	if p.exited() {
		alive = "exited:\n" + tail(p.log.String(), 3000)
	}
	return fmt.Sprintf("stream times %v; sirenstream run %s", st, alive)
}

// compareWithReplay replays the input topics with `sirenstream replay`
// into fresh topics and compares: segment changes and churn alerts
// deduplicated by event_id (every duplicate byte-identical to its first
// copy) equal the replay's byte for byte, hence the final segments of every
// SIREN; dead letters are the same source records for the same reasons.
func (c *chaos) compareWithReplay() {
	t := c.t
	t.Helper()
	name := c.run.name
	out, err := exec.Command(c.bin, "replay", "--brokers", c.broker.addr, "--state-dir", filepath.Join(t.TempDir(), "replay"),
		"--output-topic", name+"-replay", "--churn-topic", name+"-replay-churn", "--progress", "off", "--log-level", "warn").CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	decodeID := func(m kafka.Message) string {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatalf("decode %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		return sc.EventID
	}
	var dups int
	for _, o := range []struct{ live, replay string }{
		{name + "-changes", name + "-replay"}, {name + "-churn", name + "-replay-churn"},
	} {
		live, n := chaosByID(t, testkit.ReadAllFresh(t, c.brokers, o.live), decodeID)
		ref, refDups := chaosByID(t, testkit.ReadAllFresh(t, c.brokers, o.replay), decodeID)
		dups += n
		if refDups != 0 {
			t.Errorf("the replay wrote %d duplicates to %s", refDups, o.replay)
		}
		if len(ref) == 0 && o.live == name+"-changes" {
			t.Fatalf("the replay wrote no segment changes")
		}
		diff := 0
		for id, v := range ref {
			if !bytes.Equal(live[id], v) {
				diff++
			}
		}
		if diff > 0 || len(live) != len(ref) {
			t.Errorf("%s: %d distinct event_ids, the replay %d; %d of the replay's missing or different", o.live, len(live), len(ref), diff)
		}
		if o.live == name+"-changes" {
			final := chaosFinalSegments(t, live)
			want := chaosFinalSegments(t, ref)
			same := 0
			for s, segs := range want {
				if final[s] == segs {
					same++
				}
			}
			if same != len(want) || len(final) != len(want) {
				t.Errorf("final segments: %d of %d SIRENs as in the replay (live has %d)", same, len(want), len(final))
			}
			t.Logf("%s: %d distinct segment changes (%d duplicates re-emitted after faults, byte-identical), equal to the replay's; final segments of %d SIRENs equal",
				o.live, len(live), n, len(want))
		}
	}
	liveDLQ := chaosDLQ(testkit.ReadAllFresh(t, c.brokers, name+"-dlq"))
	refDLQ := chaosDLQ(testkit.ReadAllFresh(t, c.brokers, name+"-replay-dlq"))
	if fmt.Sprint(liveDLQ) != fmt.Sprint(refDLQ) {
		t.Errorf("dead letters differ: live %v, replay %v", liveDLQ, refDLQ)
	}
	t.Logf("dead letters: %d, the same as the replay's (duplicates of re-sent produce requests)", len(refDLQ))
}

// chaosByID maps event_id to bytes; a repeated id must repeat the bytes.
func chaosByID(t *testing.T, msgs []kafka.Message, id func(kafka.Message) string) (map[string][]byte, int) {
	t.Helper()
	out := map[string][]byte{}
	dups := 0
	for _, m := range msgs {
		k := id(m)
		if prev, ok := out[k]; ok {
			dups++
			if !bytes.Equal(prev, m.Value) {
				t.Errorf("%s/%d@%d repeats %s with other bytes", m.Topic, m.Partition, m.Offset, k)
			}
			continue
		}
		out[k] = m.Value
	}
	return out, dups
}

// chaosFinalSegments is each SIREN's segments after its last change.
func chaosFinalSegments(t *testing.T, byID map[string][]byte) map[string]string {
	t.Helper()
	type last struct {
		seq  int64
		segs string
	}
	m := map[string]last{}
	for _, v := range byID {
		sc, err := schemas.DecodeSegmentChange(v)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := m[sc.SIREN]; !ok || int64(sc.Seq) > l.seq {
			m[sc.SIREN] = last{seq: int64(sc.Seq), segs: fmt.Sprint(sc.Segments)}
		}
	}
	out := map[string]string{}
	for s, l := range m {
		out[s] = l.segs
	}
	return out
}

// chaosDLQ is the sorted set of dead letters' reasons and sources.
func chaosDLQ(msgs []kafka.Message) []string {
	set := map[string]bool{}
	for _, m := range msgs {
		set[testkit.DLQKey(m)] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// chaosWarns counts the processor's WARN lines about broker faults.
func chaosWarns(log string) string {
	return fmt.Sprintf("%d task restarts, %d group rejoin waits logged (WARN)",
		strings.Count(log, "task failed on a broker fault"), strings.Count(log, "consumer group: waiting for next generation"))
}

func events(ends map[string]int64) int64 {
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}
