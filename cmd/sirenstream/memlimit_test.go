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
