package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Release builds stamp these with the linker:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD) -X main.buildTime=$(date -u +%FT%TZ)" ./cmd/herald
//
// Plain `go build` and `go install` builds leave them empty, and buildInfo falls back on what the
// Go toolchain records in the binary: the module version (go install ...@v1.2.0) and the VCS
// revision, time and modified flag of the working tree it was built from.
var (
	version   = ""
	commit    = ""
	buildTime = ""
)

// devVersion is the version of a build from a working tree that no release stamped.
const devVersion = "0.1.0-dev"

// buildDescription is what `herald version` prints about the binary.
type buildDescription struct {
	Version string
	Commit  string
	// Time is the build time from the linker, or else the commit's time (CommitTime set).
	Time       string
	CommitTime bool
	Modified   bool
	GoVersion  string
}

// describeBuild merges the linker's stamps with the toolchain's build information; the stamps
// win.
func describeBuild(info *debug.BuildInfo, ok bool) buildDescription {
	d := buildDescription{Version: version, Commit: commit, Time: buildTime, GoVersion: runtime.Version()}
	if ok && info != nil {
		if d.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			d.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if d.Commit == "" {
					d.Commit = s.Value
				}
			case "vcs.time":
				if d.Time == "" {
					d.Time, d.CommitTime = s.Value, true
				}
			case "vcs.modified":
				d.Modified = d.Modified || (s.Value == "true" && commit == "")
			}
		}
		if info.GoVersion != "" {
			d.GoVersion = info.GoVersion
		}
	}
	if d.Version == "" {
		d.Version = devVersion
	}
	return d
}

// versionString is the one-line version, e.g. "0.1.0-dev (commit 1a2b3c4d5e6f, modified)".
func (d buildDescription) versionString() string {
	var parts []string
	if d.Commit != "" {
		c := d.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		parts = append(parts, "commit "+c)
	}
	if d.Modified {
		parts = append(parts, "modified")
	}
	if len(parts) == 0 {
		return d.Version
	}
	return d.Version + " (" + strings.Join(parts, ", ") + ")"
}

// buildVersion is this binary's one-line version, as the dashboard shows it.
func buildVersion() string { return describeBuild(debug.ReadBuildInfo()).versionString() }

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(stdout, "Usage: herald version\n\nPrints the version, the commit and the time it was built from, and the Go version.")
			return 0
		}
		fmt.Fprintf(stderr, "herald version: unexpected argument %q\n", args[0])
		return 2
	}
	d := describeBuild(debug.ReadBuildInfo())
	fmt.Fprintf(stdout, "herald %s\n", d.Version)
	commit := d.Commit
	if commit == "" {
		commit = "unknown"
	}
	if d.Modified {
		commit += " (modified working tree)"
	}
	fmt.Fprintf(stdout, "commit:  %s\n", commit)
	switch {
	case d.Time != "" && d.CommitTime:
		fmt.Fprintf(stdout, "commit time: %s\n", d.Time)
	case d.Time != "":
		fmt.Fprintf(stdout, "built:   %s\n", d.Time)
	}
	fmt.Fprintf(stdout, "go:      %s %s/%s\n", d.GoVersion, runtime.GOOS, runtime.GOARCH)
	return 0
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}
