package main

import (
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/topology"
)

const contractDoc = "../../docs/contract.md"

// contract is what docs/contract.md names, by kind.
type contract struct {
	topics    []string
	schemas   map[string]int                 // file (schemas/x.avsc) → id
	fields    map[string][]string            // file → field paths (metrics.x, reasons[].y)
	metrics   []string                       // sirenstream_*
	endpoints []string                       // "GET /path"
	flags     map[string]map[string]struct{} // command → flag names
	planned   []plannedItem
}

type plannedItem struct {
	kind, name string
	file       string   // field: the schema file
	commands   []string // flag: the commands
	line       string
}

var (
	backticked  = regexp.MustCompile("`([^`]+)`")
	schemaHead  = regexp.MustCompile("^### `(schemas/[a-z_]+\\.avsc)` — id ([0-9]+)")
	firstCell   = regexp.MustCompile("^\\|\\s*`([^`]+)`")
	plannedLine = regexp.MustCompile("^- (topic|schema|field|flag|metric|endpoint) ")
)

// parseContract reads the doc's sections: the first backticked cell of
// each table row is the name; ### headings say which schema or commands a
// table is about; the Planned list is between its markers.
func parseContract(t *testing.T) contract {
	t.Helper()
	b, err := os.ReadFile(contractDoc)
	if err != nil {
		t.Fatalf("the contract lives in the repository: %v", err)
	}
	c := contract{schemas: map[string]int{}, fields: map[string][]string{}, flags: map[string]map[string]struct{}{}}
	var section, schema string
	var commands []string
	inPlanned := false
	for n, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section, schema, commands = strings.TrimPrefix(line, "## "), "", nil
			continue
		case strings.HasPrefix(line, "<!-- planned:begin"):
			inPlanned = true
			continue
		case strings.HasPrefix(line, "<!-- planned:end"):
			inPlanned = false
			continue
		}
		if inPlanned {
			if plannedLine.MatchString(line) {
				c.planned = append(c.planned, parsePlanned(t, line))
			} else if strings.TrimSpace(line) != "" {
				t.Fatalf("%s:%d: a planned item is \"- KIND `name` ...\" (topic, schema, field, flag, metric, endpoint): %q", contractDoc, n+1, line)
			}
			continue
		}
		if strings.HasPrefix(line, "### ") {
			schema, commands = "", nil
			if m := schemaHead.FindStringSubmatch(line); m != nil && section == "Schemas" {
				schema = m[1]
				c.schemas[schema], _ = strconv.Atoi(m[2])
			}
			if section == "Command line" {
				head, _, _ := strings.Cut(line, ":")
				for _, m := range backticked.FindAllStringSubmatch(head, -1) {
					commands = append(commands, m[1])
				}
			}
			continue
		}
		m := firstCell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		switch {
		case section == "Topics":
			c.topics = append(c.topics, name)
		case section == "Schemas" && schema != "":
			c.fields[schema] = append(c.fields[schema], name)
		case section == "Prometheus metrics":
			c.metrics = append(c.metrics, name)
		case section == "HTTP endpoints":
			c.endpoints = append(c.endpoints, name)
		case section == "Command line" && strings.HasPrefix(name, "--"):
			for _, cmd := range commands {
				if c.flags[cmd] == nil {
					c.flags[cmd] = map[string]struct{}{}
				}
				c.flags[cmd][strings.TrimPrefix(name, "--")] = struct{}{}
			}
		}
	}
	return c
}

func parsePlanned(t *testing.T, line string) plannedItem {
	kind := plannedLine.FindStringSubmatch(line)[1]
	head, _, _ := strings.Cut(line, " — ")
	ticks := backticked.FindAllStringSubmatch(head, -1)
	if len(ticks) == 0 {
		t.Fatalf("%s: planned item without a `name`: %q", contractDoc, line)
	}
	it := plannedItem{kind: kind, name: ticks[0][1], line: line}
	switch kind {
	case "field":
		if len(ticks) < 2 {
			t.Fatalf("%s: a planned field is \"- field `schemas/x.avsc` `path`\": %q", contractDoc, line)
		}
		it.file, it.name = ticks[0][1], ticks[1][1]
	case "flag":
		it.name = strings.TrimPrefix(it.name, "--")
		for _, m := range ticks[1:] {
			it.commands = append(it.commands, m[1])
		}
		if len(it.commands) == 0 {
			t.Fatalf("%s: a planned flag is \"- flag `--name` of `cmd`, ...\": %q", contractDoc, line)
		}
	}
	return it
}

// code is what the code has, by kind.
type code struct {
	topics    map[string]bool
	files     map[string]bool                // schemas/x.avsc
	fields    map[string]map[string]bool     // file → field paths
	metrics   map[string]bool                // sirenstream_*
	endpoints map[string]bool                // "GET /path"
	flags     map[string]map[string]struct{} // command → flag names
}

