package pluginhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/sdk"
)

// The test binary serves markerPolicy as a plugin process when this variable is set, so the tests
// run the same plugin in-process and out of process through go-plugin.
const servePluginEnv = "HERALD_PLUGINHOST_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(servePluginEnv) == "1" {
		sdk.Serve(sdk.WithFlushPolicy(&markerPolicy{}))
		return
	}
	// go-plugin's unix sockets go to a directory of the run's own, removed at the end.
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// markerConfig is the test plugin's config block.
type markerConfig struct {
	// Marker is a file Configure creates: it shows whether Configure ran (a validate-only check
	// must not run it).
	Marker   string        `config:"marker,required"`
	MaxBatch int64         `config:"max_batch" default:"50"`
	Delay    time.Duration `config:"delay" default:"1ms"`
	Limits   struct {
		Low  int `config:"low"`
		High int `config:"high" default:"10"`
	} `config:"limits"`
}

func (c markerConfig) Validate() []sdk.Diagnostic {
	if c.Limits.Low > c.Limits.High {
		return []sdk.Diagnostic{{Path: "limits.low", Message: "above limits.high"}}
	}
	return nil
}

type markerPolicy struct{ rule sdk.SizeOrAge }

func (p *markerPolicy) Info() sdk.Info {
	return sdk.Info{Name: "marker", Kind: sdk.KindFlushPolicy, Config: markerConfig{}}
}

func (p *markerPolicy) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c markerConfig
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	p.rule = sdk.SizeOrAge{MaxBatch: int(c.MaxBatch), Delay: c.Delay}
	if err := os.WriteFile(c.Marker, []byte(fmt.Sprint(c.MaxBatch)), 0o600); err != nil {
		return []sdk.Diagnostic{{Path: "marker", Message: err.Error()}}
	}
	return nil
}

func (p *markerPolicy) Decide(ctx context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	return p.rule.Decide(ctx, s)
}

// specs returns the plugin block in file as an in-process spec and as a process spec, built as
// herald builds them: the block's config, its source and the position of every key.
func specs(t *testing.T, file, src string) map[string]Spec {
	t.Helper()
	cfg, err := config.Parse(file, []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	kind, name := sdk.KindFlushPolicy, "marker"
	base := Spec{Kind: kind, Name: name, Config: cfg.Plugins[kind][name].Config,
		Source: cfg.PosOf("plugin", kind, name).String(),
		KeyPos: func(path []string) string {
			return cfg.PosOf(append([]string{"plugin", kind, name, "config"}, path...)...).String()
		}}
	in, out := base, base
	in.New = func() any { return &markerPolicy{} }
	out.Command, out.Env = self, []string{servePluginEnv + "=1"}
	return map[string]Spec{"in-process": in, "out of process": out}
}

// The same bad block is refused with the same errors, naming file:line and key, whether the
// plugin runs in-process or as a process; the plugin's Configure never runs.
func TestBadBlockRefusedAlikeInAndOutOfProcess(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "configured")
	cases := []struct{ name, block, want string }{
		{"typo", `max_bacth = 5`, `p.hcl:4,5: plugin.flush_policy.marker.config.max_bacth: unknown key; did you mean "max_batch"?`},
		{"float for an integer", `max_batch = 2.5`, `p.hcl:4,5: plugin.flush_policy.marker.config.max_batch: want a whole number, got the number 2.5`},
		{"bare number for a duration", `delay = 30`, `p.hcl:4,5: plugin.flush_policy.marker.config.delay: want a duration with a unit`},
		{"nested typo", "limits {\n      hihg = 3\n    }", `p.hcl:5,7: plugin.flush_policy.marker.config.limits.hihg: unknown key; did you mean "high"?`},
		{"plugin's own validation", "limits {\n      low = 30\n    }", `p.hcl:5,7: plugin.flush_policy.marker.config.limits.low: above limits.high`},
	}
	for _, c := range cases {
		src := fmt.Sprintf("plugin \"flush_policy\" \"marker\" {\n  config {\n    marker = %q\n    %s\n  }\n}\n", marker, c.block)
		for placement, spec := range specs(t, "p.hcl", src) {
			t.Run(c.name+" "+placement, func(t *testing.T) {
				p, err := Load(context.Background(), spec, nil)
				if err == nil {
					p.Close()
					t.Fatal("the block was accepted")
				}
				if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `plugin "flush_policy" "marker" (p.hcl:1,1)`) {
					t.Fatalf("error:\n%v\nwant it to contain %q", err, c.want)
				}
				if _, err := os.Stat(marker); err == nil {
					t.Fatal("the plugin's Configure ran on a refused block")
				}
			})
		}
	}
	// A missing required key.
	for placement, spec := range specs(t, "p.hcl", "plugin \"flush_policy\" \"marker\" {\n  config {\n    max_batch = 5\n  }\n}\n") {
		_, err := Load(context.Background(), spec, nil)
		if err == nil || !strings.Contains(err.Error(), "p.hcl:2,3: plugin.flush_policy.marker.config.marker: required key is not set") {
			t.Fatalf("%s: %v", placement, err)
		}
	}
}

// A good block: integers stay integers (int64 from HCL in-process, JSON over gRPC out of process)
// and defaults apply alike; Check validates without running the plugin's Configure, Load runs it.
func TestGoodBlockAlikeInAndOutOfProcess(t *testing.T) {
	for placement, spec := range specs(t, "p.hcl", "") {
		t.Run(placement, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "configured")
			spec.Config = map[string]any{"marker": marker, "max_batch": int64(9007199254740993)}
			if err := Check(context.Background(), spec, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("Check ran the plugin's Configure")
			}
			spec.Config["max_batch"] = int64(64)
			p, err := Load(context.Background(), spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			b, err := os.ReadFile(marker)
			if err != nil || string(b) != "64" {
				t.Fatalf("marker %q, %v", b, err)
			}
			d, err := p.FlushPolicy().Decide(context.Background(), sdk.PendingState{})
			if err != nil || d.MaxBatch != 64 || d.MaxAge != time.Millisecond {
				t.Fatalf("decision %+v, %v", d, err)
			}
		})
	}
}

// Values set by an environment variable or a -set flag arrive as text and are read as the
// schema's type.
func TestTextValuesTakeTheSchemaType(t *testing.T) {
	for placement, spec := range specs(t, "p.hcl", "") {
		t.Run(placement, func(t *testing.T) {
			spec.Config = map[string]any{"marker": filepath.Join(t.TempDir(), "m"), "max_batch": "12"}
			spec.FromText = func(path []string) bool { return len(path) == 1 && path[0] == "max_batch" }
			p, err := Load(context.Background(), spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if d, _ := p.FlushPolicy().Decide(context.Background(), sdk.PendingState{}); d.MaxBatch != 12 {
				t.Fatalf("max batch %d", d.MaxBatch)
			}
			spec.FromText = nil
			if _, err := Load(context.Background(), spec, nil); err == nil || !strings.Contains(err.Error(), `want a whole number, got the string "12"`) {
				t.Fatalf("a string written in HCL: %v", err)
			}
		})
	}
}
