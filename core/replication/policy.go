package replication

import (
	"context"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// SizeOrAge is Eureka's flush rule: cut a batch when MaxBatch tasks are pending or when the oldest
// has waited Delay. Its decision never changes, so the host asks it once.
type SizeOrAge struct {
	MaxBatch int
	Delay    time.Duration
}

// Decide implements sdk.FlushPolicy.
func (p SizeOrAge) Decide(_ context.Context, _ sdk.PendingState) (sdk.FlushDecision, error) {
	return SizeOrAgeDecision(p.MaxBatch, p.Delay), nil
}

// SizeOrAgeDecision is the size-or-age rule as a decision the host enforces by itself; plugins
// that implement the rule out of process return the same.
func SizeOrAgeDecision(maxBatch int, delay time.Duration) sdk.FlushDecision {
	return sdk.FlushDecision{MaxBatch: maxBatch, MinCount: maxBatch, MaxAge: delay, RecheckAfter: time.Hour}
}
