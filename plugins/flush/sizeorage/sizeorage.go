// Package sizeorage is Eureka's flush rule as a plugin: cut a batch when max_batch_size tasks are
// pending or when the oldest has waited batching_delay (Eureka's maxBatchingSize and
// maxBatchingDelay). It runs sdk.SizeOrAge, the rule the host falls back to, so the rule has one
// implementation in-process and out of process. Its decision never changes, so the host asks it
// once and enforces the thresholds itself between asks.
package sizeorage

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Config is the policy's config {} block. In-process, herald fills keys not written in the block
// from replication.max_batch_size and replication.batching_delay (or a peer block's).
type Config struct {
	MaxBatchSize  int           `config:"max_batch_size" default:"250" description:"tasks that cut a batch at once"`
	BatchingDelay time.Duration `config:"batching_delay" default:"1ms" description:"longest the oldest task waits for a batch to fill"`
}

// Validate implements sdk.Validator.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if c.MaxBatchSize < 1 {
		diags = append(diags, sdk.Diagnostic{Path: "max_batch_size", Message: "want a whole number of at least 1"})
	}
	if c.BatchingDelay < 0 {
		diags = append(diags, sdk.Diagnostic{Path: "batching_delay", Message: "want a duration of at least 0"})
	}
	return diags
}

// Policy implements sdk.FlushPolicy, sdk.Describer and sdk.Configurable.
type Policy struct {
	rule atomic.Pointer[sdk.SizeOrAge]
}

// New returns the policy with herald's defaults (250 tasks, 1 ms).
func New() *Policy {
	p := &Policy{}
	p.rule.Store(&sdk.SizeOrAge{MaxBatch: 250, Delay: time.Millisecond})
	return p
}

// Info implements sdk.Describer.
func (p *Policy) Info() sdk.Info {
	return sdk.Info{Name: "size-or-age", Kind: sdk.KindFlushPolicy, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable. A refused configuration leaves the current one in place.
func (p *Policy) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	p.rule.Store(&sdk.SizeOrAge{MaxBatch: c.MaxBatchSize, Delay: c.BatchingDelay})
	return nil
}

// Decide implements sdk.FlushPolicy.
func (p *Policy) Decide(ctx context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	return p.rule.Load().Decide(ctx, s)
}
