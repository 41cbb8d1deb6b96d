// Command sirenstream is the B2B telecom segmentation stream processor.
//
//	sirenstream demo       everything on one machine: embedded broker, data, processor, summary
//	sirenstream run        the long-running processor (consumer group)
//	sirenstream replay     a bounded backfill into its own output topic (what-if with --diff)
//	sirenstream generate   synthetic usage/outage/claim/profile events
//	sirenstream broker     the embedded Kafka-protocol dev broker
//	sirenstream bench      throughput against raw-consume baselines
//
// Every flag also reads from the environment (SIRENSTREAM_<FLAG>, dashes as
// underscores) and from a YAML --config file whose keys are the flag names.
// Precedence: flag > environment > config file > default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run the whole pipeline on an embedded broker with synthetic data and print a summary", runDemo},
		{"run", "run the processor against Kafka (consumer group, Badger state)", runRun},
		{"replay", "replay input topics into a separate output topic, bounded by the end offsets at start", runReplay},
		{"generate", "produce realistic synthetic events to Kafka", runGenerate},
		{"broker", "start the embedded Kafka-protocol dev broker (kfake)", runBroker},
		{"bench", "measure throughput vs raw consumption, latency and scale (see BENCHMARKS.md)", runBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `sirenstream — per-SIREN B2B segmentation from usage, outage, claim and profile events.

Usage: sirenstream <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'sirenstream <command> --help' for its flags. Every flag can also be set with
an environment variable SIRENSTREAM_<FLAG> (e.g. SIRENSTREAM_BROKERS) or a key in
the YAML file given by --config; flags win over the environment, which wins over
the file.
`)
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "sirenstream %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "sirenstream %s: error: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "sirenstream: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// newFlagSet builds a FlagSet whose --help prints the command's description,
// flags and environment variable names.
func newFlagSet(name, desc string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: sirenstream %s [flags]\n\n%s\n\nFlags (each also from env SIRENSTREAM_<NAME> or the --config file):\n", name, desc)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from SIRENSTREAM_* variables and then from the --config YAML file (if the
// FlagSet has a "config" flag).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		if set[name] {
			continue
		}
		env := "SIRENSTREAM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(name, v); err != nil {
				return usageErr("%s=%q: %v", env, v, err)
			}
			set[name] = true
		}
	}
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: unknown key %q (keys are the flag names of 'sirenstream %s')", path, k, fs.Name())
		}
		if set[k] {
			continue
		}
		var v string
		switch x := m[k].(type) {
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			v = strings.Join(parts, ",")
		default:
			v = fmt.Sprint(x)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, k, err)
		}
	}
	return nil
}

// newLogger builds zap: JSON for production, a console encoder for humans.
func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("log level %q: %v", level, err)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, usageErr("log format %q: want json or console", format)
	}
	// Lock: tasks log from several goroutines and w may not be safe for that.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}
