package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/state"
)

// TestCLIBadInvocations runs the binary with bad (and borderline good)
// invocations: usage errors exit 2 whatever their source (flag, environment,
// config file), in one line and a hint, never the whole help.
func TestCLIBadInvocations(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	writeFile := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := writeFile("shared.yaml", "sirens: 10\ndays: 30\ngroup: g\nlisten: 127.0.0.1:0\n")
	misspelt := writeFile("misspelt.yaml", "brokrs: a:1\n")
	badValue := writeFile("bad.yaml", "commit-interval: soon\n")
	notYAML := writeFile("list.yaml", "- a\n- b\n")
	locked := t.TempDir()
	held, err := state.Open(state.Options{Dir: locked})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	for _, tc := range []struct {
		name    string
		args    []string
		env     []string
		code    int
		want    []string // in stderr
		notes   bool     // stderr may have more than the error and its hint
		wantOut string   // in stdout
	}{
		{name: "unknown flag", args: []string{"run", "--bogus"}, code: 2,
			want: []string{"sirenstream run: unknown flag --bogus\n", "run 'sirenstream run --help'"}},
		{name: "misspelt flag", args: []string{"replay", "--output-topik", "x"}, code: 2,
			want: []string{"unknown flag --output-topik (did you mean --output-topic?)"}},
		{name: "flag without value", args: []string{"run", "--brokers"}, code: 2,
			want: []string{"--brokers needs a value"}},
		{name: "stray argument", args: []string{"run", "now"}, code: 2,
			want: []string{`unexpected arguments ["now"]`}},
		{name: "unknown command", args: []string{"rn"}, code: 2,
			want: []string{`unknown command "rn" (did you mean run?)`, "run 'sirenstream --help'"}},
		{name: "duration without unit", args: []string{"run", "--commit-interval", "5"}, code: 2,
			want: []string{`--commit-interval "5": want a duration such as 500ms, 5s, 1m30s, 2h or 90d`}},
		{name: "duration with unit is accepted", args: []string{"run", "--commit-interval", "5s", "--session-timeout", "1d"}, code: 2,
			want: []string{"--brokers is required"}},
		{name: "negative duration", args: []string{"run", "--commit-interval=-5s"}, code: 2,
			want: []string{"--commit-interval -5s: must be positive"}},
		{name: "zero where 0 means forever", args: []string{"run", "--fault-deadline", "0"}, code: 2,
			want: []string{"--brokers is required"}},
		{name: "negative where negative means never", args: []string{"run", "--max-task-idle=-1s"}, code: 2,
			want: []string{"--brokers is required"}},
		{name: "date is accepted", args: []string{"replay", "--brokers", "a:1", "--from", "2026-03-01", "--to", "2026-04-01T00:00:00Z"}, code: 2,
			want: []string{"--output-topic is required"}},
		{name: "date in another form", args: []string{"replay", "--brokers", "a:1", "--output-topic", "o", "--from", "03/01/2026"}, code: 2,
			want: []string{`--from: "03/01/2026": want a date (2026-03-01, UTC midnight) or RFC3339`}},
		{name: "zero sirens", args: []string{"generate", "--brokers", "a:1", "--sirens", "0"}, code: 2,
			want: []string{"--sirens 0: must be positive (default 2000)"}},
		{name: "negative days", args: []string{"demo", "--days=-3"}, code: 2,
			want: []string{"--days -3: must be positive"}},
		{name: "zero cache", args: []string{"run", "--cache-sirens", "0"}, code: 2,
			want: []string{"--cache-sirens 0: must be positive"}},
		{name: "start date in another form", args: []string{"generate", "--brokers", "a:1", "--start", "2026/01/01"}, code: 2,
			want: []string{`--start: "2026/01/01": want a date (2026-03-01, UTC midnight) or RFC3339`}},
		{name: "missing CA file", args: []string{"run", "--brokers", "a:1", "--state-dir", dir, "--tls-ca", "/nonexistent.pem"}, code: 2,
			want: []string{"--tls-ca: open /nonexistent.pem"}},
		{name: "not a number", args: []string{"generate", "--sirens", "many"}, code: 2,
			want: []string{`--sirens "many": want a whole number`}},
		{name: "not a boolean", args: []string{"run", "--tls=maybe"}, code: 2,
			want: []string{`--tls="maybe": want true or false`}},
		{name: "bad environment value", args: []string{"run"}, env: []string{"SIRENSTREAM_COMMIT_INTERVAL=soon"}, code: 2,
			want: []string{`SIRENSTREAM_COMMIT_INTERVAL="soon": want a duration`}},
		{name: "misspelt environment variable", args: []string{"run", "--state-dir", dir}, env: []string{"SIRENSTREAM_BROKRES=a:1"}, code: 2, notes: true,
			want: []string{"SIRENSTREAM_BROKRES is not a setting of any command (did you mean SIRENSTREAM_BROKERS?)", "--brokers is required"}},
		{name: "another command's environment variable", args: []string{"run"}, env: []string{"SIRENSTREAM_SIRENS=5"}, code: 2,
			want: []string{"--brokers is required"}},
		{name: "misspelt config key", args: []string{"run", "--config", misspelt}, code: 2,
			want: []string{`unknown key "brokrs" (did you mean brokers?)`}},
		{name: "bad config value", args: []string{"run", "--config", badValue}, code: 2,
			want: []string{"commit-interval", "want a duration"}},
		{name: "config file missing", args: []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, code: 2,
			want: []string{"--config: open "}},
		{name: "config file not a map", args: []string{"run", "--config", notYAML}, code: 2,
			want: []string{"not a YAML map of flag names to values"}},
		{name: "one config file for every command", args: []string{"run", "--config", shared, "--state-dir", dir}, code: 2, notes: true,
			want: []string{"note: --config " + shared + ": days, listen, sirens not used by this command; ignored", "--brokers is required"}},
		{name: "rules file missing", args: []string{"replay", "--brokers", "a:1", "--output-topic", "o", "--state-dir", dir, "--rules", "/nonexistent.yaml"}, code: 2,
			want: []string{"--rules: open /nonexistent.yaml"}},
		{name: "locked state directory names the holder", args: []string{"replay", "--brokers", "127.0.0.1:1", "--output-topic", "o", "--state-dir", locked}, code: 1,
			want: []string{"state: directory locked by another store: " + locked + " is in use by process " + strconv.Itoa(os.Getpid())}},
		{name: "version", args: []string{"version"}, code: 0, wantOut: "sirenstream dev (commit "},
		{name: "help", args: []string{"run", "--help"}, code: 0, wantOut: "-status-interval duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(cleanEnv(), tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			errs := stderr.String()
			if code != tc.code {
				t.Fatalf("sirenstream %s: exit %d, want %d; stderr:\n%s", strings.Join(tc.args, " "), code, tc.code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, stdout.String())
			}
			if tc.code == 2 && !tc.notes && strings.Count(errs, "\n") != 2 {
				t.Errorf("a usage error is one line and a hint, got:\n%s", errs)
			}
			if strings.Contains(errs, "Flags (each") || strings.Count(errs, "state:") > 1 || strings.Contains(errs, ": :") {
				t.Errorf("stderr has the whole help or a repeated prefix:\n%s", errs)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(errs+stdout.String()))
		})
	}
}

