package adaptive_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/sdk"
)

var (
	_ sdk.FlushPolicy  = (*adaptive.Policy)(nil)
	_ sdk.Describer    = (*adaptive.Policy)(nil)
	_ sdk.Configurable = (*adaptive.Policy)(nil)
)

// light is a peer at light load: one task pending, every worker idle, a loopback send latency.
func light() sdk.PendingState {
	return sdk.PendingState{Count: 1, IdleWorkers: 20, RecentLatency: 300 * time.Microsecond,
		MaxBatchSize: 250, MaxBufferSize: 10000}
}

func decide(t *testing.T, p *adaptive.Policy, s sdk.PendingState) sdk.FlushDecision {
	t.Helper()
	d, err := p.Decide(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLightLoadCutsAtOnce(t *testing.T) {
	p := adaptive.New(adaptive.DefaultConfig())
	for name, mod := range map[string]func(*sdk.PendingState){
		"one pending":              func(*sdk.PendingState) {},
		"no latency measured yet":  func(s *sdk.PendingState) { s.RecentLatency = 0 },
		"latency at the target":    func(s *sdk.PendingState) { s.RecentLatency = adaptive.DefaultTargetLatency },
		"half the workers sending": func(s *sdk.PendingState) { s.InFlight, s.IdleWorkers = 10, 10 },
		"oldest waited a while":    func(s *sdk.PendingState) { s.OldestAge = 3 * time.Millisecond },
	} {
		s := light()
		mod(&s)
		d := decide(t, p, s)
		want := sdk.FlushDecision{CutNow: true, MaxBatch: 250, MinCount: 1, RecheckAfter: adaptive.DefaultRecheckAfter}
		if d != want {
			t.Errorf("%s: %+v, want %+v", name, d, want)
		}
	}
}

func TestHeavyLoadWaitsForFullBatches(t *testing.T) {
	p := adaptive.New(adaptive.DefaultConfig())
	full := sdk.FlushDecision{MaxBatch: 250, MinCount: 250, MaxAge: 5 * time.Millisecond, RecheckAfter: adaptive.DefaultRecheckAfter}
	for name, mod := range map[string]func(*sdk.PendingState){
		"a tenth of a batch pending": func(s *sdk.PendingState) { s.Count = 26 },
		"all workers busy":           func(s *sdk.PendingState) { s.InFlight, s.IdleWorkers = 20, 0 },
		"no worker idle":             func(s *sdk.PendingState) { s.InFlight, s.IdleWorkers = 0, 0 },
		"latency twice the target":   func(s *sdk.PendingState) { s.RecentLatency = 4 * time.Millisecond },
		"latency far above":          func(s *sdk.PendingState) { s.RecentLatency = time.Second },
		"two failed sends":           func(s *sdk.PendingState) { s.RecentErrors = 2 },
	} {
		s := light()
		mod(&s)
		if d := decide(t, p, s); d != full {
			t.Errorf("%s: %+v, want %+v", name, d, full)
		}
	}
}

func TestThresholdsGrowWithLoad(t *testing.T) {
	c := adaptive.DefaultConfig()
	// Half pressure from each signal alone: half of max_batch_size and of max_delay.
	for name, mod := range map[string]func(*sdk.PendingState){
		"pending":  func(s *sdk.PendingState) { s.Count = 13 }, // 12 of 25
		"workers":  func(s *sdk.PendingState) { s.InFlight, s.IdleWorkers = 15, 5 },
		"latency":  func(s *sdk.PendingState) { s.RecentLatency = 3 * time.Millisecond },
		"an error": func(s *sdk.PendingState) { s.RecentErrors = 1 },
	} {
		s := light()
		mod(&s)
		d := c.Decision(s)
		if d.CutNow || d.MaxBatch != 250 || d.RecheckAfter != adaptive.DefaultRecheckAfter ||
			d.MinCount < 120 || d.MinCount > 125 || d.MaxAge < 2399*time.Microsecond || d.MaxAge > 2500*time.Microsecond {
			t.Errorf("%s: %+v, want about half of 250 tasks and 5ms", name, d)
		}
	}
	// More of any signal never lowers the thresholds.
	grow := map[string]func(*sdk.PendingState, int){
		"pending": func(s *sdk.PendingState, i int) { s.Count = 1 + i },
		"workers": func(s *sdk.PendingState, i int) { s.InFlight, s.IdleWorkers = min(i, 20), 20-min(i, 20) },
		"latency": func(s *sdk.PendingState, i int) { s.RecentLatency = time.Duration(i) * 200 * time.Microsecond },
		"errors":  func(s *sdk.PendingState, i int) { s.RecentErrors = i / 10 },
	}
	for name, f := range grow {
		prev := c.Decision(light())
		for i := 0; i <= 40; i++ {
			s := light()
			f(&s, i)
			d := c.Decision(s)
			if d.MinCount < prev.MinCount || d.MaxAge < prev.MaxAge || (prev.MinCount > 1 && d.CutNow) {
				t.Fatalf("%s step %d: %+v after %+v", name, i, d, prev)
			}
			prev = d
		}
		if prev.MinCount != 250 || prev.MaxAge != 5*time.Millisecond {
			t.Errorf("%s: at the end of the ramp %+v, want full thresholds", name, prev)
		}
	}
}

func TestErrorsBackOff(t *testing.T) {
	c := adaptive.DefaultConfig()
	s := light()
	if d := c.Decision(s); !d.CutNow {
		t.Fatalf("light load: %+v", d)
	}
	s.RecentErrors = 1
	one := c.Decision(s)
	if one.CutNow || one.MaxAge != 2500*time.Microsecond || one.MinCount != 125 {
		t.Errorf("one failure: %+v", one)
	}
	s.RecentErrors = 5
	if d := c.Decision(s); d.CutNow || d.MaxAge != 5*time.Millisecond || d.MinCount != 250 {
		t.Errorf("five failures: %+v", d)
	}
}

func TestSettings(t *testing.T) {
	c := adaptive.Config{MaxBatchSize: 100, MaxDelay: 20 * time.Millisecond, TargetLatency: 10 * time.Millisecond,
		RecheckAfter: 7 * time.Millisecond}
	s := light()
	s.RecentLatency = 8 * time.Millisecond // below this target
	if d := c.Decision(s); !d.CutNow || d.MaxBatch != 100 || d.RecheckAfter != 7*time.Millisecond {
		t.Errorf("light: %+v", d)
	}
	s.RecentLatency = 20 * time.Millisecond
	if d := c.Decision(s); d != (sdk.FlushDecision{MaxBatch: 100, MinCount: 100, MaxAge: 20 * time.Millisecond, RecheckAfter: 7 * time.Millisecond}) {
		t.Errorf("heavy: %+v", d)
	}
	// The host's limit wins over max_batch_size.
	s.MaxBatchSize = 40
	if d := c.Decision(s); d.MaxBatch != 40 || d.MinCount != 40 {
		t.Errorf("host limit 40: %+v", d)
	}
	// max_delay 0 never holds a task back.
	c.MaxDelay = 0
	if d := c.Decision(s); d.MaxAge != 0 {
		t.Errorf("max_delay 0: %+v", d)
	}
	// New fills in what the rule cannot use.
	if got := adaptive.New(adaptive.Config{MaxDelay: -time.Second}).Config(); got != (adaptive.Config{MaxBatchSize: 250,
		TargetLatency: 2 * time.Millisecond, RecheckAfter: 5 * time.Millisecond}) {
		t.Errorf("New normalized: %+v", got)
	}
}

// Whatever the state, the decision is sane: the host asks again after RecheckAfter (never per
// task), thresholds stay within the settings.
func TestDecisionBounds(t *testing.T) {
	c := adaptive.DefaultConfig()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		s := sdk.PendingState{
			Count: r.IntN(12000) - 10, OldestAge: time.Duration(r.Int64N(int64(time.Minute))),
			IdleWorkers: r.IntN(25) - 2, InFlight: r.IntN(25) - 2,
			RecentLatency: time.Duration(r.Int64N(int64(time.Second))) - time.Millisecond,
			RecentErrors:  r.IntN(10) - 1, MaxBatchSize: r.IntN(400) - 50, MaxBufferSize: 10000,
		}
		d := c.Decision(s)
		lvl := c.Level(s)
		if d.RecheckAfter != c.RecheckAfter || d.MaxBatch < 1 || d.MaxBatch > 250 || d.MinCount < 1 ||
			d.MinCount > d.MaxBatch || d.MaxAge < 0 || d.MaxAge > c.MaxDelay || lvl < 0 || lvl > 1 ||
			d.CutNow != (lvl == 0) {
			t.Fatalf("state %+v: level %v, decision %+v", s, lvl, d)
		}
	}
}

func TestInfo(t *testing.T) {
	info, err := sdk.InfoOf(adaptive.New(adaptive.DefaultConfig()), sdk.KindFlushPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "adaptive" || info.Kind != sdk.KindFlushPolicy || info.ProtocolVersion != sdk.ProtocolVersion {
		t.Fatalf("info: %+v", info)
	}
	var paths []string
	defaults := map[string]any{}
	for _, k := range info.Schema {
		paths = append(paths, k.Path)
		defaults[k.Path] = k.Default
		if k.Description == "" || k.Type == "" {
			t.Errorf("schema key %s lacks a type or description", k.Path)
		}
	}
	sort.Strings(paths)
	if want := []string{"max_batch_size", "max_delay", "recheck_after", "target_latency"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("schema: %v", paths)
	}
	// The documented defaults are the ones Configure applies.
	p := adaptive.New(adaptive.Config{MaxBatchSize: 7})
	if diags := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, defaults)}); diags != nil {
		t.Fatalf("schema defaults refused: %v", diags)
	}
	if p.Config() != adaptive.DefaultConfig() {
		t.Errorf("schema defaults give %+v", p.Config())
	}
}

