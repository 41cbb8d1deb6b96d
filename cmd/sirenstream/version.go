package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time to override what the build info says:
//
//	go build -ldflags "-X main.version=1.4.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/sirenstream
var (
	version = ""
	commit  = ""
)

// buildInfo is what `sirenstream version` prints and the
// sirenstream_build_info metric carries.
type buildInfo struct {
	Version   string // -ldflags main.version, else the module version, else "dev"
	Commit    string // -ldflags main.commit, else vcs.revision (+ "-dirty"), else "unknown"
	GoVersion string
	Platform  string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if b.Commit == "" && rev != "" {
			b.Commit = rev + dirty
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("sirenstream %s (commit %s, %s %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Print the version, the commit it was built from and the Go version.", stdout)
	short := fs.Bool("short", false, "print the version only")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	b := readBuildInfo()
	if *short {
		fmt.Fprintln(stdout, b.Version)
		return nil
	}
	fmt.Fprintln(stdout, strings.TrimSpace(b.String()))
	return nil
}
