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

// Info implements sdk.Describer.
func (w *Window) Info() sdk.Info {
	return sdk.Info{Name: "window", Kind: sdk.KindFlushPolicy, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "window", Type: "duration", Default: "2ms", Description: "longest a task waits for company"},
		{Path: "max_batch", Type: "number", Default: 250, Description: "most tasks per batch (capped by the host's max_batch_size)"},
	}}
}

// Configure implements sdk.Configurable.
func (w *Window) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	window, maxBatch := 2*time.Millisecond, 250
	for k, v := range req.Config {
		switch k {
		case "window":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 || d > time.Minute {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a duration between 0 and 1m such as \"2ms\", got %v", v)})
				continue
			}
			window = d
		case "max_batch":
			n, ok := wholeNumber(v)
			if !ok || n < 1 {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a whole number ≥ 1, got %v", v)})
				continue
			}
			maxBatch = n
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: max_batch, window)"})
		}
	}
	w.mu.Lock()
	w.window, w.maxBatch = window, maxBatch
	w.mu.Unlock()
	return diags
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

// wholeNumber reads a number from the config block: a float64 from HCL or JSON, an int from Go.
func wholeNumber(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), x == float64(int(x))
	}
	return 0, false
}