func TestConfigure(t *testing.T) {
	ctx := context.Background()
	p := adaptive.New(adaptive.Config{MaxBatchSize: 9})
	if diags := p.Configure(ctx, sdk.ConfigureRequest{}); diags != nil {
		t.Fatal(diags)
	}
	if p.Config() != adaptive.DefaultConfig() {
		t.Errorf("an empty block gives %+v, want the defaults", p.Config())
	}
	want := adaptive.Config{MaxBatchSize: 100, MaxDelay: 10 * time.Millisecond, TargetLatency: time.Millisecond,
		RecheckAfter: 3 * time.Millisecond}
	// Numbers arrive as JSON in-process and in a plugin process alike; HCL's int64, a float64
	// holding a whole number and an int all give the same block.
	for _, n := range []any{int64(100), float64(100), 100} {
		p := adaptive.New(adaptive.DefaultConfig())
		diags := p.Configure(ctx, sdk.ConfigureRequest{Config: raw(t, map[string]any{
			"max_batch_size": n, "max_delay": "10ms", "target_latency": "1ms", "recheck_after": "3ms"})})
		if diags != nil {
			t.Fatalf("%T: %v", n, diags)
		}
		if p.Config() != want {
			t.Errorf("%T: %+v", n, p.Config())
		}
	}
	// max_delay 0 is allowed: never hold a task back.
	if diags := p.Configure(ctx, sdk.ConfigureRequest{Config: raw(t, map[string]any{"max_delay": "0s"})}); diags != nil {
		t.Fatal(diags)
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		key  string
		val  any
		want string // in the message
	}{
		{"max_batch_size", int64(0), "whole number of at least 1 (and at most 2147483647), got 0"},
		{"max_batch_size", float64(-3), "got -3"},
		{"max_batch_size", 2.5, "want a whole number, got the number 2.5"},
		{"max_batch_size", "250", `want a whole number, got the string "250"`},
		{"max_batch_size", float64(1e12), "whole number"},
		{"max_delay", "soon", `want a duration such as "30s" or "500ms", got the string "soon"`},
		{"max_delay", "-1ms", `got "-1ms"`},
		{"max_delay", int64(5), "want a duration with a unit"},
		{"target_latency", "0s", `positive duration such as "2ms", got "0s"`},
		{"target_latency", true, "got the bool true"},
		{"recheck_after", "500us", `at least 1ms`},
		{"recheck_after", "0s", `got "0s"`},
		{"max_dealy", "5ms", `unknown key; did you mean "max_delay"? (known: max_batch_size, max_delay, recheck_after, target_latency)`},
	} {
		p := adaptive.New(adaptive.Config{MaxBatchSize: 42})
		before := p.Config()
		// A good key next to the bad one is not applied either.
		cfg := map[string]any{"recheck_after": "7ms"}
		if c.key == "recheck_after" {
			cfg = map[string]any{"max_delay": "7ms"}
		}
		cfg[c.key] = c.val
		diags := p.Configure(ctx, sdk.ConfigureRequest{Config: raw(t, cfg)})
		if len(diags) != 1 {
			t.Errorf("%s = %v: %d diagnostics %v, want 1", c.key, c.val, len(diags), diags)
			continue
		}
		d := diags[0]
		if d.Path != c.key || d.Warning || !strings.Contains(d.Message, c.want) {
			t.Errorf("%s = %v: %+v, want path %s and a message with %q", c.key, c.val, d, c.key, c.want)
		}
		if p.Config() != before {
			t.Errorf("%s = %v: a refused configuration changed the settings to %+v", c.key, c.val, p.Config())
		}
	}
	// Every bad key is reported, each under its own path.
	p := adaptive.New(adaptive.DefaultConfig())
	diags := p.Configure(ctx, sdk.ConfigureRequest{Config: raw(t, map[string]any{"max_batch_size": "x", "max_delay": "y", "extra": 1})})
	var paths []string
	for _, d := range diags {
		paths = append(paths, d.Path)
	}
	sort.Strings(paths)
	if want := []string{"extra", "max_batch_size", "max_delay"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("diagnostics for three bad keys: %v", diags)
	}
}

// raw is a config block as the host hands it to a plugin.
func raw(t *testing.T, m map[string]any) sdk.RawConfig {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
