package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// listFlagsArg, as a command's only argument, makes parseFlags return the
// command's FlagSet (in a *flagSetError) before the command does anything:
// commandFlagSets collects every command's flags that way, so a config file
// or an environment variable meant for another command is recognised, and
// the contract test checks the flags the docs name.
const listFlagsArg = "\x00list-flags"

type flagSetError struct{ fs *flag.FlagSet }

func (e *flagSetError) Error() string { return "flags of " + e.fs.Name() }

// commandFlagSets returns every command's FlagSet by name. Each command is
// called with listFlagsArg and returns at its parseFlags: nothing runs.
func commandFlagSets() map[string]*flag.FlagSet {
	sets := map[string]*flag.FlagSet{}
	for _, c := range commands() {
		err := c.run(context.Background(), []string{listFlagsArg}, io.Discard, io.Discard)
		var fe *flagSetError
		if errors.As(err, &fe) {
			sets[c.name] = fe.fs
		}
	}
	return sets
}

// otherCommands returns, for each flag name of a command other than name,
// the commands that have it.
func otherCommands(name string) map[string][]string {
	users := map[string][]string{}
	for cmd, fs := range commandFlagSets() {
		if cmd == name {
			continue
		}
		fs.VisitAll(func(f *flag.Flag) { users[f.Name] = append(users[f.Name], cmd) })
	}
	for _, cmds := range users {
		sort.Strings(cmds)
	}
	return users
}

func envName(flagName string) string {
	return "SIRENSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line
// from SIRENSTREAM_* variables and then from the --config YAML file (if the
// FlagSet has a "config" flag). Every error it returns is a usage error
// (exit 2) except flag.ErrHelp. Notes (a config key or an environment
// variable for another command, a misspelt variable) go to notes[0], else
// os.Stderr.
//
// Whatever the source, durations take Go's forms plus days ("5s", "1m30s",
// "90d", "1d12h"), and an int or duration flag whose default is positive
// refuses a value ≤ 0 unless its help says what 0 (or a negative value)
// means.
func parseFlags(fs *flag.FlagSet, args []string, notes ...io.Writer) error {
	if len(args) == 1 && args[0] == listFlagsArg {
		return &flagSetError{fs}
	}
	note := io.Writer(os.Stderr)
	if len(notes) > 0 {
		note = notes[0]
	}
	wrapDurations(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := setFromEnv(fs, set, note); err != nil {
		return err
	}
	if err := setFromConfig(fs, set, note); err != nil {
		return err
	}
	return checkCounts(fs)
}

// parseArgs parses the command line. An unknown or bad flag is one line
// (with a did-you-mean), not the whole help; --help prints the help.
func parseArgs(fs *flag.FlagSet, args []string) error {
	out, help := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = help
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.VisitAll(func(f *flag.Flag) { // the help names their type "duration"
			if d, ok := f.Value.(*durationFlag); ok {
				f.Value = d.v
			}
		})
		help()
		return err
	case err != nil:
		return usageErr("%s", flagError(fs, err))
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q (flags are --name value)", fs.Args())
	}
	return nil
}

// flagError rewrites the flag package's parse errors as one line with
// the flag as typed (--name) and the expected form.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag --%s%s", name, didYouMean(name, flagNames(fs), "--"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("--%s needs a value", name)
	}
	var value, name string
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if _, err := fmt.Sscanf(rest, "%q for -%s", &value, &name); err == nil {
			return fmt.Sprintf("--%s=%q: want true or false", strings.TrimSuffix(name, ":"), value)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if _, err := fmt.Sscanf(rest, "%q for flag -%s", &value, &name); err == nil {
			name = strings.TrimSuffix(name, ":")
			_, reason, _ := strings.Cut(rest, ": ")
			return fmt.Sprintf("--%s %q: %s", name, value, expectedForm(fs.Lookup(name), reason))
		}
	}
	return msg
}

// expectedForm replaces the flag package's "parse error" by the form the
// flag takes.
func expectedForm(f *flag.Flag, reason string) string {
	if f == nil || (reason != "parse error" && !strings.Contains(reason, "invalid syntax")) {
		return reason
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			return "want a whole number"
		case float64:
			return "want a number (e.g. 0.05)"
		case bool:
			return "want true or false"
		}
	}
	return reason
}

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}

// setFromEnv sets every flag not yet set from its SIRENSTREAM_* variable.
// A SIRENSTREAM_* variable that is no command's but close to one of fs's
// gets a note with the likely name (variables of other commands are
// ignored: one environment serves several commands).
func setFromEnv(fs *flag.FlagSet, set map[string]bool, note io.Writer) error {
	known := map[string]bool{}
	for _, name := range flagNames(fs) {
		env := envName(name)
		known[env] = true
		if set[name] {
			continue
		}
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(name, v); err != nil {
				return usageErr("%s=%q: %v", env, v, err)
			}
			set[name] = true
		}
	}
	var unknown []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SIRENSTREAM_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	others := otherCommands(fs.Name())
	var envs []string // without the common prefix, which would make every name look close
	for _, name := range flagNames(fs) {
		envs = append(envs, strings.TrimPrefix(envName(name), "SIRENSTREAM_"))
	}
	for _, k := range unknown {
		if others[envFlag(k)] != nil {
			continue
		}
		if hint := didYouMean(strings.TrimPrefix(k, "SIRENSTREAM_"), envs, "SIRENSTREAM_"); hint != "" {
			fmt.Fprintf(note, "sirenstream %s: note: %s is not a setting of any command%s; ignored\n", fs.Name(), k, hint)
		}
	}
	return nil
}

