package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
)

// buildBinary compiles the sirenstream command once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sirenstream")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// startBroker runs `sirenstream broker` as a separate process and returns its
// address (printed on stdout).
func startBroker(t *testing.T, bin string, args ...string) (addr string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(bin, append([]string{"broker", "--listen", "127.0.0.1:0", "--partitions", "3"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	lines := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "broker listening on ") {
				lines <- strings.TrimPrefix(sc.Text(), "broker listening on ")
			}
		}
	}()
	select {
	case addr = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not report its address")
	}
	return addr, cmd
}

// TestKcatConsumesFromBrokerProcess: a real external Kafka client (kcat)
// reads the processor's output from a `sirenstream broker` process, and
// `sirenstream run` stops cleanly on SIGTERM.
func TestKcatConsumesFromBrokerProcess(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it")
		}
		t.Skip("kcat not installed (apt-get install kcat)")
	}
	bin := buildBinary(t)
	addr, _ := startBroker(t, bin)
	brokers := []string{addr}

	sirenA, sirenB := gen.SIREN(11), gen.SIREN(12)
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	evs := []engine.Event{
		{Kind: engine.KindUsage, EventID: "u1", SIREN: sirenA, EventTime: t0, SiteID: "a", PostalCode: "75001", BytesUp: 10, BytesDown: 10},
		{Kind: engine.KindUsage, EventID: "u2", SIREN: sirenA, EventTime: t0 + 1000, SiteID: "b", PostalCode: "33000", BytesUp: 10, BytesDown: 10},
		{Kind: engine.KindUsage, EventID: "u3", SIREN: sirenB, EventTime: t0 + 2000, SiteID: "c", PostalCode: "59000", BytesUp: 10, BytesDown: 10},
		{Kind: engine.KindUsage, EventID: "u4", SIREN: sirenB, EventTime: t0 + 3000, SiteID: "d", PostalCode: "44000", BytesUp: 10, BytesDown: 10},
	}
	testkit.CreateTopics(t, brokers, 3)
	var msgs []kafka.Message
	for _, ev := range evs {
		msgs = append(msgs, testkit.Msg(t, ev))
	}
	testkit.Produce(t, brokers, msgs...)

	run := exec.Command(bin, "run", "--brokers", addr, "--state-dir", t.TempDir(), "--log-format", "console", "--commit-interval", "50ms")
	var runErr bytes.Buffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}

	// kcat polls until both segment changes are there.
	var keys []string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", "segment-changes", "-o", "beginning", "-e", "-q", "-f", "%k|%p|%o\n").Output()
		cancel()
		if err == nil {
			keys = nil
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if line != "" {
					keys = append(keys, strings.SplitN(line, "|", 2)[0])
				}
			}
			if len(keys) >= 2 {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(keys)
	want := []string{sirenA, sirenB}
	sort.Strings(want)
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("kcat read keys %v, want %v (run stderr:\n%s)", keys, want, runErr.String())
	}

	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run did not exit cleanly on SIGTERM: %v\n%s", err, runErr.String())
		}
	case <-time.After(30 * time.Second):
		_ = run.Process.Kill()
		t.Fatal("run did not stop within 30s of SIGTERM")
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := realMain([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "demo") {
		t.Fatalf("--help: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := realMain([]string{"run", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--state-dir") && !strings.Contains(out.String(), "-state-dir") {
		t.Fatalf("run --help: code %d, out %q", code, out.String())
	}
	errb.Reset()
	if code := realMain([]string{"run", "--state-dir", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--brokers is required") {
		t.Fatalf("run without brokers: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := realMain([]string{"nope"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: code %d", code)
	}
}

func TestFlagsFromEnvAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("brokers: [a:1, b:2]\ngroup: from-file\nstate-dir: /from/file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIRENSTREAM_GROUP", "from-env")
	fs := newFlagSet("run", "", &bytes.Buffer{})
	var f procFlags
	f.register(fs, "json")
	group := fs.String("group", "sirenstream", "")
	if err := parseFlags(fs, []string{"--config", cfg, "--state-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if f.kafka.brokers != "a:1,b:2" || *group != "from-env" || f.stateDir != "/from/flag" {
		t.Fatalf("precedence broken: brokers %q group %q state-dir %q", f.kafka.brokers, *group, f.stateDir)
	}
	if err := os.WriteFile(cfg, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs2 := newFlagSet("run", "", &bytes.Buffer{})
	var f2 procFlags
	f2.register(fs2, "json")
	if err := parseFlags(fs2, []string{"--config", cfg}); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("unknown config key: err %v", err)
	}
}
