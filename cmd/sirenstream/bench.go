package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sirenstream/sirenstream/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("bench", `Measure throughput, latency and scale in one run, against baselines, on the
same pre-produced topics (see BENCHMARKS.md): raw kafka-go consumption, decode
only, decode + engine with in-memory state, and the full pipeline (Replay with
Badger and Kafka outputs). Then a latency run at a fixed input rate (live
processor) and, with --scale, RSS, disk and day-change sweep time at 10k, 100k
and 1M SIRENs. By default the embedded broker runs as a child process
(sirenstream broker) so the CPU figures separate processor from broker.`, stdout)
	events := fs.Int("events", 1_000_000, "events to pre-produce")
	sirens := fs.Int("sirens", 10_000, "companies (SIRENs) in the pre-produced data (≤ 1,000,000)")
	partitions := fs.Int("partitions", 4, "partitions of the benchmark topics")
	seed := fs.Int64("seed", 1, "generator seed")
	stages := fs.String("stages", strings.Join(bench.AllStages, ","), "throughput stages to run (comma list; 'none' for none). floor-io: the inputs consumed raw while the full stage's outputs of the same round are written again, nothing computed (needs full)")
	rounds := fs.Int("rounds", 1, "run the throughput stages this many times in turn and report each stage's median round (ratios within a round)")
	rate := fs.Int("rate", 10_000, "input rate of the latency run, events/s")
	latency := fs.Duration("latency", 20*time.Second, "duration of the latency run (0 disables it)")
	scale := fs.Bool("scale", false, "also run the scale test (takes minutes)")
	scaleSizes := fs.String("scale-sizes", "10000,100000,1000000", "SIREN counts of the scale test")
	sirenDaily := fs.Bool("siren-daily", true, "the full stage writes siren-daily, as run does by default (one record per SIREN per day change); false measures without it")
	warm := fs.Bool("warm", false, "also run the warm test: one day of traffic (1–5 records per SIREN, all topics) into a store holding 90 days of state, then its floors: raw + a read of each record's state, + its decoding; raw while the day's outputs are written again (floor-io), + every state scanned (floor-day) (takes minutes)")
	warmSizes := fs.String("warm-sizes", "100000,1000000", "SIREN counts of the warm test")
	broker := fs.String("broker", "child", "child: embedded broker in a child process; inproc: in this process; or host:port of a running broker")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (samples of each throughput stage carry the label stage=NAME: go tool pprof -tagfocus stage=full)")
	traceFile := fs.String("trace", "", "write a runtime execution trace of the whole run to this file (go tool trace; -pprof=sync shows where goroutines wait)")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end to this file")
	workDir := fs.String("work-dir", "", "directory for the temporary Badger stores (default: the system temp dir)")
	logLevel := fs.String("log-level", "error", "log level of the processor")
	var heap heapFlags
	heap.register(fs)
	fs.String("config", "", "YAML config file; keys are these flag names")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if _, err := heap.apply(); err != nil {
		return usageErr("%v", err)
	}
	log, err := newLogger("console", *logLevel, stderr)
	if err != nil {
		return err
	}
	if *rounds < 1 {
		return usageErr("--rounds %d: want at least 1", *rounds)
	}
	cfg := bench.Config{Events: *events, SIRENs: *sirens, Partitions: *partitions, Seed: *seed, WorkDir: *workDir, Logger: log, Rounds: *rounds, NoSirenDaily: !*sirenDaily}
	if *stages != "none" && *stages != "" {
		cfg.Stages = strings.Split(*stages, ",")
	} else {
		cfg.Stages = []string{}
	}
	sizes, err := parseSizes("--scale-sizes", *scaleSizes)
	if err != nil {
		return err
	}
	wsizes, err := parseSizes("--warm-sizes", *warmSizes)
	if err != nil {
		return err
	}
	if !*asJSON {
		cfg.Progress = func(format string, a ...any) { fmt.Fprintf(stderr, "… "+format+"\n", a...) }
	}
	for _, rec := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {*traceFile, trace.Start, trace.Stop}} {
		if rec.path == "" {
			continue
		}
		f, err := os.Create(rec.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := rec.start(f); err != nil {
			return err
		}
		defer rec.stop()
	}

	switch *broker {
	case "inproc":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(*partitions), kfake.GroupMinSessionTimeout(time.Second))
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer c.Close()
		cfg.Brokers = c.ListenAddrs()
	case "child":
		addr, pid, stop, err := startChildBroker(*partitions)
		if err != nil {
			return err
		}
		defer stop()
		cfg.Brokers, cfg.BrokerPID = []string{addr}, pid
	default:
		cfg.Brokers = strings.Split(*broker, ",")
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}

	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *latency > 0 {
		if res.Latency, err = bench.RunLatency(ctx, cfg, bench.LatencyConfig{Rate: *rate, Duration: *latency}); err != nil {
			return err
		}
	}
	if *scale {
		if res.Scale, err = bench.RunScale(ctx, cfg, sizes); err != nil {
			return err
		}
	}
	if *warm {
		if res.Warm, err = bench.RunWarm(ctx, cfg, wsizes); err != nil {
			return err
		}
	}
	if *memProfile != "" {
		runtime.GC()
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.WriteText(stdout)
	return nil
}

// startChildBroker runs `sirenstream broker` (this executable) on a free port
// and returns its address, pid and a stop function.
func startChildBroker(partitions int) (addr string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(exe, "broker", "--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(partitions))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start child broker: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "broker listening on "); ok {
				select {
				case lines <- a:
				default:
				}
			}
		}
	}()
	select {
	case addr = <-lines:
		return addr, cmd.Process.Pid, stop, nil
	case <-time.After(15 * time.Second):
		stop()
		return "", 0, nil, errors.New("child broker did not report its address within 15s")
	}
}

// parseSizes parses a comma list of positive SIREN counts.
func parseSizes(flag, list string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || n > 1_000_000 {
			return nil, usageErr("%s %q: want positive integers up to 1,000,000", flag, list)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
