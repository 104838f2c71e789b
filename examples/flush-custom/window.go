package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Window is a flush policy that sends at once when the peer is idle and the queue is tiny, and
// otherwise gathers tasks for at most `window` or until `max_batch` are pending.
type Window struct {
	mu       sync.RWMutex
	window   time.Duration
	maxBatch int
}

// New returns the policy with a 2 ms window and batches of up to 250.
func New() *Window { return &Window{window: 2 * time.Millisecond, maxBatch: 250} }

// Config is the policy's config {} block: its keys, types and defaults, from which the SDK
// derives the schema herald checks the block against.
type Config struct {
	Window   time.Duration `config:"window" default:"2ms" description:"longest a task waits for company"`
	MaxBatch int           `config:"max_batch" default:"250" description:"most tasks per batch (capped by the host's max_batch_size)"`
}

// Validate implements sdk.Validator.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if c.Window <= 0 || c.Window > time.Minute {
		diags = append(diags, sdk.Diagnostic{Path: "window", Message: fmt.Sprintf("want a duration between 0 and 1m such as \"2ms\", got %s", c.Window)})
	}
	if c.MaxBatch < 1 {
		diags = append(diags, sdk.Diagnostic{Path: "max_batch", Message: fmt.Sprintf("want a whole number ≥ 1, got %d", c.MaxBatch)})
	}
	return diags
}

// Info implements sdk.Describer.
func (w *Window) Info() sdk.Info {
	return sdk.Info{Name: "window", Kind: sdk.KindFlushPolicy, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable.
func (w *Window) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	w.mu.Lock()
	w.window, w.maxBatch = c.Window, c.MaxBatch
	w.mu.Unlock()
	return nil
}

// Decide implements sdk.FlushPolicy. It is a pure function of the state: the host enforces the
// thresholds between asks and asks again after one window.
func (w *Window) Decide(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	w.mu.RLock()
	window, maxBatch := w.window, w.maxBatch
	w.mu.RUnlock()
	if s.MaxBatchSize > 0 && maxBatch > s.MaxBatchSize {
		maxBatch = s.MaxBatchSize
	}
	d := sdk.FlushDecision{MaxBatch: maxBatch, MinCount: maxBatch, MaxAge: window, RecheckAfter: window}
	// An idle peer and a tiny queue: waiting would only add latency.
	if s.Count > 0 && s.Count <= 2 && s.IdleWorkers >= 2 && s.RecentErrors == 0 {
		d.CutNow = true
	}
	return d, nil
}
