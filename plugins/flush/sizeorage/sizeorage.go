// Package sizeorage is Eureka's flush rule as a plugin: cut a batch when max_batch_size tasks are
// pending or when the oldest has waited batching_delay. Its decision never changes, so the host
// asks it once and enforces the thresholds itself between asks.
package sizeorage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Policy implements sdk.FlushPolicy, sdk.Describer and sdk.Configurable.
type Policy struct {
	mu       sync.RWMutex
	maxBatch int
	delay    time.Duration
}

// New returns the policy with herald's defaults (250 tasks, 1 ms).
func New() *Policy { return &Policy{maxBatch: 250, delay: time.Millisecond} }

// Info implements sdk.Describer.
func (p *Policy) Info() sdk.Info {
	return sdk.Info{Name: "size-or-age", Kind: sdk.KindFlushPolicy, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "max_batch_size", Type: "number", Default: 250},
		{Path: "batching_delay", Type: "duration", Default: "1ms"},
	}}
}

// Configure implements sdk.Configurable.
func (p *Policy) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	maxBatch, delay := 250, time.Millisecond
	for k, v := range req.Config {
		switch k {
		case "max_batch_size":
			f, ok := v.(float64)
			if !ok || f < 1 || f != float64(int(f)) {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a whole number ≥ 1, got %v", v)})
				continue
			}
			maxBatch = int(f)
		case "batching_delay":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a duration such as \"1ms\", got %v", v)})
				continue
			}
			delay = d
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: max_batch_size, batching_delay)"})
		}
	}
	if len(diags) == 0 {
		p.mu.Lock()
		p.maxBatch, p.delay = maxBatch, delay
		p.mu.Unlock()
	}
	return diags
}

// Decide implements sdk.FlushPolicy.
func (p *Policy) Decide(context.Context, sdk.PendingState) (sdk.FlushDecision, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return sdk.FlushDecision{MaxBatch: p.maxBatch, MinCount: p.maxBatch, MaxAge: p.delay, RecheckAfter: time.Hour}, nil
}
