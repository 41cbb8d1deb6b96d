package testkit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Sample is one sample of a Prometheus text exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// ParseMetrics parses a Prometheus text exposition (/metrics); a line it
// cannot parse is an error.
func ParseMetrics(body []byte) ([]Sample, error) {
	var out []Sample
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s := Sample{Name: m[1], Labels: map[string]string{}, Value: v}
		for _, l := range labelRe.FindAllStringSubmatch(m[2], -1) {
			s.Labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out, nil
}

// SumSamples adds the samples of name whose labels include every pair of
// match.
func SumSamples(ss []Sample, name string, match map[string]string) float64 {
	var total float64
	for _, s := range ss {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.Value
		}
	}
	return total
}
