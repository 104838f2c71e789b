// Package adaptive is a flush policy that keeps replication latency low at light load and grows
// batches under load.
//
// # The rule
//
// Each decision turns what the host reports of a peer's pending stage (sdk.PendingState) into a
// load level between 0 and 1: the largest of four pressures, each 0 when that signal says "light"
// and 1 when it says "loaded".
//
//   - pending: (Count − 1) / (max_batch_size / 10, at least 1). A lone task is no pressure; a
//     tenth of a full batch waiting (25 tasks by default) is full pressure.
//   - workers: the share of the peer's workers sending a batch (InFlight / (InFlight +
//     IdleWorkers)), from half of them (0) to all of them (1).
//   - latency: the recent send latency (RecentLatency), from target_latency (0) to twice
//     target_latency (1).
//   - errors: a half per recent failed send (RecentErrors), so two failures are full pressure: a
//     peer that fails gets fewer, larger batches while the host's retry delays run.
//
// At level 0 the decision is CutNow (MinCount 1, MaxAge 0): a batch is cut as soon as a task is
// pending and a worker is free, so at light load a write reaches the peer in one send latency.
// Above 0 the thresholds grow with the level:
//
//	MinCount = max(1, level × max_batch_size)    MaxAge = level × max_delay
//
// so at full load the policy is size-or-age with max_batch_size and max_delay. The host cuts at
// most max_batch_size tasks in one batch whatever the level.
//
// Every decision carries RecheckAfter = recheck_after (5 ms): the host enforces the thresholds by
// itself and asks again only after that time, never per task, so the level follows the load
// within a few milliseconds. The interval bounds the cost of asking: in-process a decision takes
// tens of nanoseconds, but a plugin process (out_of_process = true) answers over gRPC in a
// fraction of a millisecond, on the path of the batch being cut.
//
// The decision is a pure function of the settings and the state (Config.Decision): no clock, no
// memory of past calls, no allocation. It may be asked for many peers concurrently.
//
// target_latency should sit above the peer's send latency when idle (a same-region round trip
// plus the peer's apply time). A peer whose round trip alone exceeds it, in another region, always
// gets batches that wait up to max_delay, which is small next to that round trip.
//
// herald's host keeps MaxAge in whole milliseconds (a MaxAge below 1 ms cuts at once) and reports
// as RecentErrors the sends failed in a row since the last success.
package adaptive

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Config is the policy's settings, the keys of its config {} block.
type Config struct {
	// MaxBatchSize (max_batch_size) is the most tasks in one batch, and MinCount at full load.
	MaxBatchSize int `config:"max_batch_size" default:"250" description:"Most tasks in one batch; the count a batch waits for at full load."`
	// MaxDelay (max_delay) is MaxAge at full load: the longest a task waits for a batch to fill.
	// 0 never holds a task back (only MinCount and the workers' availability batch tasks).
	MaxDelay time.Duration `config:"max_delay" default:"5ms" description:"Longest a task waits for a batch to fill, at full load; light load cuts at once."`
	// TargetLatency (target_latency) is the send latency above which the peer counts as loaded;
	// at twice this latency the latency pressure is full.
	TargetLatency time.Duration `config:"target_latency" default:"2ms" description:"Send latency above which the peer counts as loaded (fully at twice this)."`
	// RecheckAfter (recheck_after) is how long the host keeps a decision before asking again.
	RecheckAfter time.Duration `config:"recheck_after" default:"5ms" description:"How long the host keeps a decision before asking again (at least 1ms)."`
}

// Validate implements sdk.Validator: the ranges the rule needs.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	bad := func(key, format string, a ...any) {
		diags = append(diags, sdk.Diagnostic{Path: key, Message: fmt.Sprintf(format, a...)})
	}
	if c.MaxBatchSize < 1 || c.MaxBatchSize > math.MaxInt32 {
		bad("max_batch_size", "want a whole number of at least 1 (and at most %d), got %d", math.MaxInt32, c.MaxBatchSize)
	}
	if c.MaxDelay < 0 {
		bad("max_delay", "want a duration such as \"5ms\" (0 never holds a task back), got %q", c.MaxDelay)
	}
	if c.TargetLatency <= 0 {
		bad("target_latency", "want a positive duration such as \"2ms\", got %q", c.TargetLatency)
	}
	if c.RecheckAfter < time.Millisecond {
		bad("recheck_after", "want a duration of at least 1ms such as \"5ms\" (the host keeps decisions in whole milliseconds), got %q", c.RecheckAfter)
	}
	return diags
}

