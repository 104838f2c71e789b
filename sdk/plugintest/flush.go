package plugintest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// FlushPolicyCase describes the flush policy under test.
type FlushPolicyCase struct {
	New    func(t *testing.T) sdk.FlushPolicy
	Config map[string]any
	// SkipUnknownKey: see TransportCase.
	SkipUnknownKey bool
}

// States are the pending-stage states the suite asks about.
var States = map[string]sdk.PendingState{
	"empty": {MaxBatchSize: 250, MaxBufferSize: 10000, IdleWorkers: 20, RecentWindow: 10 * time.Second},
	"light": {Count: 1, Bytes: 1000, OldestAge: 200 * time.Microsecond, IdleWorkers: 20, RecentLatency: time.Millisecond,
		RecentSends: 50, RecentWindow: 10 * time.Second, MaxBatchSize: 250, MaxBufferSize: 10000},
	"heavy": {Count: 4000, Bytes: 4 << 20, OldestAge: 40 * time.Millisecond, IdleWorkers: 0, InFlight: 20,
		RecentLatency: 30 * time.Millisecond, RecentSends: 3000, RecentWindow: 10 * time.Second, MaxBatchSize: 250, MaxBufferSize: 10000},
	"failing": {Count: 300, Bytes: 300000, OldestAge: 2 * time.Second, IdleWorkers: 20, RecentLatency: time.Second,
		RecentErrors: 40, RecentSends: 50, RecentWindow: 10 * time.Second, MaxBatchSize: 250, MaxBufferSize: 10000},
	"over the buffer": {Count: 12000, Bytes: 12 << 20, OldestAge: time.Second, IdleWorkers: 1, InFlight: 19,
		RecentLatency: 5 * time.Millisecond, RecentSends: 5000, RecentWindow: 10 * time.Second, MaxBatchSize: 250, MaxBufferSize: 10000},
}

// CheckDecision returns what is wrong with d as an answer to s, in plain words ("" if nothing).
func CheckDecision(s sdk.PendingState, d sdk.FlushDecision) string {
	switch {
	case d.MaxBatch < 1 || d.MaxBatch > s.MaxBatchSize:
		return fmt.Sprintf("MaxBatch is %d: it must be between 1 and the host's MaxBatchSize (%d)", d.MaxBatch, s.MaxBatchSize)
	case d.MinCount < 0 || d.MinCount > d.MaxBatch:
		return fmt.Sprintf("MinCount is %d with MaxBatch %d: it must be between 0 and MaxBatch, or a full batch never triggers a cut", d.MinCount, d.MaxBatch)
	case d.MaxAge < 0 || d.RecheckAfter < 0:
		return fmt.Sprintf("negative duration (MaxAge %s, RecheckAfter %s)", d.MaxAge, d.RecheckAfter)
	}
	if s.Count > 0 && !d.CutNow && (d.MinCount == 0 || d.MinCount > s.Count) && (d.MaxAge == 0 || d.MaxAge > time.Minute) &&
		(d.RecheckAfter == 0 || d.RecheckAfter > time.Minute) {
		return fmt.Sprintf("with %d tasks pending nothing would ever cut a batch (no CutNow, MinCount %d, MaxAge %s, RecheckAfter %s): "+
			"set a MaxAge so a lone task is sent", s.Count, d.MinCount, d.MaxAge, d.RecheckAfter)
	}
	return ""
}

// FlushPolicy runs the flush-policy conformance suite, in-process and through the gRPC path.
func FlushPolicy(t *testing.T, c FlushPolicyCase) {
	t.Helper()
	if c.New == nil {
		t.Fatal("plugintest.FlushPolicy: FlushPolicyCase needs New")
	}
	names := make([]string, 0, len(States))
	for n := range States {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, via := range []string{"in-process", "grpc"} {
		t.Run(via, func(t *testing.T) {
			impl := c.New(t)
			p := impl
			if via == "grpc" {
				p = ServeFlushPolicy(t, impl)
			}
			mustConfigure(t, p, c.Config, nil)
			ctx := context.Background()
			for _, n := range names {
				s := States[n]
				d, err := p.Decide(ctx, s)
				if err != nil {
					t.Errorf("%s state: Decide failed: %v (herald then falls back to size-or-age)", n, err)
					continue
				}
				if msg := CheckDecision(s, d); msg != "" {
					t.Errorf("%s state: %s", n, msg)
				}
				if again, err := p.Decide(ctx, s); err != nil || again != d {
					t.Errorf("%s state: two asks with the same state gave %+v and %+v: keep Decide a pure function of the state", n, d, again)
				}
			}
			if via == "in-process" {
				const n = 1001
				lat := make([]time.Duration, n)
				for i := range lat {
					start := time.Now()
					_, _ = p.Decide(ctx, States["heavy"])
					lat[i] = time.Since(start)
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				if lat[n/2] > time.Millisecond {
					t.Errorf("a decision takes %s (median): keep Decide cheap, it runs on the replication path", lat[n/2])
				}
			}
			checkBase(t, p, impl, sdk.KindFlushPolicy, c.SkipUnknownKey)
		})
	}
}
