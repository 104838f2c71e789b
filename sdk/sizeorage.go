package sdk

import (
	"context"
	"time"
)

// SizeOrAge is Eureka's flush rule (PeerEurekaNode's batching: maxBatchingSize tasks, or
// maxBatchingDelay for the oldest): cut a batch when MaxBatch tasks are pending or when the
// oldest has waited Delay. Its decision never changes, so the host asks it once and enforces the
// thresholds itself between asks. It is the one implementation of the rule: the host's fallback
// and the built-in "size-or-age" flush policy (in-process or out of process) both use it.
type SizeOrAge struct {
	MaxBatch int
	Delay    time.Duration
}

// Decide implements FlushPolicy.
func (p SizeOrAge) Decide(context.Context, PendingState) (FlushDecision, error) {
	return FlushDecision{MaxBatch: p.MaxBatch, MinCount: p.MaxBatch, MaxAge: p.Delay, RecheckAfter: time.Hour}, nil
}
