package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/pluginhost"
)

// herald config validate catches what herald server would refuse at start: a missing plugin
// binary, unreadable TLS material, an unset env() variable.
func TestConfigValidateCatchesStartFailures(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, hcl, want string }{
		{"missing plugin binary", "plugin \"transport\" \"x\" {\n  command = \"/nonexistent/herald-x\"\n}\nreplication { transport = \"x\" }\n",
			`c.hcl:2,3: plugin.transport.x.command: plugin binary "/nonexistent/herald-x" not found`},
		{"certificate that is not PEM", "tls {\n  cert_file = \"" + notPEM + "\"\n  key_file = \"" + notPEM + "\"\n}\n", "tls"},
		{"unset env variable", "node {\n  name = env(\"HERALD_VALIDATE_TEST_UNSET\")\n}\n", "is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "c.hcl")
			if err := os.WriteFile(file, []byte(c.hcl), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"config", "validate", file}, &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("exit %d, stderr %q, want it to contain %q", code, errb.String(), c.want)
			}
		})
	}
}

// validateBin runs the real binary's `config validate` on the node's file, in the node's
// environment, and returns its exit code and output.
func validateBin(t *testing.T, n *e2e.Node) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, "config", "validate", n.Config)
	cmd.Env = append(os.Environ(), "TMPDIR="+n.Tmp, "PLUGIN_UNIX_SOCKET_DIR="+n.Tmp, e2e.SecretEnv+"="+e2e.ClusterSecret)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// herald config validate runs the plugin checks herald server runs at start, over the real
// binary: a typo in a built-in's config block (in-process) and in an external plugin's (a
// process launched, checked over go-plugin and closed), a value the plugin's own validation
// refuses, a missing binary. Each names file:line and key, and herald server refuses the same
// file with the same line. A good external transport that would listen on a taken port is
// valid: validation starts nothing.
func TestConfigValidateRunsPluginChecks(t *testing.T) {
	t.Parallel()
	external := func(kind, name, config string) string {
		return fmt.Sprintf("plugin %q %q {\n  command = %q\n  args    = [\"plugin\", \"serve\", %q, %q]\n  config {\n%s\n  }\n}\n",
			kind, name, heraldBin, kind, name, config)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name, hcl string
		want      string // "" = valid; %d is the line of the first line holding at
		at        string
		server    bool // also check that herald server refuses the file with the same error
	}{
		{"typo in a built-in's block", "plugin \"flush_policy\" \"adaptive\" {\n  config {\n    max_batch_sise = 50\n  }\n}\n",
			`n.hcl:%d,5: plugin.flush_policy.adaptive.config.max_batch_sise: unknown key; did you mean "max_batch_size"?`, "max_batch_sise", true},
		{"typo in an external plugin's block", external("transport", "grpc", "    listen = \"off\"\n    conect_timeout = \"1s\"") +
			"replication { transport = \"grpc\" }\n",
			`n.hcl:%d,5: plugin.transport.grpc.config.conect_timeout: unknown key; did you mean "connect_timeout"?`, "conect_timeout", true},
		{"the plugin's own validation", external("transport", "grpc", "    listen = \"off\"\n    port_offset = 0") +
			"replication { transport = \"grpc\" }\n",
			`n.hcl:%d,5: plugin.transport.grpc.config.port_offset: want a whole number from 1 to 65534`, "port_offset", false},
		{"missing binary", "plugin \"transport\" \"custom\" {\n  command = \"/nonexistent/herald-custom\"\n}\nreplication { transport = \"custom\" }\n",
			`n.hcl:%d,3: plugin.transport.custom.command: plugin binary "/nonexistent/herald-custom" not found`, "command", false},
		{"a good external transport starts nothing", external("transport", "grpc", fmt.Sprintf("    listen = %q", taken.Addr().String())) +
			"replication { transport = \"grpc\" }\n", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := e2e.FreePorts(t, 1)[0]
			hcl := clusterHCL(port, nil, c.hcl)
			n := e2e.NewNode(t, heraldBin, "n", port, hcl)
			code, out := validateBin(t, n)
			if c.want == "" {
				if code != 0 || !strings.Contains(out, "valid") {
					t.Fatalf("exit %d:\n%s", code, out)
				}
				return
			}
			line := 1 + strings.Count(hcl[:strings.Index(hcl, c.at)], "\n")
			want := fmt.Sprintf(c.want, line)
			if code != 1 || !strings.Contains(out, want) {
				t.Fatalf("exit %d, output:\n%s\nwant it to contain %q", code, out, want)
			}
			if c.server {
				code, sout := n.Run(60 * time.Second)
				if code == 0 || !strings.Contains(sout, want) {
					t.Fatalf("herald server: exit %d, output:\n%s\nwant it to contain %q", code, sout, want)
				}
			}
		})
	}
}

// The commented plugin blocks of the built-ins in config.hcl pass their plugin's schema and
// validation: the documented keys exist and have the documented types.
func TestConfigHCLPluginBlocksValidate(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "# plugin \""):
			cur = []string{strings.TrimPrefix(line, "# ")}
		case cur != nil && line == "# }":
			blocks = append(blocks, strings.Join(append(cur, "}"), "\n"))
			cur = nil
		case cur != nil:
			cur = append(cur, strings.TrimPrefix(line, "# "))
		}
	}
	checked := 0
	for _, b := range blocks {
		cfg, err := config.Parse("config.hcl", []byte(b), nil, nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		for kind, byName := range cfg.Plugins {
			for name := range byName {
				if builtins[kind][name] == nil {
					continue
				}
				spec, err := pluginSpec(cfg, kind, name, nil)
				if err != nil {
					t.Fatal(err)
				}
				spec.Command, spec.Args, spec.New = "", nil, builtins[kind][name] // checked in-process
				if err := pluginhost.Check(context.Background(), spec, nil); err != nil {
					t.Errorf("config.hcl's block for %s %s: %v", kind, name, err)
				}
				checked++
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d built-in plugin blocks found in config.hcl", checked)
	}
}