func readCode(t *testing.T) code {
	t.Helper()
	c := code{topics: map[string]bool{}, files: map[string]bool{}, fields: map[string]map[string]bool{}}
	for _, d := range topology.Define().All() {
		c.topics[d.DefaultName(topology.DefaultGroup)] = true
	}
	names, err := fs.Glob(schemas.Files, "*.avsc")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		b, err := schemas.Files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var rec avroType
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		file := "schemas/" + name
		c.files[file] = true
		c.fields[file] = map[string]bool{}
		rec.paths("", c.fields[file])
	}
	c.metrics, c.endpoints = scanSource(t)
	c.flags = map[string]map[string]struct{}{}
	for name, fs := range commandFlagSets() {
		c.flags[name] = map[string]struct{}{}
		fs.VisitAll(func(f *flag.Flag) { c.flags[name][f.Name] = struct{}{} })
	}
	return c
}

// avroType is the part of an Avro schema that names fields: a record's
// fields, an array's items, a union's branches.
type avroType struct {
	Type   json.RawMessage `json:"type"`
	Fields []struct {
		Name string          `json:"name"`
		Type json.RawMessage `json:"type"`
	} `json:"fields"`
	Items json.RawMessage `json:"items"`
}

// paths adds the field paths under prefix: "a", "rec.b", "arr[].c".
func (a avroType) paths(prefix string, out map[string]bool) {
	for _, f := range a.Fields {
		out[prefix+f.Name] = true
		nestedPaths(f.Type, prefix+f.Name, out)
	}
}

func nestedPaths(raw json.RawMessage, path string, out map[string]bool) {
	var union []json.RawMessage
	if json.Unmarshal(raw, &union) == nil {
		for _, u := range union {
			nestedPaths(u, path, out)
		}
		return
	}
	var t avroType
	if json.Unmarshal(raw, &t) != nil {
		return // a primitive type name
	}
	if len(t.Fields) > 0 {
		t.paths(path+".", out)
	}
	if len(t.Items) > 0 {
		nestedPaths(t.Items, path+"[]", out)
	}
}

var (
	metricName = regexp.MustCompile(`Namespace:\s*ns,\s*Name:\s*"([a-z0-9_]+)"`)
	metricDesc = regexp.MustCompile(`NewDesc\(\s*"(sirenstream_[a-z0-9_]+)"`)
	route      = regexp.MustCompile(`Handle(?:Func)?\(\s*"((?:GET|POST|PUT|DELETE|HEAD) [^"]+)"`)
)

