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
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
		{"version", "print the version, commit and Go version", runVersion},
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
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
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
			fmt.Fprintf(stderr, "sirenstream %s: %v\nrun 'sirenstream %s --help' for its flags\n", c.name, strings.TrimPrefix(err.Error(), "usage: "), c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "sirenstream %s: error: %v\n", c.name, err)
			return 1
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(stderr, "sirenstream: unknown command %q%s\nrun 'sirenstream --help' for the commands\n", args[0], didYouMean(args[0], names, ""))
	return 2
}

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// prefixOnce wraps err with "prefix: " unless its text already starts so
// (no "state: state: ..." when a package prefixes its own errors).
func prefixOnce(prefix string, err error) error {
	if strings.HasPrefix(err.Error(), prefix+":") {
		return err
	}
	return fmt.Errorf("%s: %w", prefix, err)
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
		// Dates, not only clock times: stream times and days are logged
		// with this encoder too.
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02T15:04:05.000Z07:00")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, usageErr("log format %q: want json or console", format)
	}
	// Lock: tasks log from several goroutines and w may not be safe for that.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}