// Defaults.
const (
	DefaultMaxBatchSize  = 250
	DefaultMaxDelay      = 5 * time.Millisecond
	DefaultTargetLatency = 2 * time.Millisecond
	DefaultRecheckAfter  = 5 * time.Millisecond
)

// DefaultConfig returns the defaults: 250 tasks, 5 ms, a 2 ms target latency, a recheck every
// 5 ms.
func DefaultConfig() Config {
	return Config{MaxBatchSize: DefaultMaxBatchSize, MaxDelay: DefaultMaxDelay,
		TargetLatency: DefaultTargetLatency, RecheckAfter: DefaultRecheckAfter}
}

// normalized replaces values the rule cannot use: a batch size below 1 and a non-positive target
// latency or recheck take the defaults, a negative delay is 0.
func (c Config) normalized() Config {
	if c.MaxBatchSize < 1 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	if c.MaxDelay < 0 {
		c.MaxDelay = 0
	}
	if c.TargetLatency <= 0 {
		c.TargetLatency = DefaultTargetLatency
	}
	if c.RecheckAfter <= 0 {
		c.RecheckAfter = DefaultRecheckAfter
	}
	return c
}

// Level is the load level in [0, 1] the rule derives from s: the largest of the pending, workers,
// latency and errors pressures (see the package documentation).
func (c Config) Level(s sdk.PendingState) float64 {
	maxBatch := c.maxBatch(s)
	// pending: 0 for a lone task, 1 at a tenth of a full batch.
	level := clamp01(float64(s.Count-1) / max(float64(maxBatch)/10, 1))
	// workers: 0 while at most half are sending, 1 when all are (or none is idle).
	busy := 1.0
	if total := s.InFlight + s.IdleWorkers; s.IdleWorkers > 0 && total > 0 {
		busy = float64(s.InFlight) / float64(total)
	}
	level = max(level, clamp01(2*busy-1))
	// latency: 0 up to the target, 1 at twice the target.
	if c.TargetLatency > 0 {
		level = max(level, clamp01(float64(s.RecentLatency-c.TargetLatency)/float64(c.TargetLatency)))
	}
	// errors: a half per recent failure.
	level = max(level, clamp01(float64(s.RecentErrors)/2))
	return level
}

// Decision is the rule: the flush decision for state s. It is pure and cheap.
func (c Config) Decision(s sdk.PendingState) sdk.FlushDecision {
	maxBatch := c.maxBatch(s)
	level := c.Level(s)
	if level <= 0 {
		return sdk.FlushDecision{CutNow: true, MaxBatch: maxBatch, MinCount: 1, RecheckAfter: c.RecheckAfter}
	}
	return sdk.FlushDecision{
		MaxBatch:     maxBatch,
		MinCount:     max(1, int(math.Round(level*float64(maxBatch)))),
		MaxAge:       time.Duration(level * float64(c.MaxDelay)),
		RecheckAfter: c.RecheckAfter,
	}
}

// maxBatch is the configured batch size, within the host's limit when it reports one.
func (c Config) maxBatch(s sdk.PendingState) int {
	if s.MaxBatchSize > 0 && s.MaxBatchSize < c.MaxBatchSize {
		return s.MaxBatchSize
	}
	return c.MaxBatchSize
}

func clamp01(x float64) float64 {
	if !(x > 0) { // also NaN
		return 0
	}
	return min(x, 1)
}

// Policy implements sdk.FlushPolicy, sdk.Describer and sdk.Configurable.
type Policy struct {
	cfg atomic.Pointer[Config]
}

// New returns the policy with settings c (zero or invalid values as described on Config take the
// defaults; see DefaultConfig).
func New(c Config) *Policy {
	p := &Policy{}
	c = c.normalized()
	p.cfg.Store(&c)
	return p
}

// Config returns the policy's current settings.
func (p *Policy) Config() Config { return *p.cfg.Load() }

// Decide implements sdk.FlushPolicy.
func (p *Policy) Decide(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	return p.cfg.Load().Decision(s), nil
}

// Info implements sdk.Describer.
func (p *Policy) Info() sdk.Info {
	return sdk.Info{Name: "adaptive", Kind: sdk.KindFlushPolicy, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable. Keys not given take the defaults; a bad value or an
// unknown key refuses the whole configuration and leaves the current one in place.
func (p *Policy) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	p.cfg.Store(&c)
	return nil
}