// envFlag is the flag name an environment variable would set.
func envFlag(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "SIRENSTREAM_")), "_", "-")
}

// setFromConfig sets every flag not yet set from the --config file. Keys of
// other commands are ignored with one note (one file serves every
// command); a key that is no command's is a usage error naming the nearest
// flag.
func setFromConfig(fs *flag.FlagSet, set map[string]bool, note io.Writer) error {
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	b, err := os.ReadFile(path)
	if err != nil {
		return usageErr("--config: %v", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return usageErr("--config %s: not a YAML map of flag names to values: %s", path, strings.Join(strings.Fields(err.Error()), " "))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var others map[string][]string
	var ignored []string
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			if others == nil {
				others = otherCommands(fs.Name())
			}
			if others[k] != nil {
				ignored = append(ignored, k)
				continue
			}
			all := flagNames(fs)
			for name := range others {
				all = append(all, name)
			}
			return usageErr("--config %s: unknown key %q%s (keys are flag names of a sirenstream command)", path, k, didYouMean(k, all, ""))
		}
		if set[k] {
			continue
		}
		if err := fs.Set(k, configValue(m[k])); err != nil {
			return usageErr("--config %s: %s %q: %v", path, k, configValue(m[k]), err)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(note, "sirenstream %s: note: --config %s: %s not used by this command; ignored\n", fs.Name(), path, strings.Join(ignored, ", "))
	}
	return nil
}

func configValue(v any) string {
	if x, ok := v.([]any); ok {
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// checkCounts refuses a value ≤ 0 of an int or duration flag whose default
// is positive, unless its help says what 0 means ("0:", "(0 ") — then only
// negative values are refused, unless the help says what they mean too.
func checkCounts(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		var v, def float64
		switch x := g.Get().(type) {
		case int:
			v = float64(x)
			d, _ := strconv.Atoi(f.DefValue)
			def = float64(d)
		case int64:
			v = float64(x)
			d, _ := strconv.ParseInt(f.DefValue, 10, 64)
			def = float64(d)
		case time.Duration:
			v = float64(x)
			d, _ := time.ParseDuration(f.DefValue)
			def = float64(d)
		default:
			return
		}
		if def <= 0 || v > 0 || strings.Contains(f.Usage, "negative") {
			return
		}
		if v == 0 && (strings.Contains(f.Usage, "0:") || strings.Contains(f.Usage, "(0 ")) {
			return
		}
		want := "positive"
		if v < 0 && (strings.Contains(f.Usage, "0:") || strings.Contains(f.Usage, "(0 ")) {
			want = "0 or more"
		}
		err = usageErr("--%s %s: must be %s (default %s)", f.Name, f.Value, want, f.DefValue)
	})
	return err
}

// durationFlag replaces a duration flag's Value: days ("90d", "1d12h") on
// top of Go's forms, and an error that shows the expected form.
// It is a pointer type: the flag package makes zero values of it (reflect)
// to tell default values in the help.
type durationFlag struct{ v flag.Value }

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	return d.v.Set(v.String())
}

func (d *durationFlag) String() string {
	if d == nil || d.v == nil {
		return time.Duration(0).String()
	}
	return d.v.String()
}

func (d *durationFlag) Get() any { return d.v.(flag.Getter).Get() }

func wrapDurations(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if _, done := f.Value.(*durationFlag); done {
			return
		}
		if g, ok := f.Value.(flag.Getter); ok {
			if _, ok := g.Get().(time.Duration); ok {
				f.Value = &durationFlag{f.Value}
			}
		}
	})
}

const durationForms = "want a duration such as 500ms, 5s, 1m30s, 2h or 90d"

// parseDuration is time.ParseDuration plus a leading whole number of days.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100_000 {
			return 0, errors.New(durationForms)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || (days > 0 && v < 0) {
		return 0, errors.New(durationForms)
	}
	return days + v, nil
}

// parseTimeFlag reads a time flag: RFC3339 (2026-03-01T06:00:00Z) or a
// date (2026-03-01, UTC midnight).
func parseTimeFlag(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a date (2026-03-01, UTC midnight) or RFC3339 (2026-03-01T06:00:00Z)", v)
	}
	return t, nil
}

// didYouMean returns " (did you mean PREFIX+name?)" for the candidate
// nearest to s by edit distance when it is close enough, else "".
func didYouMean(s string, candidates []string, prefix string) string {
	best, bestD := "", len(s)/3+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD || (d == bestD && c < best && best != "") {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
