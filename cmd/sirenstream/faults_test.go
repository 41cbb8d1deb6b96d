package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/state"
)

// ftProc is a `sirenstream` subprocess.
type ftProc struct {
	cmd    *exec.Cmd
	stdout testkit.LockedBuffer
	stderr testkit.LockedBuffer
	done   chan struct{}
	err    error
}

func ftStart(t *testing.T, bin string, env []string, args ...string) *ftProc {
	t.Helper()
	p := &ftProc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test after timeout.
func (p *ftProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%v did not exit within %s; stderr:\n%s", p.cmd.Args, timeout, ftTail(p.stderr.String(), 3000))
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// waitFor polls stderr for s.
func (p *ftProc) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("%v exited (%v) before logging %q; stderr:\n%s", p.cmd.Args, p.err, s, ftTail(p.stderr.String(), 3000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in stderr after %s:\n%s", s, timeout, ftTail(p.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *ftProc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t, 60*time.Second)
}

// TestSecondProcessOnStateDirIsRefused: the state directory is locked; a
// second `sirenstream run` on it exits non-zero at once saying so, and the
// first keeps running and stops cleanly.
func TestSecondProcessOnStateDirIsRefused(t *testing.T) {
	bin := buildBinary(t)
	_, brokers := testkit.Cluster(t, 2)
	dir := t.TempDir()
	args := []string{"run", "--brokers", brokers[0], "--state-dir", dir, "--log-format", "console", "--group", "lock-test"}
	first := ftStart(t, bin, nil, args...)
	first.waitFor(t, "processor started", 60*time.Second)

	second := ftStart(t, bin, nil, args...)
	if code := second.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("second run on a locked state dir exited 0; stderr:\n%s", second.stderr.String())
	}
	if msg := second.stderr.String(); !strings.Contains(msg, "locked") || !strings.Contains(msg, dir) {
		t.Errorf("second run's error does not say the directory is locked:\n%s", msg)
	} else {
		t.Logf("second run: %s", strings.TrimSpace(msg))
	}
	select {
	case <-first.done:
		t.Fatalf("the first process stopped: %v\n%s", first.err, ftTail(first.stderr.String(), 3000))
	default:
	}
	if code := first.stop(t); code != 0 {
		t.Fatalf("first run exited %d after SIGTERM:\n%s", code, ftTail(first.stderr.String(), 3000))
	}
}

// TestCorruptStateDirExitsNonZero: damaged Badger files stop `sirenstream
// run` at startup with a non-zero exit and an error naming corrupt state,
// before it touches Kafka.
func TestCorruptStateDirExitsNonZero(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, dir string)
	}{
		{"garbage MANIFEST", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), bytes.Repeat([]byte("garbage!"), 64), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"table footer overwritten", func(t *testing.T, dir string) {
			tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			if len(tables) == 0 {
				t.Skip("no table written")
			}
			f, err := os.OpenFile(tables[0], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, 64), st.Size()-64); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := processor.OpenStore(state.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			var puts []state.KV
			for i := range 200 {
				puts = append(puts, state.KV{SIREN: gen.SIREN(i), Value: bytes.Repeat([]byte{byte(i)}, 100)})
			}
			if err := s.Commit(0, puts, state.Checkpoint{Offsets: map[string]int64{"usage": 200}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.corrupt(t, dir)
			p := ftStart(t, bin, nil, "run", "--brokers", "127.0.0.1:1", "--state-dir", dir, "--log-format", "console")
			code := p.wait(t, 30*time.Second)
			msg := p.stderr.String()
			if code == 0 || !strings.Contains(msg, "corrupt") {
				t.Fatalf("exit %d, want non-zero with a corrupt-state error; stderr:\n%s", code, ftTail(msg, 3000))
			}
			t.Logf("exit %d: %s", code, ftTail(strings.TrimSpace(msg), 400))
		})
	}
}

// TestDiskFullStopsWithError: the state directory's filesystem is (nearly)
// full when the processor has records to commit. It stops with exit 1 and
// an error saying so (not a SIGBUS crash in Badger's mmapped files); after space is freed, a restart on the same directory
// finishes the input and the output equals an undisturbed run: nothing was
// committed past the last durable state. Needs a tmpfs mount (root).
func TestDiskFullStopsWithError(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	stateDir := filepath.Join(dir, "state")
	bin := buildBinary(t)
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)

	data := testkit.Generated(t, gen.Config{SIRENs: 80, Days: 40, Seed: 9})
	half := len(data) / 2
	testkit.Produce(t, brokers, data[:half]...)
	args := []string{"run", "--brokers", brokers[0], "--state-dir", stateDir, "--log-format", "console", "--group", "disk-test", "--commit-interval", "20ms"}
	p := ftStart(t, bin, nil, args...)
	ftWaitOutputs(t, brokers, p, 1)

	if code := p.stop(t); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, ftTail(p.stderr.String(), 3000))
	}

	// The filesystem fills up (40 MiB left: enough for Badger to open, not
	// for it to write safely) while the rest of the input arrives. The input
	// is all there when the processor starts, so its merge order — and so
	// every output it flushes before the failed commit — is the one of an
	// undisturbed run.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break // ENOSPC
		}
	}
	if st, err := filler.Stat(); err != nil || filler.Truncate(st.Size()-40<<20) != nil {
		t.Fatalf("filler: %v", err)
	}
	filler.Close()
	testkit.Produce(t, brokers, data[half:]...)
	p = ftStart(t, bin, nil, args...)
	code := p.wait(t, 60*time.Second)
	msg := p.stderr.String()
	// Exit 1 with our error, not a crash (Badger would SIGBUS on its mmapped files).
	if code != 1 || !strings.Contains(msg, "not enough free disk space") || strings.Contains(msg, "fatal error") {
		t.Fatalf("exit %d, want 1 with a clear disk space error; stderr:\n%s", code, ftTail(msg, 3000))
	}
	t.Logf("disk full: exit %d: %s", code, ftTail(strings.TrimSpace(msg), 600))

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	p = ftStart(t, bin, nil, args...)
	ftWaitCaughtUp(t, &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}, "disk-test", parts, p, 90*time.Second, 200*time.Millisecond)
	if code := p.stop(t); code != 0 {
		t.Fatalf("restart exited %d:\n%s", code, ftTail(p.stderr.String(), 3000))
	}

	// Reference: the same input processed without fault, in memory.
	_, out := testkit.ReplayToMemory(t, brokers, processor.ReplayOptions{OutputTopic: "segment-changes"})
	want := map[string]string{}
	for _, m := range out {
		if m.Topic == "segment-changes" {
			want[string(m.Key)+"|"+string(m.Value)] = ""
		}
	}
	got := map[string]string{}
	for _, m := range testkit.ReadAll(t, brokers, "segment-changes") {
		got[string(m.Key)+"|"+string(m.Value)] = ""
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("after disk full and restart: %d distinct segment changes, undisturbed run %d", len(got), len(want))
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Fatal("a segment change of the undisturbed run is missing or different")
		}
	}
}

