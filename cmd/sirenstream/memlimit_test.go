package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestResolveMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	v2, v1 := cgroupFiles[0], cgroupFiles[1]
	for _, c := range []struct {
		name, flag, env string
		cgroup          map[string]string
		want            int64
		from            string
	}{
		{"explicit", "512MiB", "", nil, 512 << 20, "--memory-limit"},
		{"explicit over env", "2GiB", "100MiB", nil, 2 << 30, "--memory-limit"},
		{"bytes", "1000000", "", nil, 1000000, "--memory-limit"},
		{"off", "off", "1GiB", map[string]string{v2: "4294967296\n"}, 0, "--memory-limit off"},
		{"auto: env", "auto", "1GiB", map[string]string{v2: "4294967296\n"}, 1 << 30, "GOMEMLIMIT"},
		{"auto: env off", "auto", "off", nil, 0, "GOMEMLIMIT"},
		{"auto: cgroup v2", "auto", "", map[string]string{v2: "4294967296\n"}, 3 << 30, "75 %"},
		{"auto: cgroup v1", "auto", "", map[string]string{v1: "2147483648\n"}, 3 << 29, "75 %"},
		{"auto: cgroup v2 max", "auto", "", map[string]string{v2: "max\n", v1: "2147483648"}, defaultMemoryLimit, "default"},
		{"auto: v1 unlimited", "auto", "", map[string]string{v1: "9223372036854771712\n"}, defaultMemoryLimit, "default"},
		{"auto: nothing", "auto", "", nil, defaultMemoryLimit, "default"},
	} {
		got, from, err := resolveMemoryLimit(c.flag, c.env, files(c.cgroup))
		if err != nil || got != c.want || !strings.HasPrefix(from, c.from) {
			t.Errorf("%s: %d from %q, %v; want %d from %q…", c.name, got, from, err, c.want, c.from)
		}
	}
	for _, bad := range []string{"lots", "-1MiB", "12XB", "1.5GiB", "99999999999TiB"} {
		if _, _, err := resolveMemoryLimit(bad, "", files(nil)); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
			t.Errorf("--memory-limit %q: %v, want an error naming the flag", bad, err)
		}
	}
	if _, _, err := resolveMemoryLimit("auto", "lots", files(nil)); err == nil || !strings.Contains(err.Error(), "GOMEMLIMIT") {
		t.Errorf("GOMEMLIMIT lots: %v", err)
	}
	if _, err := parseSize("0"); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("size 0: %v", err)
	}
}

func TestResolveGCPercent(t *testing.T) {
	for _, c := range []struct {
		name, flag, env string
		limit           int64
		want            int
		from            string
	}{
		{"auto under a limit", "auto", "", 768 << 20, autoGCPercent, "auto (under"},
		{"auto without a limit", "auto", "", 0, 100, "auto (Go's default"},
		{"auto: env", "auto", "150", 768 << 20, 150, "GOGC"},
		{"auto: env off", "", "off", 768 << 20, -1, "GOGC"},
		{"explicit", "50", "150", 0, 50, "--gc-percent"},
		{"off under a limit", "off", "", 1 << 30, -1, "--gc-percent off"},
	} {
		got, from, err := resolveGCPercent(c.flag, c.env, c.limit)
		if err != nil || got != c.want || !strings.HasPrefix(from, c.from) {
			t.Errorf("%s: %d from %q, %v; want %d from %q…", c.name, got, from, err, c.want, c.from)
		}
	}
	for _, bad := range []string{"lots", "0", "-5", "1.5"} {
		if _, _, err := resolveGCPercent(bad, "", 1<<30); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
			t.Errorf("--gc-percent %q: %v, want an error naming the flag", bad, err)
		}
	}
	if _, _, err := resolveGCPercent("off", "", 0); err == nil || !strings.Contains(err.Error(), "soft limit") {
		t.Errorf("--gc-percent off without a limit: %v, want an error", err)
	}
	if _, _, err := resolveGCPercent("auto", "lots", 0); err == nil || !strings.Contains(err.Error(), "GOGC") {
		t.Errorf("GOGC lots: %v", err)
	}
}