// cleanEnv is the environment without SIRENSTREAM_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIRENSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestVersion: `sirenstream version` prints the version, commit and Go
// version; -ldflags sets the first two.
func TestVersion(t *testing.T) {
	bin := buildVersioned(t, "9.9.9", "abc123")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("sirenstream 9.9.9 (commit abc123, %s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if string(out) != want {
		t.Errorf("version printed %q, want %q", out, want)
	}
	if out, _ := exec.Command(bin, "--version").Output(); string(out) != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
	if out, _ := exec.Command(bin, "version", "--short").Output(); string(out) != "9.9.9\n" {
		t.Errorf("version --short printed %q", out)
	}
}

func buildVersioned(t *testing.T, version, commit string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sirenstream")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version="+version+" -X main.commit="+commit, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// TestRunTellsTheOperator: `sirenstream run` on a topic where most records
// carry another kind's schema id (a producer using a registry, the processor
// without one) logs each partition caught up once, a status line, and one
// dead-letter spike WARN naming wrong_schema and --schema-registry; /metrics
// has build_info, a state size above 0 and the restore gauges at 0; after
// a kill -9 the restart logs that it waits for the previous member's
// session.
func TestRunTellsTheOperator(t *testing.T) {
	bin := buildVersioned(t, "9.9.9", "abc123")
	const parts = 2
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	var msgs []kafka.Message
	for i := range 1200 {
		m := testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: fmt.Sprintf("u%d", i), SIREN: gen.SIREN(i % 60),
			EventTime: t0 + int64(i)*1000, SiteID: "s", PostalCode: "75001", BytesUp: 10, BytesDown: 10})
		if i%10 != 0 { // 90 %: framed with the outage schema's id
			binary.BigEndian.PutUint32(m.Value[1:5], 2)
		}
		msgs = append(msgs, m)
	}
	testkit.Produce(t, brokers, msgs...)

	dir := filepath.Join(t.TempDir(), "state")
	httpAddr := freeAddr(t)
	args := []string{"run", "--brokers", brokers[0], "--state-dir", dir, "--log-format", "console", "--group", "operator-test",
		"--status-interval", "1s", "--session-timeout", "4s", "--http", httpAddr}
	p := ftStart(t, bin, cleanEnv(), args...)
	p.waitFor(t, "dead letters spike", 60*time.Second)
	for part := range parts {
		p.waitFor(t, fmt.Sprintf("partition caught up: processing records as they arrive\t{\"partition\": %d", part), 30*time.Second)
	}
	p.waitFor(t, "INFO\tstatus\t", 30*time.Second)
	logs := p.stderr.String()
	for _, want := range []string{"wrong_schema: no schema registry is configured", "--schema-registry URL", "sirenstream run starting\t{\"version\": \"9.9.9\", \"commit\": \"abc123\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("run's log lacks %q:\n%s", want, ftTail(logs, 3000))
		}
	}
	if n := strings.Count(logs, "partition caught up"); n != parts {
		t.Errorf("%d caught-up lines for %d partitions, want one each", n, parts)
	}
	if n := strings.Count(logs, "dead letters spike"); n != 1 {
		t.Errorf("%d spike WARNs, want 1 (rate-limited)", n)
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tINFO\tstatus`).MatchString(logs) {
		t.Errorf("console log times are not dates:\n%s", ftTail(logs, 1000))
	}

	metrics := scrape(t, httpAddr)
	for _, want := range []string{
		`sirenstream_build_info{commit="abc123",version="9.9.9"} 1`,
		`sirenstream_restore_records_total{partition="0"} 0`,
		`sirenstream_restore_records_read{partition="1"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var size float64
	for _, m := range regexp.MustCompile(`sirenstream_state_size_bytes\{part="(?:lsm|vlog)"\} (\S+)`).FindAllStringSubmatch(metrics, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		size += v
	}
	if size <= 0 {
		t.Errorf("sirenstream_state_size_bytes sums to %v with a state directory on disk", size)
	}
	t.Logf("state size %v bytes; log:\n%s", size, ftTail(logs, 2500))

	// kill -9, then a restart: the join waits for the killed member's
	// session, and says so.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	q := ftStart(t, bin, cleanEnv(), args...)
	q.waitFor(t, "waiting for the previous member's session to expire", 30*time.Second)
	q.waitFor(t, "partitions assigned", 30*time.Second)
	if code := q.stop(t); code != 0 {
		t.Fatalf("restart exited %d after SIGTERM:\n%s", code, ftTail(q.stderr.String(), 3000))
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /metrics on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunWaitsForAnUnreachableBrokerAtStart: a broker that is down when
// `run` starts is retried with backoff, each attempt logged, and no state
// directory is created until it answers; then the run proceeds. With a
// short --fault-deadline it gives up with exit 1, leaving nothing behind.
func TestRunWaitsForAnUnreachableBrokerAtStart(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "state")

	t.Run("gives up at the fault deadline", func(t *testing.T) {
		start := time.Now()
		p := ftStart(t, bin, cleanEnv(), "run", "--brokers", addr, "--state-dir", dir, "--log-format", "console", "--fault-deadline", "2s")
		code := p.wait(t, 30*time.Second)
		logs := p.stderr.String()
		if code != 1 || !strings.Contains(logs, "brokers unreachable, retrying") || !strings.Contains(logs, "--fault-deadline") {
			t.Fatalf("exit %d, want 1 after retries naming --fault-deadline:\n%s", code, logs)
		}
		if el := time.Since(start); el < 2*time.Second {
			t.Errorf("gave up after %s, before the 2s deadline", el)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("a run that never reached a broker left %s behind (%v)", dir, err)
		}
	})

	t.Run("proceeds when the broker comes up", func(t *testing.T) {
		p := ftStart(t, bin, cleanEnv(), "run", "--brokers", addr, "--state-dir", dir, "--log-format", "console", "--group", "late-broker")
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(p.stderr.String(), "brokers unreachable, retrying") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no two retry lines:\n%s", p.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("state directory created before a broker answered (%v)", err)
		}
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		testkit.Cluster(t, 2, kfake.Ports(n))
		p.waitFor(t, "brokers reachable", 30*time.Second)
		p.waitFor(t, "partitions assigned", 30*time.Second)
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("no state directory once running: %v", err)
		}
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, ftTail(p.stderr.String(), 3000))
		}
	})
}