// poll calls cond every interval until it holds; it fails the test if the
// process exits first, and returns false with cond's last reason after
// timeout.
func (p *ftProc) poll(t *testing.T, timeout, interval time.Duration, cond func() (bool, string)) (bool, string) {
	t.Helper()
	return testkit.Poll(timeout, interval, func() (bool, string) {
		done, why := cond()
		if !done {
			select {
			case <-p.done:
				t.Fatalf("processor exited: %v\n%s", p.err, ftTail(p.stderr.String(), 3000))
			default:
			}
		}
		return done, why
	})
}

// ftWaitOutputs polls segment-changes until it holds n records.
func ftWaitOutputs(t *testing.T, brokers []string, p *ftProc, n int) {
	t.Helper()
	if ok, _ := p.poll(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		msgs, err := load.ReadAll(ctx, brokers, nil, nil, "segment-changes")
		cancel()
		return err == nil && len(msgs) >= n, ""
	}); !ok {
		t.Fatalf("no output after 60s:\n%s", ftTail(p.stderr.String(), 3000))
	}
}

// ftWaitCaughtUp polls the consumer group's committed offsets (the
// processor commits them after the state) until they reach the inputs' end
// offsets.
func ftWaitCaughtUp(t *testing.T, client *kafka.Client, group string, parts int, p *ftProc, timeout, interval time.Duration) {
	t.Helper()
	if ok, why := p.poll(t, timeout, interval, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ftGroupCaughtUp(ctx, client, group, parts)
	}); !ok {
		t.Fatalf("not caught up after %s (%s):\n%s", timeout, why, ftTail(p.stderr.String(), 3000))
	}
}

