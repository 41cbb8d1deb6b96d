package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimit is --memory-limit auto's limit outside a container with a memory limit:
// what keeps a 4-partition instance with 1M SIRENs under 1 GiB of RSS on a day of traffic
// (BENCHMARKS.md round 12: peak RSS 928-1,016 MiB without it).
const defaultMemoryLimit = 768 << 20

const memoryLimitHelp = `soft limit of the Go heap (GOMEMLIMIT) for this process: a size (768MiB, 2GiB, or bytes), "auto" or "off". auto: GOMEMLIMIT from the environment when it is set, else 75 % of the container's memory limit (cgroup memory.max) when there is one, else 768MiB (keeps a 4-partition, 1M-SIREN instance under 1 GiB of RSS; raise it, or use off, for more partitions per instance: near the limit the Go GC runs more often)`

// autoGCPercent is --gc-percent auto's GC target under a soft limit: the heap may grow to 4×
// what is live before a collection, and the soft limit caps it. Measured (BENCHMARKS.md round
// 13): on the 10k bench the full pipeline's CPU per record fell ~20 % against Go's default of
// 100, the latency run's ~14 %; at 1M SIRENs, where the live heap is near the limit, the limit
// decides either way.
const autoGCPercent = 300

const gcPercentHelp = `target of the Go GC (GOGC) for this process: a percentage, "auto" or "off". auto: GOGC from the environment when it is set, else 300 when the Go heap has a soft limit (--memory-limit), else Go's default 100. off: collect only near the soft limit (needs one)`

// heapFlags are the Go heap's flags of run, replay, demo and bench.
type heapFlags struct{ memoryLimit, gcPercent string }

func (h *heapFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.memoryLimit, "memory-limit", "auto", memoryLimitHelp)
	fs.StringVar(&h.gcPercent, "gc-percent", "auto", gcPercentHelp)
}

// heapSettings is what heapFlags.apply set, and where each value came from.
type heapSettings struct {
	limit     int64 // 0: none
	limitFrom string
	gcPercent int // -1: off
	gcFrom    string
}

// apply sets the Go heap's soft limit and GC target from the flags (after every other flag was
// checked: a usage error stays one line).
func (h heapFlags) apply() (heapSettings, error) {
	var hs heapSettings
	var err error
	if hs.limit, hs.limitFrom, err = applyMemoryLimit(h.memoryLimit); err != nil {
		return hs, err
	}
	if hs.gcPercent, hs.gcFrom, err = resolveGCPercent(h.gcPercent, os.Getenv("GOGC"), hs.limit); err != nil {
		return hs, err
	}
	if hs.gcFrom != "GOGC" { // else the runtime applied it at start
		debug.SetGCPercent(hs.gcPercent)
	}
	return hs, nil
}

// resolveGCPercent turns a --gc-percent value into GOGC's (-1: off) and says where it came
// from. env is GOGC's value; limit the soft limit in force (0: none).
func resolveGCPercent(v, env string, limit int64) (int, string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto", "":
		if env != "" {
			if strings.EqualFold(env, "off") {
				return -1, "GOGC", nil
			}
			n, err := strconv.Atoi(env)
			if err != nil || n < 0 {
				return 0, "", fmt.Errorf("GOGC %q: want off or a percentage", env)
			}
			return n, "GOGC", nil
		}
		if limit > 0 {
			return autoGCPercent, "auto (under the soft limit)", nil
		}
		return 100, "auto (Go's default: no soft limit)", nil
	case "off":
		if limit == 0 {
			return 0, "", errors.New("--gc-percent off needs a soft limit (--memory-limit): without one the heap would grow without bound")
		}
		return -1, "--gc-percent off", nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, "", fmt.Errorf("--gc-percent %q: want auto, off or a percentage of at least 1", v)
	}
	return n, "--gc-percent", nil
}

// cgroupFiles are read, in order, for the container's memory limit (cgroup v2, then v1).
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// resolveMemoryLimit turns a --memory-limit value into bytes (0: no limit) and says where it
// came from. env is GOMEMLIMIT's value; readFile reads a cgroup file.
func resolveMemoryLimit(v, env string, readFile func(string) ([]byte, error)) (int64, string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0":
		return 0, "--memory-limit off", nil
	case "auto", "":
		if env != "" {
			n, err := parseSize(env)
			if err != nil && env != "off" {
				return 0, "", fmt.Errorf("GOMEMLIMIT %q: %w", env, err)
			}
			return n, "GOMEMLIMIT", nil
		}
		for _, f := range cgroupFiles {
			b, err := readFile(f)
			if err != nil {
				continue
			}
			s := strings.TrimSpace(string(b))
			n, err := strconv.ParseInt(s, 10, 64)
			if s == "max" || err != nil || n <= 0 || n >= 1<<60 {
				break // no limit (v1 writes a huge number)
			}
			return n / 4 * 3, "75 % of the container's memory limit (" + f + ")", nil
		}
		return defaultMemoryLimit, "default (no container memory limit found)", nil
	}
	n, err := parseSize(v)
	if err != nil {
		return 0, "", fmt.Errorf("--memory-limit %q: %w", v, err)
	}
	return n, "--memory-limit", nil
}

// parseSize parses bytes with an optional KiB, MiB, GiB or TiB suffix (GOMEMLIMIT's units).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for i, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if rest, ok := strings.CutSuffix(s, u); ok {
			s, mult = rest, int64(1)<<(10*(i+1))
			break
		}
	}
	s = strings.TrimSuffix(s, "B")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 768MiB, 2GiB or a number of bytes")
	}
	if n > (1<<62)/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

// applyMemoryLimit sets the Go heap's soft limit from --memory-limit and returns it (0: none)
// and where it came from, for the start-up log.
func applyMemoryLimit(v string) (int64, string, error) {
	n, src, err := resolveMemoryLimit(v, os.Getenv("GOMEMLIMIT"), os.ReadFile)
	if err != nil {
		return 0, "", err
	}
	if src == "GOMEMLIMIT" {
		return n, src, nil // the runtime applied it at start
	}
	if n == 0 {
		debug.SetMemoryLimit(1<<63 - 1)
	} else {
		debug.SetMemoryLimit(n)
	}
	return n, src, nil
}
