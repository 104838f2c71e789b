package main

// The command line: help exits 0, usage errors 2, the config validate flags in any order, one
// error line for a broken file, a server without a configuration refused, stable plugin lists and
// the version from the linker or from the Go toolchain's build information.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/config"
)

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"help"}, {"server", "-h"}, {"dev", "-h"}, {"config", "-h"}, {"config", "validate", "-h"},
		{"plugin", "-h"}, {"plugin", "serve", "-h"}, {"bench", "-h"}, {"version", "-h"}, {"tls", "-h"},
	} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || !strings.Contains(stdout+stderr, "Usage") {
			t.Errorf("herald %s: exit %d, output %q", strings.Join(args, " "), code, stdout+stderr)
		}
	}
	for _, args := range [][]string{{}, {"server", "-no-such-flag"}, {"config"}, {"config", "validate"}, {"plugin", "serve"}, {"nope"}} {
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("herald %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestConfigValidateFlagsAfterFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.hcl")
	if err := os.WriteFile(path, []byte("node {\n  port = 8765\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"config", "validate", path, "-set", "log.level=debug"}, // the order the usage line shows
		{"config", "validate", "-set", "log.level=debug", path},
	} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || !strings.Contains(stdout, "valid") {
			t.Errorf("herald %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	// The -set is applied wherever it stands: a bad value fails.
	if code, _, stderr := runCLI("config", "validate", path, "-set", "log.level=loud"); code != 1 || !strings.Contains(stderr, "log.level") {
		t.Errorf("a bad -set after FILE: exit %d %q", code, stderr)
	}
	if code, _, _ := runCLI("config", "validate", path, path); code != 2 {
		t.Errorf("two files: exit %d, want 2", code)
	}
}

// An unterminated string makes the HCL parser report every line after it; herald shows the one
// error that matters.
func TestConfigShowsTheFirstError(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == `name = ""` })
	if at < 0 {
		t.Fatal(`config.hcl has no line name = ""`)
	}
	lines[at] = strings.Replace(lines[at], `""`, `"node-a`, 1)
	path := filepath.Join(t.TempDir(), "broken.hcl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI("config", "validate", path)
	out := strings.TrimSpace(stderr)
	if code != 1 || strings.Count(out, "\n") != 0 {
		t.Fatalf("exit %d, want 1 and one line:\n%s", code, out)
	}
	if want := path + ":" + strconv.Itoa(at+1) + ","; !strings.HasPrefix(out, want) || !strings.Contains(out, "Unterminated") {
		t.Fatalf("the error should name %s and the unterminated string:\n%s", want, out)
	}
}

func TestServerRefusesToStartWithoutConfig(t *testing.T) {
	code, stdout, stderr := runCLI("server")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "no configuration file") || !strings.Contains(stderr, "-config") {
		t.Fatalf("herald server without -config: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestPluginServeListsPluginsInOrder(t *testing.T) {
	_, first, _ := runCLI("plugin", "serve", "-h")
	var listed []string
	for _, l := range strings.Split(first, "\n") {
		if strings.HasPrefix(l, "  ") {
			listed = append(listed, strings.TrimSpace(l))
		}
	}
	if len(listed) < 5 || !slices.IsSorted(listed) {
		t.Fatalf("plugins listed %q, want them all, sorted", listed)
	}
	for range 20 { // map iteration order differs between runs; the listing must not
		if _, again, _ := runCLI("plugin", "serve", "-h"); again != first {
			t.Fatalf("the listing changed between runs:\n%s\n---\n%s", first, again)
		}
	}
}

func TestDescribeBuild(t *testing.T) {
	devel := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/heraldhq/herald", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"}}}
	d := describeBuild(devel, true)
	if d.Version != devVersion || d.Commit != "0123456789abcdef0123" || d.Time != "2026-01-02T03:04:05Z" || !d.CommitTime || !d.Modified {
		t.Errorf("go build from a working tree: %+v", d)
	}
	if got := d.versionString(); got != devVersion+" (commit 0123456789ab, modified)" {
		t.Errorf("version string %q", got)
	}
	installed := &debug.BuildInfo{Main: debug.Module{Path: "github.com/heraldhq/herald", Version: "v1.2.3"}}
	if d := describeBuild(installed, true); d.Version != "v1.2.3" || d.Commit != "" {
		t.Errorf("go install ...@v1.2.3: %+v", d)
	}
	if d := describeBuild(nil, false); d.Version != devVersion {
		t.Errorf("no build information: %+v", d)
	}
}

// A release build stamps the version with -ldflags; the commit comes from the toolchain's VCS
// stamp of the checkout (when this is a git checkout).
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald")
	}
	t.Parallel()
	root := filepath.Join("..", "..")
	rev, gitErr := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	vcs := "-buildvcs=true"
	if gitErr != nil {
		vcs = "-buildvcs=false"
	}
	bin := filepath.Join(t.TempDir(), "herald")
	build := exec.Command("go", "build", vcs, "-ldflags", "-X main.version=9.9.9-test -X main.buildTime=2030-01-02T03:04:05Z",
		"-o", bin, "./cmd/herald")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(context.Background(), bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("herald version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "herald 9.9.9-test\n") || !strings.Contains(string(out), "built:   2030-01-02T03:04:05Z") {
		t.Errorf("herald version:\n%s", out)
	}
	if gitErr == nil && !strings.Contains(string(out), "commit:  "+strings.TrimSpace(string(rev))) {
		t.Errorf("herald version should name commit %s:\n%s", strings.TrimSpace(string(rev)), out)
	}
}

// The three-host example configurations load, with certificates made by `herald tls` as their
// comments say, and describe one cluster.
func TestThreeHostExampleConfigs(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCLI("tls", "ca", "create", "-dir", dir); code != 0 {
		t.Fatalf("herald tls ca create: %s", stderr)
	}
	for _, n := range []string{"a", "b", "c"} {
		if code, _, stderr := runCLI("tls", "cert", "create", "-node", "herald-"+n, "-host", "herald-"+n+".example.internal",
			"-ca", filepath.Join(dir, "herald-ca.pem"), "-ca-key", filepath.Join(dir, "herald-ca-key.pem"), "-dir", dir); code != 0 {
			t.Fatalf("herald tls cert create: %s", stderr)
		}
	}
	var peers []string
	for _, n := range []string{"a", "b", "c"} {
		path := filepath.Join("..", "..", "examples", "three-hosts", "node-"+n+".hcl")
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The files name /etc/herald/tls/...: the same files, made here.
		local := strings.ReplaceAll(string(src), "/etc/herald/tls", dir)
		cfg, err := config.Parse(path, []byte(local), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := checkPlugins(cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Node.Name != "herald-"+n || !cfg.TLS.Enabled() || !cfg.Cluster.PeerAuth.MTLS || len(cfg.Cluster.Peers) != 3 {
			t.Errorf("%s: node %q, tls %v, mtls %v, %d peers", path, cfg.Node.Name, cfg.TLS.Enabled(), cfg.Cluster.PeerAuth.MTLS, len(cfg.Cluster.Peers))
		}
		if !slices.Contains(cfg.Cluster.Peers, cfg.Node.AdvertiseURL) {
			t.Errorf("%s: the peer list lacks the node's own URL %s", path, cfg.Node.AdvertiseURL)
		}
		if peers == nil {
			peers = cfg.Cluster.Peers
		} else if !slices.Equal(peers, cfg.Cluster.Peers) {
			t.Errorf("%s: peers %v differ from node-a's %v", path, cfg.Cluster.Peers, peers)
		}
	}
}