// TestSecretsNeverLogged: `sirenstream run` authenticates with a SASL
// password from SIRENSTREAM_SASL_PASSWORD (then from --sasl-password-file),
// logs at debug level, processes records — and the password appears nowhere
// in its output.
func TestSecretsNeverLogged(t *testing.T) {
	const user, secret = "svc-sirenstream", "Tr0ub4dor-SECRET-x9q"
	bin := buildBinary(t)
	_, brokers := testkit.Cluster(t, 2, kfake.EnableSASL(), kfake.Superuser("PLAIN", user, secret))
	k := processor.Kafka{Brokers: brokers, SASL: plain.Mechanism{Username: user, Password: secret}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := processor.EnsureTopics(ctx, k, processor.Topics{}, 2, 1, nil); err != nil {
		t.Fatal(err)
	}
	data := testkit.Generated(t, gen.Config{SIRENs: 20, Days: 10, Seed: 4, BadRate: 0.05})
	w := load.Writer(brokers, processor.Transport(k))
	if err := w.WriteMessages(ctx, data...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	passFile := filepath.Join(t.TempDir(), "sasl-password")
	if err := os.WriteFile(passFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"env", []string{"SIRENSTREAM_SASL_PASSWORD=" + secret}, nil},
		{"file", nil, []string{"--sasl-password-file", passFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--brokers", brokers[0], "--state-dir", t.TempDir(), "--group", "secret-" + tc.name,
				"--sasl-mechanism", "PLAIN", "--sasl-username", user, "--log-level", "debug", "--log-format", "console"}, tc.args...)
			p := ftStart(t, bin, tc.env, args...)
			p.waitFor(t, "partitions assigned", 60*time.Second)
			// Wait until everything is processed: the group's offsets reach the end.
			client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: processor.Transport(k)}
			ftWaitCaughtUp(t, client, "secret-"+tc.name, 2, p, 60*time.Second, 100*time.Millisecond)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d:\n%s", code, ftTail(p.stderr.String(), 3000))
			}
			logs := p.stderr.String() + p.stdout.String()
			if !strings.Contains(logs, "DEBUG") {
				t.Fatalf("no debug lines logged:\n%s", ftTail(logs, 2000))
			}
			if strings.Contains(logs, secret) {
				t.Fatalf("the SASL password appears in the output")
			}
			t.Logf("%d bytes of debug logs, no password", len(logs))
		})
	}
}

func ftGroupCaughtUp(ctx context.Context, client *kafka.Client, group string, parts int) (bool, string) {
	lreq := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	freq := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, topic := range testkit.InputTopics {
		for p := 0; p < parts; p++ {
			lreq.Topics[topic] = append(lreq.Topics[topic], kafka.LastOffsetOf(p))
			freq.Topics[topic] = append(freq.Topics[topic], p)
		}
	}
	ends, err := client.ListOffsets(ctx, lreq)
	if err != nil {
		return false, err.Error()
	}
	committed, err := client.OffsetFetch(ctx, freq)
	if err != nil {
		return false, err.Error()
	}
	have := map[string]int64{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			have[fmt.Sprintf("%s/%d", topic, p.Partition)] = p.CommittedOffset
		}
	}
	for topic, ps := range ends.Topics {
		for _, p := range ps {
			k := fmt.Sprintf("%s/%d", topic, p.Partition)
			if p.LastOffset > 0 && have[k] != p.LastOffset {
				return false, fmt.Sprintf("%s committed %d of %d", k, have[k], p.LastOffset)
			}
		}
	}
	return true, ""
}

func ftTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
