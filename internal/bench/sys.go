package bench

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   int64  `json:"mem_total_bytes"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT), 0 when unset.
	MemoryLimit int64 `json:"go_memory_limit_bytes,omitempty"`
}

func machine() Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.MemTotal = procKB("/proc/meminfo", "MemTotal:")
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		m.MemoryLimit = l
	}
	return m
}

// procKB returns the value of a "Key:   123 kB" line of a /proc file in bytes
// (0 when missing).
func procKB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		fields := strings.Fields(line[len(key):])
		if len(fields) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(fields[0], 10, 64)
		return v << 10
	}
	return 0
}

// cpuTime is the user+sys CPU time of this process so far (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU is the user+sys CPU time of another process (the child broker),
// from /proc/PID/stat; 0 when unknown.
func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// peakRSS tracks the peak resident set size of a stage. Linux resets VmHWM to
// the current RSS when "5" is written to /proc/self/clear_refs; without that
// (other OSes, restricted /proc) the figure is getrusage's maxrss, a
// process-lifetime peak, and Reset reports false.
type peakRSS struct{ resettable bool }

func (p *peakRSS) Reset() bool {
	p.resettable = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	return p.resettable
}

// Peak returns the peak RSS in bytes since Reset (or the process lifetime).
func (p *peakRSS) Peak() int64 {
	if p.resettable {
		if v := procKB("/proc/self/status", "VmHWM:"); v > 0 {
			return v
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}

// currentRSS is VmRSS now.
func currentRSS() int64 { return procKB("/proc/self/status", "VmRSS:") }

// diskUsage returns the bytes allocated on disk (st_blocks) by the files
// under dir, and their apparent size. Badger preallocates memtable WAL files
// (sparse), so the allocated figure is the honest one.
func diskUsage(dir string) (allocated, apparent int64) {
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		} else {
			allocated += fi.Size()
		}
		return nil
	})
	return allocated, apparent
}

// heapAtPeak (env SIRENSTREAM_BENCH_HEAP_AT_PEAK=file): a heap profile is
// written to file whenever a stage's anonymous RSS grows by 10 % over its
// previous peak, so the file holds the heap of the last big peak.
var heapAtPeak = os.Getenv("SIRENSTREAM_BENCH_HEAP_AT_PEAK")

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}