// scanSource finds the Prometheus metrics (Namespace ns = "sirenstream")
// and HTTP routes declared in the repository's non-test Go files.
func scanSource(t *testing.T) (metrics, endpoints map[string]bool) {
	t.Helper()
	metrics, endpoints = map[string]bool{}, map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "../.." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricName.FindAllSubmatch(b, -1) {
			metrics["sirenstream_"+string(m[1])] = true
		}
		for _, m := range metricDesc.FindAllSubmatch(b, -1) {
			metrics[string(m[1])] = true
		}
		for _, m := range route.FindAllSubmatch(b, -1) {
			endpoints[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(metrics) == 0 || len(endpoints) == 0 {
		t.Fatalf("found %d metrics and %d routes in the source: the patterns of scanSource no longer match how they are declared", len(metrics), len(endpoints))
	}
	return metrics, endpoints
}

// TestContractDocMatchesTheCode: every topic, schema, field, flag,
// Prometheus metric and HTTP endpoint docs/contract.md names exists in the
// code, and every one the code has is in the doc; the Planned items are
// not in the code yet.
func TestContractDocMatchesTheCode(t *testing.T) {
	doc, have := parseContract(t), readCode(t)
	group := func(s string) string { return strings.ReplaceAll(s, "<group>", topology.DefaultGroup) }

	docTopics := map[string]bool{}
	for _, name := range doc.topics {
		docTopics[group(name)] = true
		if !have.topics[group(name)] {
			t.Errorf("docs/contract.md names topic %q, which topology.Define does not declare (move it to Planned if it is not built yet)", name)
		}
	}
	for _, name := range sortedKeys(have.topics) {
		if !docTopics[name] {
			t.Errorf("topology declares topic %q, which docs/contract.md does not list under ## Topics", name)
		}
	}

	for file, id := range doc.schemas {
		if !have.files[file] {
			t.Errorf("docs/contract.md names %s, which schemas/ does not embed", file)
			continue
		}
		b, _ := schemas.Files.ReadFile(strings.TrimPrefix(file, "schemas/"))
		if text, ok := schemas.Schema(id); !ok || text != string(b) {
			t.Errorf("docs/contract.md gives %s schema id %d, but schemas.Schema(%d) is not that file", file, id, id)
		}
		documented := map[string]bool{}
		for _, f := range doc.fields[file] {
			documented[f] = true
			if !have.fields[file][f] {
				t.Errorf("docs/contract.md names field %s of %s, which the schema does not have", f, file)
			}
		}
		for _, f := range sortedKeys(have.fields[file]) {
			if !documented[f] {
				t.Errorf("%s has field %s, which docs/contract.md does not list", file, f)
			}
		}
	}
	for _, file := range sortedKeys(have.files) {
		if _, ok := doc.schemas[file]; !ok {
			t.Errorf("%s is embedded, but docs/contract.md has no \"### `%s` — id N\" under ## Schemas", file, file)
		}
	}

	docMetrics := map[string]bool{}
	for _, name := range doc.metrics {
		docMetrics[name] = true
		if !have.metrics[name] {
			t.Errorf("docs/contract.md names metric %s, which no collector declares (move it to Planned if it is not built yet)", name)
		}
	}
	for _, name := range sortedKeys(have.metrics) {
		if !docMetrics[name] {
			t.Errorf("the code declares metric %s, which docs/contract.md does not list under ## Prometheus metrics", name)
		}
	}

	docRoutes := map[string]bool{}
	for _, name := range doc.endpoints {
		docRoutes[name] = true
		if !have.endpoints[name] {
			t.Errorf("docs/contract.md names endpoint %q, which the ops server does not route", name)
		}
	}
	for _, name := range sortedKeys(have.endpoints) {
		if !docRoutes[name] {
			t.Errorf("the ops server routes %q, which docs/contract.md does not list under ## HTTP endpoints", name)
		}
	}

	for _, cmd := range sortedKeys(doc.flags) {
		if have.flags[cmd] == nil {
			t.Errorf("docs/contract.md documents flags of %q, which is not a sirenstream command", cmd)
			continue
		}
		for _, f := range sortedKeys(doc.flags[cmd]) {
			if _, ok := have.flags[cmd][f]; !ok {
				t.Errorf("docs/contract.md names flag --%s of %s, which 'sirenstream %s' does not have (move it to Planned if it is not built yet)", f, cmd, cmd)
			}
		}
	}
	for _, cmd := range sortedKeys(have.flags) {
		for _, f := range sortedKeys(have.flags[cmd]) {
			if _, ok := doc.flags[cmd][f]; !ok {
				t.Errorf("'sirenstream %s' has flag --%s, which docs/contract.md does not document: add a row under a ### heading naming `%s` in ## Command line", cmd, f, cmd)
			}
		}
	}

	planned := 0
	for _, it := range doc.planned {
		if it.inCode(have) {
			t.Errorf("planned %s %q is in the code now: move it from ## Planned to its section of docs/contract.md", it.kind, it.name)
		} else {
			planned++
		}
	}
	t.Logf("checked %d topics, %d schemas, %d metrics, %d endpoints, flags of %d commands; %d planned items not in the code yet",
		len(doc.topics), len(doc.schemas), len(doc.metrics), len(doc.endpoints), len(doc.flags), planned)
}

func (it plannedItem) inCode(have code) bool {
	switch it.kind {
	case "topic":
		return have.topics[it.name]
	case "schema":
		return have.files[it.name]
	case "field":
		return have.fields[it.file][it.name]
	case "metric":
		return have.metrics[it.name]
	case "endpoint":
		return have.endpoints[it.name]
	case "flag":
		for _, cmd := range it.commands {
			if _, ok := have.flags[cmd][it.name]; ok {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestContractParserCatchesDrift: the checks are not vacuous — the parser
// finds every kind of item in the doc.
func TestContractParserCatchesDrift(t *testing.T) {
	doc := parseContract(t)
	if len(doc.topics) < 8 || len(doc.schemas) < 5 || len(doc.metrics) < 15 || len(doc.endpoints) < 8 || len(doc.flags["run"]) < 30 {
		t.Fatalf("parsed too little from %s: %d topics, %d schemas, %d metrics, %d endpoints, %d run flags",
			contractDoc, len(doc.topics), len(doc.schemas), len(doc.metrics), len(doc.endpoints), len(doc.flags["run"]))
	}
}

// TestComposePublishesOnLoopbackOnly: every port docker-compose.yml
// publishes is bound to 127.0.0.1, as the README says.
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Ports []any `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	published := 0
	for _, name := range sortedKeys(compose.Services) {
		for _, p := range compose.Services[name].Ports {
			published++
			s, ok := p.(string)
			if !ok || !strings.HasPrefix(s, "127.0.0.1:") || strings.Count(s, ":") != 2 {
				t.Errorf("service %s publishes %v: want \"127.0.0.1:HOST:CONTAINER\"", name, p)
			}
		}
	}
	if published < 5 {
		t.Fatalf("found %d published ports in docker-compose.yml, want the 5 of kafka, schema-registry, sirenstream, prometheus, grafana", published)
	}
}
