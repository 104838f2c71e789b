package main

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{
		New:    func(*testing.T) sdk.FlushPolicy { return New() },
		Config: map[string]any{"window": "3ms"},
	})
}

func TestRule(t *testing.T) {
	p := plugintest.ServeFlushPolicy(t, New())
	if d := plugintest.Configure(t, p, map[string]any{"window": "5ms", "max_batch": float64(100)}, nil); len(d) != 0 {
		t.Fatal(d)
	}
	ctx := context.Background()
	light, _ := p.Decide(ctx, plugintest.States["light"])
	if !light.CutNow {
		t.Errorf("an idle peer with one task pending must cut at once: %+v", light)
	}
	heavy, _ := p.Decide(ctx, plugintest.States["heavy"])
	if heavy.CutNow || heavy.MaxAge != 5*time.Millisecond || heavy.MaxBatch != 100 || heavy.MinCount != 100 {
		t.Errorf("under load the policy gathers for one window, batches of 100: %+v", heavy)
	}
	failing, _ := p.Decide(ctx, sdk.PendingState{Count: 1, IdleWorkers: 20, RecentErrors: 3, MaxBatchSize: 50})
	if failing.CutNow || failing.MaxBatch != 50 {
		t.Errorf("a failing peer is not rushed, and the host's limit caps max_batch: %+v", failing)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	d := plugintest.Configure(t, New(), map[string]any{"window": "-1s", "max_batch": 0}, nil)
	if len(d) != 2 {
		t.Errorf("want two diagnostics, got %+v", d)
	}
	// A fraction is refused by type, before Validate.
	d = plugintest.Configure(t, New(), map[string]any{"max_batch": 0.5}, nil)
	if len(d) != 1 || d[0].Path != "max_batch" {
		t.Errorf("want one diagnostic for max_batch, got %+v", d)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
