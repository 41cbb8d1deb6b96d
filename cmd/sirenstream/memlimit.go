package main

import (
	"errors"
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
