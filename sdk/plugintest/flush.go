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
	// New returns a new, unconfigured policy. The suite configures it with Config itself.
	New func(t *testing.T) sdk.FlushPolicy
	// Config is the policy's config {} block for the test (nil: empty).
	Config map[string]any
	Options
}

// States are the pending-stage states the flush-policy suite asks about, by name. herald asks a
// policy only when tasks are pending; "empty" checks that a policy copes anyway.
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
	"small host limit": {Count: 120, Bytes: 120000, OldestAge: time.Millisecond, IdleWorkers: 4, InFlight: 1,
		RecentLatency: 2 * time.Millisecond, RecentSends: 400, RecentWindow: 10 * time.Second, MaxBatchSize: 50, MaxBufferSize: 1000},
}

// stateNames returns the names of States, sorted.
func stateNames() []string {
	names := make([]string, 0, len(States))
	for n := range States {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckDecision returns what is wrong with d as an answer to s, in plain words ("" if nothing):
// 1 ≤ MaxBatch ≤ s.MaxBatchSize, 0 ≤ MinCount ≤ MaxBatch (0: no count trigger), no negative
// durations. (MaxAge 0 means no waiting: herald cuts at once.)
func CheckDecision(s sdk.PendingState, d sdk.FlushDecision) string {
	switch {
	case d.MaxBatch < 1 || d.MaxBatch > s.MaxBatchSize:
		return fmt.Sprintf("MaxBatch is %d: it must be between 1 and the host's MaxBatchSize (%d); read the limit from the "+
			"PendingState rather than assuming one", d.MaxBatch, s.MaxBatchSize)
	case d.MinCount < 0 || d.MinCount > d.MaxBatch:
		return fmt.Sprintf("MinCount is %d with MaxBatch %d: keep 0 ≤ MinCount ≤ MaxBatch (0: no count trigger), or the "+
			"count that triggers a cut is more than a batch can take", d.MinCount, d.MaxBatch)
	case d.MaxAge < 0:
		return fmt.Sprintf("MaxAge is negative (%s): use 0 to cut without waiting", d.MaxAge)
	case d.RecheckAfter < 0:
		return fmt.Sprintf("RecheckAfter is negative (%s): use 0 to be asked again after the next cut", d.RecheckAfter)
	}
	return ""
}

// cutWithin plays herald's part from state s: it asks the policy, enforces the decision as the
// host does (cut on CutNow, at MinCount, at a full buffer, or when the oldest task reaches MaxAge)
// and asks again at every RecheckAfter with the tasks older. It returns when a batch would be cut,
// or ok false if nothing is cut within horizon.
func cutWithin(ctx context.Context, p sdk.FlushPolicy, s sdk.PendingState, horizon time.Duration) (at time.Duration, last sdk.FlushDecision, ok bool, err error) {
	for asks := 0; asks < 200; asks++ {
		d, err := p.Decide(ctx, s)
		if err != nil {
			return at, d, false, err
		}
		last = d
		if d.CutNow || (d.MinCount > 0 && s.Count >= d.MinCount) || (s.MaxBufferSize > 0 && s.Count >= s.MaxBufferSize) {
			return at, d, true, nil
		}
		wait := d.MaxAge - s.OldestAge
		if wait <= 0 {
			return at, d, true, nil
		}
		if d.RecheckAfter <= 0 || d.RecheckAfter >= wait {
			return at + wait, d, at+wait <= horizon, nil
		}
		at += d.RecheckAfter
		s.OldestAge += d.RecheckAfter
		if at > horizon {
			return at, d, false, nil
		}
	}
	// Still rechecking after 200 asks: assume the last decision holds.
	at += last.MaxAge - s.OldestAge
	return at, last, at <= horizon, nil
}

// FlushPolicy runs the flush-policy conformance suite: in-process, through the gRPC path, and a few
// checks on the policy in a plugin process of its own.
func FlushPolicy(t *testing.T, c FlushPolicyCase) {
	t.Helper()
	if c.New == nil {
		t.Fatal("plugintest.FlushPolicy: FlushPolicyCase.New is nil: give a function that returns a new policy")
	}
	if serveAsChild(t, sdk.KindFlushPolicy, func() any { return c.New(t) }) {
		return
	}
	for _, via := range vias {
		s := &flushSuite{c: c, via: via, top: t.Name()}
		t.Run(via, func(t *testing.T) {
			if via == viaProcess {
				t.Run("sane decisions", s.sane)
				t.Run("describe and configure", s.describe)
				return
			}
			t.Run("sane decisions", s.sane)
			t.Run("a batch is eventually cut", s.eventually)
			t.Run("the same state gets the same decision", s.deterministic)
			t.Run("a cancelled context", s.cancelled)
			if via == viaInProcess {
				t.Run("decisions are fast", s.fast)
			}
			t.Run("describe and configure", s.describe)
		})
	}
}

type flushSuite struct {
	c   FlushPolicyCase
	via string
	top string // the test that called the suite
}

func (s *flushSuite) fresh(t *testing.T) (impl, p sdk.FlushPolicy) {
	t.Helper()
	impl = s.c.New(t)
	if impl == nil {
		t.Fatal("FlushPolicyCase.New returned nil")
	}
	closeAtEnd(t, impl)
	impl = guardAs(t, sdk.KindFlushPolicy, impl).(sdk.FlushPolicy)
	p = impl
	switch s.via {
	case viaGRPC:
		p = ServeFlushPolicy(t, impl)
	case viaProcess:
		p = serveProcess(t, s.top, sdk.KindFlushPolicy).(sdk.FlushPolicy)
	}
	return impl, p
}

func (s *flushSuite) policy(t *testing.T) (impl, p sdk.FlushPolicy) {
	t.Helper()
	impl, p = s.fresh(t)
	MustConfigure(t, p, s.c.Config, NewFakeHost())
	return impl, p
}

func (s *flushSuite) sane(t *testing.T) {
	_, p := s.policy(t)
	for _, n := range stateNames() {
		st := States[n]
		d, err := p.Decide(context.Background(), st)
		if err != nil {
			t.Errorf("%s state: Decide failed: %v. herald then falls back to size-or-age every time it asks: return a decision", n, err)
			continue
		}
		if msg := CheckDecision(st, d); msg != "" {
			t.Errorf("%s state (%s): %s", n, describeState(st), msg)
		}
	}
}

func (s *flushSuite) eventually(t *testing.T) {
	_, p := s.policy(t)
	horizon := s.c.MaxWait
	if horizon <= 0 {
		horizon = 10 * time.Second
	}
	for _, n := range stateNames() {
		st := States[n]
		if st.Count == 0 {
			continue
		}
		at, d, ok, err := cutWithin(context.Background(), p, st, horizon)
		switch {
		case err != nil:
			t.Errorf("%s state: Decide failed: %v", n, err)
		case !ok:
			t.Errorf("%s state (%s): nothing would cut a batch within %s (last decision %+v; cut after %s at the earliest): "+
				"with tasks pending, set CutNow, a MinCount the count reaches, or a MaxAge of milliseconds, so that a lone "+
				"task is sent (herald drops tasks that wait past replication.max_time_for_replication)", n, describeState(st), horizon, d, at)
		}
	}
}

func (s *flushSuite) deterministic(t *testing.T) {
	impl, p := s.policy(t)
	ctx := context.Background()
	for _, n := range stateNames() {
		st := States[n]
		first, err := p.Decide(ctx, st)
		if err != nil {
			continue // reported by "sane decisions"
		}
		for i := 0; i < 3; i++ {
			if again, err := p.Decide(ctx, st); err != nil || again != first {
				t.Errorf("%s state: asked again with the same state, the policy answered %+v (err %v) after %+v: keep Decide a "+
					"function of the PendingState (herald asks rarely and enforces the answer itself; state kept between asks "+
					"makes decisions depend on when herald happened to ask)", n, again, err, first)
				break
			}
		}
		if s.via == viaGRPC {
			if direct, err := impl.Decide(ctx, st); err == nil && direct != first {
				t.Errorf("%s state: through gRPC the decision is %+v, in-process %+v: the answer must survive the wire", n, first, direct)
			}
		}
	}
}

func (s *flushSuite) cancelled(t *testing.T) {
	_, p := s.policy(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := States["light"]
	type answer struct {
		d   sdk.FlushDecision
		err error
	}
	done := make(chan answer, 1)
	go func() {
		d, err := p.Decide(ctx, st)
		done <- answer{d, err}
	}()
	select {
	case a := <-done:
		if a.err == nil {
			if msg := CheckDecision(st, a.d); msg != "" {
				t.Errorf("with a cancelled context: %s (return a sane decision or an error)", msg)
			}
		}
	case <-time.After(time.Second):
		t.Fatal("Decide with a cancelled context did not return within 1 s: do not block in Decide, and honour ctx")
	}
}

func (s *flushSuite) fast(t *testing.T) {
	_, p := s.policy(t)
	const budget = 250 * time.Microsecond
	ctx := context.Background()
	names := stateNames()
	lat := make([]time.Duration, 301)
	for i := range lat {
		st := States[names[i%len(names)]]
		start := time.Now()
		_, _ = p.Decide(ctx, st)
		lat[i] = time.Since(start)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if med := lat[len(lat)/2]; med > budget {
		t.Errorf("a decision takes %s (median, in-process): keep Decide well under a millisecond (this suite allows %s); "+
			"it runs on the replication path, and through gRPC it already costs about 0.2 ms", med, budget)
	}
}

func (s *flushSuite) describe(t *testing.T) {
	impl, p := s.fresh(t)
	checkDescribeConfigure(t, sdk.KindFlushPolicy, impl, p, s.c.Config, s.c.Options)
}

func describeState(s sdk.PendingState) string {
	return fmt.Sprintf("Count %d, OldestAge %s, IdleWorkers %d, MaxBatchSize %d, MaxBufferSize %d",
		s.Count, s.OldestAge, s.IdleWorkers, s.MaxBatchSize, s.MaxBufferSize)
}
