package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func repoConfig(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config.hcl")
}

func TestReferenceConfigLoads(t *testing.T) {
	c, err := Load(repoConfig(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Node != d.Node || c.Registry != d.Registry || c.ResponseCache != d.ResponseCache ||
		c.Replication.BatchingDelay != d.Replication.BatchingDelay || c.Replication.MaxBatchSize != d.Replication.MaxBatchSize {
		t.Fatalf("config.hcl must state the defaults:\n%+v\n%+v", c, d)
	}
}

func TestParse(t *testing.T) {
	src := `
node {
  port = 8762
  name = "b"
}
cluster {
  peers = ["http://127.0.0.1:8761/eureka/", "http://127.0.0.1:8762/eureka/"]
  startup_sync { retries = 0 }
  insecure_peers = true
}
replication {
  batching_delay = "2ms"
  peer "http://127.0.0.1:8761/eureka/" {
    max_batch_size = 10
    transport = "grpc"
  }
}
plugin "transport" "grpc" {
  out_of_process = true
  config {
    listen = "127.0.0.1:9000"
    tls { enabled = true }
  }
}
telemetry {
  tracing { headers = { "x-token" = "abc" } }
}
`
	c, err := Parse("t.hcl", []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Port != 8762 || c.Node.Name != "b" || len(c.Cluster.Peers) != 2 || c.Cluster.StartupSync.Retries != 0 {
		t.Fatalf("%+v %+v", c.Node, c.Cluster)
	}
	if c.Cluster.StartupSync.RetryWait != 30*time.Second {
		t.Fatal("unset keys in a block must keep their defaults")
	}
	if c.Replication.BatchingDelay != 2*time.Millisecond {
		t.Fatal("duration")
	}
	pt := c.Replication.Peers["http://127.0.0.1:8761/eureka/"]
	if pt.MaxBatchSize == nil || *pt.MaxBatchSize != 10 || pt.Transport != "grpc" || pt.Workers != nil {
		t.Fatalf("peer block: %+v", pt)
	}
	p := c.Plugins["transport"]["grpc"]
	if !p.OutOfProcess || p.Config["listen"] != "127.0.0.1:9000" {
		t.Fatalf("plugin block: %+v", p)
	}
	if tls, _ := p.Config["tls"].(map[string]any); tls["enabled"] != true {
		t.Fatalf("nested plugin config: %+v", p.Config)
	}
	if c.Telemetry.Tracing.Headers["x-token"] != "abc" {
		t.Fatal("headers")
	}
	if pos := c.PosOf("plugin", "transport", "grpc", "config", "listen"); pos.Line != 21 || pos.File != "t.hcl" {
		t.Fatalf("position of a plugin config key: %v", pos)
	}
}

func TestErrorsNamePositionAndKey(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown top-level key", "nodes { port = 1 }\n", []string{"t.hcl:1,1: nodes: unknown key"}},
		{"unknown nested key", "node {\n  prot = 1\n}\n", []string{"t.hcl:2,3: node.prot: unknown key (known here: advertise_url, bind_addr, name, port)"}},
		{"unknown key in labelled block", "replication {\n  peer \"http://a:1/\" {\n    wrkers = 2\n  }\n}\n", []string{"t.hcl:3,5: replication.peer.http://a:1/.wrkers: unknown key"}},
		{"wrong type", "node {\n  port = \"x\"\n}\n", []string{`t.hcl:2,3: node.port: want a whole number, got "x"`}},
		{"bare number duration", "registry {\n  eviction_interval = 60\n}\n", []string{`t.hcl:2,3: registry.eviction_interval: want a duration such as "500ms" or "30s", got 60`}},
		{"bad duration", "registry {\n  eviction_interval = \"60\"\n}\n", []string{`registry.eviction_interval: want a duration`}},
		{"range", "replication {\n  max_batch_size = 0\n}\n", []string{"t.hcl:2,3: replication.max_batch_size: must be between 1 and 10000 (got 0)"}},
		{"bad peer URL", "cluster {\n  peers = [\n    \"ftp://x\"\n  ]\n}\n", []string{`t.hcl:2,3: cluster.peers.0: want an http or https URL`}},
		{"log level", "log { level = \"loud\" }\n", []string{`t.hcl:1,7: log.level: must be one of`}},
		{"two problems, file order", "node {\n  port = 70000\n}\nlog {\n  level = \"x\"\n}\n", []string{"t.hcl:2,3: node.port", "t.hcl:5,3: log.level"}},
		{"syntax error", "node {\n  port = \n}\n", []string{"t.hcl:2"}},
		{"plugin kind", "plugin \"router\" \"x\" {}\n", []string{`t.hcl:1,1: plugin.router: unknown plugin kind "router"`}},
		{"checksum", "plugin \"transport\" \"x\" {\n  command = \"x\"\n  sha256 = \"abc\"\n}\n", []string{"t.hcl:3,3: plugin.transport.x.sha256: must be 64 hex digits"}},
		{"negative max_procs", "plugin \"transport\" \"http\" {\n  out_of_process = true\n  max_procs = -1\n}\n",
			[]string{"t.hcl:3,3: plugin.transport.http.max_procs: must be between 0 (Go's default: one per CPU) and 1024 (got -1)"}},
		{"max_procs and env GOMAXPROCS", "plugin \"transport\" \"http\" {\n  out_of_process = true\n  max_procs = 2\n  env = { GOMAXPROCS = \"4\" }\n}\n",
			[]string{"t.hcl:3,3: plugin.transport.http.max_procs: env sets GOMAXPROCS too: set one of them"}},
		{"batch bytes over the body limit", "http {\n  max_body_bytes = 65536\n}\nreplication {\n  max_batch_bytes = 65536\n}\n",
			[]string{"t.hcl:5,3: replication.max_batch_bytes: must be less than http.max_body_bytes (65536 >= 65536)"}},
		{"default batch bytes over a lowered body limit", "http {\n  max_body_bytes = 65536\n}\n",
			[]string{"replication.max_batch_bytes: must be less than http.max_body_bytes (983040 >= 65536)"}},
		{"buffer bytes below a batch", "replication {\n  max_buffer_bytes = 10000\n}\n",
			[]string{"t.hcl:2,3: replication.max_buffer_bytes: must be at least replication.max_batch_bytes (10000 < 983040)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.hcl", []byte(c.src), nil, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			last := -1
			for _, w := range c.want {
				i := strings.Index(msg, w)
				if i < 0 || i < last {
					t.Fatalf("error %q\nwant %q (in this order)", msg, c.want)
				}
				last = i
			}
		})
	}
}

func TestEnvAndOverridePrecedence(t *testing.T) {
	src := []byte("node {\n  port = 8762\n}\nreplication {\n  workers = 4\n}\n")
	env := []string{"HERALD_NODE__PORT=8763", "HERALD_REPLICATION__MAX_BATCH_SIZE=500", "PATH=/bin",
		"HERALD_CLUSTER__PEERS=http://a:1/eureka/, http://b:2/eureka/", "HERALD_REGISTRY__SELF_PRESERVATION=false",
		"HERALD_CLUSTER__PEER_AUTH__SECRET=0123456789abcdef0123456789abcdef"}
	c, err := Parse("t.hcl", src, env, []string{"node.port=9000", "registry.eviction_interval=5s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Port != 9000 || c.Replication.MaxBatchSize != 500 || c.Replication.Workers != 4 ||
		len(c.Cluster.Peers) != 2 || c.Cluster.Peers[1] != "http://b:2/eureka/" || c.Registry.SelfPreservation ||
		c.Registry.EvictionInterval != 5*time.Second {
		t.Fatalf("%+v", c)
	}
	if p := c.Pos("replication.max_batch_size"); p.Source != "environment variable HERALD_REPLICATION__MAX_BATCH_SIZE" {
		t.Fatalf("pos %v", p)
	}
	_, err = Parse("", nil, []string{"HERALD_NODE__PORTT=1", "HERALD_NODE__PORT=x"}, []string{"nokey", "node.bogus=1"})
	var es Errors
	if !errors.As(err, &es) || len(es) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
	for _, w := range []string{"environment variable HERALD_NODE__PORTT: names no configuration key",
		`environment variable HERALD_NODE__PORT: node.port: want a whole number, got "x"`,
		"flag -set nokey: want key.path=value", "flag -set node.bogus=1: node.bogus: unknown key"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"), nil, nil)
	if err == nil || !os.IsNotExist(errors.Unwrap(err)) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(repoConfig(f)); err == nil {
		f.Add(b)
	}
	f.Add([]byte("node { port = 1 }"))
	f.Add([]byte("plugin \"transport\" \"x\" { config { a = [1, {b = 2}] } }"))
	f.Add([]byte("replication { peer \"http://a/\" { workers = 3 } }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.hcl", src, nil, nil)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				if e.Pos.File == "" && e.Pos.Source == "" {
					t.Fatalf("error without a position: %v", e)
				}
			}
		} else if !strings.HasPrefix(err.Error(), "f.hcl") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// A node with peers must be able to authenticate them, and the trust settings are checked with
// their position.
func TestTrustValidation(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("# current, then the previous one\n"+strings.Repeat("n", 32)+"\n"+strings.Repeat("o", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(dir, "short")
	if err := os.WriteFile(shortFile, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	peers := `peers = ["http://a:8761/eureka/"]`
	cases := []struct {
		name, src string
		want      []string // empty: valid
	}{
		{"peers without authentication", "cluster {\n  " + peers + "\n}\n", []string{"t.hcl:1,1: cluster.peer_auth", "insecure_peers"}},
		{"peers with insecure_peers", "cluster {\n  " + peers + "\n  insecure_peers = true\n}\n", nil},
		{"dns peers without authentication", "cluster {\n  dns { name = \"herald.svc\" }\n}\n", []string{"cluster.peer_auth"}},
		{"secret too short", "cluster {\n  " + peers + "\n  peer_auth { secret = \"abc\" }\n}\n", []string{"t.hcl:3,15: cluster.peer_auth.secret", "at least 32"}},
		{"secret file with a rotation", "cluster {\n  " + peers + "\n  peer_auth { secret_file = \"" + secretFile + "\" }\n}\n", nil},
		{"secret file with a short secret", "cluster {\n  " + peers + "\n  peer_auth { secret_file = \"" + shortFile + "\" }\n}\n", []string{"cluster.peer_auth.secret_file", "line 1"}},
		{"secret and secret file", "cluster {\n  " + peers + "\n  peer_auth {\n    secret = \"" + strings.Repeat("s", 32) + "\"\n    secret_file = \"" + secretFile + "\"\n  }\n}\n", []string{"not both"}},
		{"mtls without tls", "cluster {\n  " + peers + "\n  peer_auth { mtls = true }\n}\n", []string{"cluster.peer_auth.mtls", "tls"}},
		{"tls with a missing file", "tls {\n  cert_file = \"/nonexistent/c.pem\"\n  key_file = \"/nonexistent/k.pem\"\n}\n", []string{"t.hcl:2,3: tls.cert_file", "cannot read"}},
		{"tls with a bad minimum version", "tls {\n  min_version = \"1.0\"\n}\n", []string{"tls.min_version"}},
		{"eureka peers that are not addresses", "cluster {\n  " + peers + "\n  peer_auth {\n    secret = \"" + strings.Repeat("s", 32) + "\"\n    eureka_peers = [\"not-an-ip\"]\n  }\n}\n", []string{"eureka_peers", "not-an-ip"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("t.hcl", []byte(c.src), nil, nil)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if s, err := cfg.PeerSecrets(); c.name == "secret file with a rotation" && (err != nil || len(s) != 2 || s[0] != strings.Repeat("n", 32)) {
					t.Fatalf("secrets %q, %v", s, err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q\nwant %q", err, w)
				}
			}
		})
	}
}

// env() with a default, an error for an unset variable without one, and typed conversions.
func TestEnvFunction(t *testing.T) {
	t.Setenv("TEST_PORT_FOR_ENV", "8799")
	t.Setenv("TEST_JSON_FOR_ENV", "true")
	c, err := Parse("t.hcl", []byte(`node {
  port = tonumber(env("TEST_PORT_FOR_ENV"))
  name = env("TEST_UNSET_FOR_ENV", "fallback")
}
log { json = tobool(env("TEST_JSON_FOR_ENV")) }
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Port != 8799 || c.Node.Name != "fallback" || !c.Log.JSON {
		t.Fatalf("port %d name %q json %v", c.Node.Port, c.Node.Name, c.Log.JSON)
	}
	_, err = Parse("t.hcl", []byte("node {\n  name = env(\"TEST_UNSET_FOR_ENV\")\n}\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "TEST_UNSET_FOR_ENV is not set") || !strings.Contains(err.Error(), "t.hcl:2") {
		t.Fatalf("unset variable: %v", err)
	}
}
