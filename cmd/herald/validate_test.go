package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
