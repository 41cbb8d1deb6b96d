package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// TestKill9LosesNothing is the crash test of the delivery contract: a
// `sirenstream run` process consuming 380k+ events is killed with SIGKILL
// at several random points (during start-up, or at random points of the
// input once it has finished a commit) and restarted on the same state
// directory each time; the broker (`sirenstream broker`, another process)
// outlives it. After each kill the stored checkpoints never go back, and a
// finished commit has changed them. When
// it has finished, its Badger state (every partition's checkpoint and SIREN
// states) equals that of an uninterrupted run over the same input, and its
// outputs deduplicated by event_id (dead letters by source coordinates)
// equal the uninterrupted run's, partition by partition; every duplicate is
// byte-identical to its first copy. SIRENSTREAM_CRASH_SEED picks other kill
// points.
func TestKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("drives broker and processor processes for about a minute")
	}
	seed := uint64(20260302)
	if s := os.Getenv("SIRENSTREAM_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SIRENSTREAM_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("kill points from seed %d (SIRENSTREAM_CRASH_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	testStart := time.Now()

	bin := buildBinary(t)
	addr, _ := startBroker(t, bin) // 3 partitions
	brokers := []string{addr}
	const parts = 3
	genCmd := exec.Command(bin, "generate", "--brokers", addr, "--sirens", "3000", "--days", "90",
		"--bad-rate", "0.001", "--seed", "7", "--partitions", strconv.Itoa(parts), "--outcomes=false")
	if out, err := genCmd.CombinedOutput(); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	ends := testkit.EndOffsets(t, brokers, testkit.InputTopics, parts)
	var events int64
	for _, e := range ends {
		events += e
	}
	if events < 100_000 {
		t.Fatalf("only %d events generated, the test needs 100k+", events)
	}
	t.Logf("%d events in %d partitions", events, parts)

	// Reference: one uninterrupted run.
	refStart := time.Now()
	ref := newCrashRun(t, bin, addr, "ref")
	p := ref.start("ref", 0)
	ref.waitDone("ref", ends, 120*time.Second)
	ref.stop(p)
	refDur := time.Since(refStart)
	refOutputs := ref.outputCount()
	t.Logf("uninterrupted run: %s, %d output records", refDur.Round(time.Millisecond), refOutputs)

	// The same input, killed at random points.
	crashStart := time.Now()
	run := newCrashRun(t, bin, addr, "crash")
	// Every start is in the same consumer group: a state directory belongs
	// to one group (spec §8), so a restart waits for the killed member's
	// session (6 s) to expire before it gets the partitions back.
	const kills = 5
	// One or two kills land during start-up (group join, changelog restore,
	// checkpoint load), at a random delay; the others while the process
	// consumes, at random points of the input (3-80 %, in order).
	starting := map[int]bool{}
	for _, i := range rng.Perm(kills)[:1+rng.IntN(2)] {
		starting[i] = true
	}
	points := make([]int64, kills)
	for i := range points {
		points[i] = events * int64(30+rng.IntN(771)) / 1000
	}
	slices.Sort(points)
	// The stored checkpoints after the last kill, per partition, and the
	// input records they cover.
	cps := map[int32]state.Checkpoint{}
	var durable int64
	killed := 0
	for i := 0; i < kills; i++ {
		const group = "crash"
		// One core for each killed process leaves the other to the broker and
		// this test's polling, which bounds how far past its kill point a
		// process gets.
		p := run.start(group, 1)
		// A consuming kill lands once the process has finished a commit and
		// consumed, from the stored checkpoints where it resumed, up to its
		// kill point, or half of the input left if that is less (both polled
		// on its /metrics; the poll lands up to ~80k records later, the
		// tasks consume in bursts). Kill points in records, not time, do not
		// depend on the machine's speed: a delay let a fast CI machine
		// consume the whole input before the third kill, and on a slow one
		// would kill every process before its first commit. With commits
		// every 20 ms the kills spread over the commit protocol's phases
		// (outputs written / state committed / group committed), over sweeps
		// and over the whole input.
		phase := "consuming"
		var target, consumed int64
		if starting[i] {
			phase = "starting"
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		} else {
			target = max(1, min(points[i]-durable, (events-durable)/2))
			consumed = p.waitProgress(target, 60*time.Second)
		}
		if p.exited() {
			t.Fatalf("processor exited on its own before kill %d:\n%s", i+1, tail(p.log.String(), 3000))
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		killed++
		before := durable
		changed, restoring := 0, 0
		now := crashCheckpoints(t, run.dir, parts)
		for part := int32(0); part < parts; part++ {
			cp, ok := now[part]
			if !ok {
				// Killed during a changelog restore (a bulk restore removes
				// the checkpoint first): the next start restores again, at
				// least up to the last checkpoint seen.
				restoring++
				continue
			}
			if prev, had := cps[part]; had && crashCovered(cp) < crashCovered(prev) {
				t.Fatalf("kill %d: partition %d's stored checkpoint went back from %d to %d input records", i+1, part, crashCovered(prev), crashCovered(cp))
			}
			if !reflect.DeepEqual(cp, cps[part]) {
				changed++
			}
			cps[part] = cp
		}
		durable = 0
		for _, cp := range cps {
			durable += crashCovered(cp)
		}
		t.Logf("kill %d (%s): SIGKILL %s after start, %d records consumed (kill point %d more); checkpoints cover %d → %d of %d input records (%.0f%%), %d changed, %d partitions restoring; %d output records so far",
			i+1, phase, time.Since(p.started).Round(time.Millisecond), consumed, target, before, durable, events, 100*float64(durable)/float64(events), changed, restoring, run.outputCount())
		if phase == "consuming" && changed == 0 {
			t.Fatalf("kill %d: the process finished a commit, yet no stored checkpoint changed", i+1)
		}
		if durable >= events*95/100 {
			t.Logf("stopping the kills: less than 5%% of the input left")
			break
		}
	}
	if killed < 3 {
		t.Fatalf("only %d kills before the input was consumed; the test wants at least 3", killed)
	}
	p = run.start("crash", 0)
	run.waitDone("crash", ends, 120*time.Second)
	run.stop(p)
	t.Logf("interrupted run: %d kills, %s including restarts; whole test so far %s",
		killed, time.Since(crashStart).Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))

	// Final state: identical, checkpoint and every SIREN.
	if got, want := testkit.DumpState(t, run.dir, parts, run.name+"-changelog"), testkit.DumpState(t, ref.dir, parts, ref.name+"-changelog"); got != want {
		t.Errorf("final Badger state after %d kills differs from the uninterrupted run (%d vs %d bytes of dump)", killed, len(got), len(want))
	}
	// Outputs: equal after deduplication, duplicates identical.
	changeID := func(m kafka.Message) string {
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			t.Fatalf("decode %s/%d@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
		return sc.EventID
	}
	dlqID := func(m kafka.Message) string {
		h := testkit.Headers(m)
		return h["source.topic"] + "/" + h["source.partition"] + "@" + h["source.offset"]
	}
	var dups int
	for _, o := range []struct {
		suffix string
		id     func(kafka.Message) string
	}{{"changes", changeID}, {"churn", changeID}, {"dlq", dlqID}} {
		want, refDups := crashDedup(t, testkit.ReadAllFresh(t, brokers, "ref-"+o.suffix), o.id)
		got, n := crashDedup(t, testkit.ReadAllFresh(t, brokers, "crash-"+o.suffix), o.id)
		dups += n
		if refDups != 0 {
			t.Errorf("the uninterrupted run wrote %d duplicates to ref-%s", refDups, o.suffix)
		}
		if len(want) == 0 {
			t.Errorf("ref-%s is empty", o.suffix)
		}
		for p := 0; p < parts; p++ {
			if len(got[p]) != len(want[p]) {
				t.Errorf("crash-%s/%d: %d distinct records, the uninterrupted run %d", o.suffix, p, len(got[p]), len(want[p]))
				continue
			}
			for i := range want[p] {
				if d := testkit.DiffMessage(got[p][i], want[p][i]); d != "" {
					t.Errorf("crash-%s/%d distinct record %d differs from the uninterrupted run: %s", o.suffix, p, i, d)
					break
				}
			}
		}
	}
	t.Logf("outputs equal after deduplication; %d duplicates re-emitted by restarts, all byte-identical", dups)
}

// crashRun is one logical processor (its state directory and output
// topics) that may be started several times.
type crashRun struct {
	t       *testing.T
	bin     string
	addr    string
	name    string
	dir     string
	procs   []*crashProc
	brokers []string
}

type crashProc struct {
	cmd     *exec.Cmd
	t       *testing.T
	http    string // its ops API, host:port
	log     *bytes.Buffer
	started time.Time
	done    chan struct{}
}

func (p *crashProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func newCrashRun(t *testing.T, bin, addr, name string) *crashRun {
	r := &crashRun{t: t, bin: bin, addr: addr, name: name, dir: filepath.Join(t.TempDir(), name), brokers: []string{addr}}
	t.Cleanup(func() {
		for _, p := range r.procs {
			if !p.exited() {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() && len(r.procs) > 0 {
			t.Logf("=== %s: last process log (tail)\n%s", name, tail(r.procs[len(r.procs)-1].log.String(), 3000))
		}
	})
	return r
}

// start starts a process of the run in consumer group group, with
// GOMAXPROCS=procs unless procs is 0.
func (r *crashRun) start(group string, procs int) *crashProc {
	r.t.Helper()
	p := &crashProc{t: r.t, http: freeAddr(r.t), log: &bytes.Buffer{}, started: time.Now(), done: make(chan struct{})}
	p.cmd = exec.Command(r.bin, "run", "--brokers", r.addr, "--group", group, "--state-dir", r.dir,
		"--http", p.http,
		"--session-timeout", "6s", "--log-format", "console", "--log-level", "warn",
		"--topic-segment-changes", r.name+"-changes", "--topic-churn-alerts", r.name+"-churn",
		"--topic-dlq", r.name+"-dlq", "--topic-changelog", r.name+"-changelog",
		// A commit every 20 ms (defaults: 100 ms, and 1 s or 250,000
		// records while catching up): many commits spread the kills over
		// the protocol's phases.
		"--commit-interval", "20ms", "--catchup-commit-interval", "20ms")
	p.cmd.Stderr = p.log
	if procs > 0 {
		p.cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	if err := p.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.procs = append(r.procs, p)
	go func() { // the only Wait: everyone else waits on p.done
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// waitProgress polls the process's /metrics until it has finished at least
// one commit and consumed at least n input records since it started, and
// returns the records consumed then.
func (p *crashProc) waitProgress(n int64, timeout time.Duration) int64 {
	t := p.t
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var consumed, commits int64
	for {
		if p.exited() {
			t.Fatalf("processor exited on its own after consuming %d records:\n%s", consumed, tail(p.log.String(), 3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor consumed %d records and finished %d commits in %s, the kill point is at %d records and 1 commit", consumed, commits, timeout, n)
		}
		if resp, err := client.Get("http://" + p.http + "/metrics"); err == nil { // refused until it listens
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("GET /metrics: %v", err)
			}
			ss, err := testkit.ParseMetrics(body)
			if err != nil {
				t.Fatalf("GET /metrics: %v", err)
			}
			consumed = int64(testkit.SumSamples(ss, "sirenstream_records_consumed_total", nil))
			commits = int64(testkit.SumSamples(ss, "sirenstream_commit_duration_seconds_count", nil))
			if consumed >= n && commits >= 1 {
				return consumed
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitDone polls until the group's committed offsets reach the end offsets
// of every input partition (the processor commits them after its state).
func (r *crashRun) waitDone(group string, ends map[string]int64, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := crashGroupOffsets(r.brokers, group, len(ends)/len(testkit.InputTopics))
		if mapsEqual(got, ends) {
			return
		}
		if p := r.procs[len(r.procs)-1]; p.exited() {
			r.t.Fatalf("%s exited before finishing:\n%s", r.name, tail(p.log.String(), 3000))
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: group offsets %v never reached the end offsets %v", r.name, got, ends)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (r *crashRun) stop(p *crashProc) {
	r.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		r.t.Fatalf("%s did not stop within 60s of SIGTERM", r.name)
	}
}

// outputCount is the number of records in the run's output topics.
func (r *crashRun) outputCount() int64 {
	r.t.Helper()
	client, done := testkit.Client(r.brokers)
	defer done()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, s := range []string{"-changes", "-churn", "-dlq"} {
		for p := 0; p < 3; p++ {
			req.Topics[r.name+s] = append(req.Topics[r.name+s], kafka.LastOffsetOf(p))
		}
	}
	resp, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		return 0 // topics not created yet
	}
	var n int64
	for _, ps := range resp.Topics {
		for _, po := range ps {
			if po.Error == nil && po.LastOffset > 0 {
				n += po.LastOffset
			}
		}
	}
	return n
}

// crashCheckpoints reads the checkpoints stored in dir by a killed process
// (partitions without one are missing). It reads a copy: Badger opens a
// store that was not closed only read-write (WAL replay), and the next
// process must find the directory as the kill left it.
func crashCheckpoints(t *testing.T, dir string, parts int) map[int32]state.Checkpoint {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", "--sparse=always", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", dir, err, out)
	}
	defer os.RemoveAll(cp)
	st, err := processor.OpenStore(state.Options{Dir: cp})
	if err != nil {
		t.Fatalf("open a copy of %s: %v", dir, err)
	}
	defer st.Close()
	out := map[int32]state.Checkpoint{}
	for p := int32(0); p < int32(parts); p++ {
		c, ok, err := st.Checkpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out[p] = c
		}
	}
	return out
}

// crashCovered is the number of input records a checkpoint covers.
func crashCovered(cp state.Checkpoint) int64 {
	var n int64
	for _, topic := range testkit.InputTopics {
		n += cp.Offsets[topic]
	}
	return n
}

// crashGroupOffsets is empty while the group has no offsets to fetch.
func crashGroupOffsets(brokers []string, group string, parts int) map[string]int64 {
	out, err := testkit.GroupOffsets(brokers, group, parts)
	if err != nil {
		return map[string]int64{}
	}
	return out
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// crashDedup keeps the first record per id, per partition in offset order,
// checks that every later copy is byte-identical to it and returns the
// number of duplicates.
func crashDedup(t *testing.T, msgs []kafka.Message, id func(kafka.Message) string) (map[int][]kafka.Message, int) {
	t.Helper()
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	first := map[string]kafka.Message{}
	out := map[int][]kafka.Message{}
	dups := 0
	for _, m := range msgs {
		k := id(m)
		if f, ok := first[k]; ok {
			dups++
			if d := testkit.DiffMessage(m, f); d != "" || m.Partition != f.Partition {
				t.Errorf("%s/%d@%d repeats %s (first at %d@%d) with different content: %s", m.Topic, m.Partition, m.Offset, k, f.Partition, f.Offset, d)
			}
			continue
		}
		first[k] = m
		out[m.Partition] = append(out[m.Partition], m)
	}
	return out, dups
}
