package replication

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

var noSpan trace.SpanContext

// fakeTransport records batches; answer decides each send's outcome.
type fakeTransport struct {
	mu      sync.Mutex
	batches [][]sdk.Item
	answer  func(peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error)
	block   chan struct{} // when set, Send waits for it
}

func (f *fakeTransport) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, sdk.Fail(sdk.Transient, ctx.Err())
		}
	}
	f.mu.Lock()
	f.batches = append(f.batches, append([]sdk.Item(nil), b.Items...))
	answer := f.answer
	f.mu.Unlock()
	if answer != nil {
		return answer(peer, b)
	}
	return ok(len(b.Items)), nil
}

func ok(n int) []sdk.ItemResult {
	r := make([]sdk.ItemResult, n)
	for i := range r {
		r[i].StatusCode = 200
	}
	return r
}

func (f *fakeTransport) sent() [][]sdk.Item {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]sdk.Item(nil), f.batches...)
}

func (f *fakeTransport) items() []sdk.Item {
	var out []sdk.Item
	for _, b := range f.sent() {
		out = append(out, b...)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func write(a registry.Action, id string) registry.Write {
	inst := &registry.Instance{InstanceID: id, App: "APP", Status: registry.StatusUp, LastDirtyTimestamp: 1,
		HasLeaseInfo: true, LeaseInfo: registry.LeaseInfo{RenewalIntervalSecs: 30}}
	w := registry.Write{Action: a, App: "APP", ID: id, Instance: inst, LastDirtyTimestamp: 1, Status: registry.StatusUp, Origin: registry.FromClient}
	if a == registry.ActionCancel {
		w.Instance = nil
	}
	return w
}

func newTestReplicator(t *testing.T, cfg Config, transports map[string]*fakeTransport, opts ...func(*Options)) *Replicator {
	t.Helper()
	o := Options{
		Config:         cfg,
		EncodeInstance: func(i *registry.Instance) []byte { return []byte(`{"instanceId":"` + i.InstanceID + `"}`) },
		Plugins: func(p sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) {
			return transports[p.Name], nil, nil
		},
	}
	for _, f := range opts {
		f(&o)
	}
	r := New(o)
	var peers []sdk.Peer
	for name := range transports {
		peers = append(peers, sdk.Peer{Name: name, URL: "http://" + name + "/eureka/"})
	}
	r.SetPeers(peers)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

func TestReplicatesClientWritesOnly(t *testing.T) {
	a, b := &fakeTransport{}, &fakeTransport{}
	r := newTestReplicator(t, Config{BatchingDelay: 0}, map[string]*fakeTransport{"a": a, "b": b})
	l := r.Listener()
	l(context.Background(), write(registry.ActionRegister, "i1"))
	peerWrite := write(registry.ActionRegister, "i2")
	peerWrite.Origin = registry.FromPeer
	l(context.Background(), peerWrite)
	waitFor(t, "both peers", func() bool { return len(a.items()) == 1 && len(b.items()) == 1 })
	time.Sleep(20 * time.Millisecond)
	for _, f := range []*fakeTransport{a, b} {
		items := f.items()
		if len(items) != 1 || items[0].ID != "i1" || items[0].Action != sdk.ActionRegister || string(items[0].Instance) != `{"instanceId":"i1"}` {
			t.Fatalf("items %+v: a replicated write must never be sent on", items)
		}
	}
}

func TestPullModelCoalescesWhileWorkersBusy(t *testing.T) {
	f := &fakeTransport{block: make(chan struct{})}
	r := newTestReplicator(t, Config{Workers: 1, BatchingDelay: 0}, map[string]*fakeTransport{"p": f})
	l := r.Listener()
	l(context.Background(), write(registry.ActionHeartbeat, "first")) // occupies the only worker
	waitFor(t, "first send in flight", func() bool { return r.Stats()[0].InFlight == 1 })
	for i := 0; i < 100; i++ {
		l(context.Background(), write(registry.ActionHeartbeat, fmt.Sprint("i", i%10)))
	}
	waitFor(t, "pending", func() bool { return r.Stats()[0].PendingDepth == 10 })
	close(f.block)
	waitFor(t, "all sent", func() bool { return len(f.items()) == 11 })
	sent := f.sent()
	if len(sent) != 2 || len(sent[1]) != 10 {
		t.Fatalf("want the 100 heartbeats for 10 instances coalesced into one batch of 10, got %d batches", len(sent))
	}
	if s := r.Stats()[0]; s.Superseded != 90 {
		t.Fatalf("superseded %d", s.Superseded)
	}
}

func TestBatchSizeAndDelay(t *testing.T) {
	f := &fakeTransport{}
	r := newTestReplicator(t, Config{MaxBatchSize: 5, BatchingDelay: 80 * time.Millisecond}, map[string]*fakeTransport{"p": f})
	l := r.Listener()
	start := time.Now()
	for i := 0; i < 12; i++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	waitFor(t, "two full batches", func() bool { return len(f.sent()) >= 2 })
	if el := time.Since(start); el > 60*time.Millisecond {
		t.Fatalf("full batches must go at once, took %v", el)
	}
	waitFor(t, "the rest", func() bool { return len(f.items()) == 12 })
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Fatalf("a partial batch must wait for the batching delay, went after %v", el)
	}
	for _, b := range f.sent() {
		if len(b) > 5 {
			t.Fatalf("batch of %d exceeds the maximum", len(b))
		}
	}
}

func TestFailureClasses(t *testing.T) {
	var calls atomic.Int64
	good := &fakeTransport{}
	bad := &fakeTransport{answer: func(sdk.Peer, sdk.Batch) ([]sdk.ItemResult, error) {
		if calls.Add(1) <= 2 {
			return nil, sdk.Fail(sdk.Congestion, errors.New("503"))
		}
		return nil, sdk.Fail(sdk.Permanent, errors.New("400"))
	}}
	r := newTestReplicator(t, Config{BatchingDelay: 0, CongestionRetryDelay: 150 * time.Millisecond},
		map[string]*fakeTransport{"good": good, "bad": bad})
	l := r.Listener()
	start := time.Now()
	l(context.Background(), write(registry.ActionRegister, "x"))
	waitFor(t, "good peer unaffected", func() bool { return len(good.items()) == 1 })
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("a congested peer slowed another: %v", el)
	}
	waitFor(t, "permanent drop", func() bool { return r.Stats()[0].PermanentDropped == 1 })
	if el := time.Since(start); el < 280*time.Millisecond {
		t.Fatalf("two congestion pauses of 150ms expected before the third try, took %v", el)
	}
	s := r.Stats()[0]
	if s.Peer != "bad" || s.Congestion != 2 || s.Permanent != 1 || s.Retries != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTransientRetryKeepsTasks(t *testing.T) {
	var calls atomic.Int64
	f := &fakeTransport{}
	f.answer = func(_ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
		if calls.Add(1) <= 3 {
			return nil, sdk.Fail(sdk.Transient, errors.New("connection refused"))
		}
		return ok(len(b.Items)), nil
	}
	r := newTestReplicator(t, Config{BatchingDelay: 0, NetworkFailureRetryDelay: 10 * time.Millisecond}, map[string]*fakeTransport{"p": f})
	r.Listener()(context.Background(), write(registry.ActionRegister, "x"))
	waitFor(t, "success after retries", func() bool { return r.Stats()[0].Success == 1 })
	if s := r.Stats()[0]; s.Transient != 3 || s.PermanentDropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestItemResults(t *testing.T) {
	var conflicts []string
	var mu sync.Mutex
	f := &fakeTransport{}
	f.answer = func(_ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
		res := ok(len(b.Items))
		for i, it := range b.Items {
			switch {
			case it.Action == sdk.ActionHeartbeat && it.ID == "missing":
				res[i].StatusCode = 404
			case it.Action == sdk.ActionHeartbeat && it.ID == "stale":
				res[i] = sdk.ItemResult{StatusCode: 409, Entity: []byte(`{"newer":true}`)}
			}
		}
		return res, nil
	}
	r := newTestReplicator(t, Config{BatchingDelay: 0}, map[string]*fakeTransport{"p": f}, func(o *Options) {
		o.OnConflict = func(_ context.Context, p sdk.Peer, e []byte) {
			mu.Lock()
			conflicts = append(conflicts, p.Name+":"+string(e))
			mu.Unlock()
		}
	})
	l := r.Listener()
	l(context.Background(), write(registry.ActionHeartbeat, "missing"))
	l(context.Background(), write(registry.ActionHeartbeat, "stale"))
	waitFor(t, "register after 404", func() bool {
		for _, it := range f.items() {
			if it.Action == sdk.ActionRegister && it.ID == "missing" && len(it.Instance) > 0 {
				return true
			}
		}
		return false
	})
	waitFor(t, "conflict adopted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(conflicts) == 1 && conflicts[0] == `p:{"newer":true}`
	})
}

// TestHeartbeat404AfterCancel: a peer answers a heartbeat 404 after the instance was cancelled
// here (the cancel went out, or goes out, on its own). Answering with a register of the copy the
// heartbeat carried would bring the instance back on that peer after the cancel, so nothing is
// sent; an instance still held is registered with its current copy.
func TestHeartbeat404AfterCancel(t *testing.T) {
	f := &fakeTransport{}
	f.answer = func(_ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
		res := ok(len(b.Items))
		for i, it := range b.Items {
			if it.Action == sdk.ActionHeartbeat {
				res[i].StatusCode = 404
			}
		}
		return res, nil
	}
	held := &registry.Instance{InstanceID: "held", App: "APP", LastDirtyTimestamp: 7, StatusVersion: 9}
	r := newTestReplicator(t, Config{BatchingDelay: 0}, map[string]*fakeTransport{"p": f}, func(o *Options) {
		o.Lookup = func(app, id string) (*registry.Instance, bool) {
			if id == "held" {
				return held, true
			}
			return nil, false
		}
	})
	l := r.Listener()
	l(context.Background(), write(registry.ActionHeartbeat, "gone"))
	l(context.Background(), write(registry.ActionHeartbeat, "held"))
	waitFor(t, "register of the held instance", func() bool {
		for _, it := range f.items() {
			if it.Action == sdk.ActionRegister && it.ID == "held" {
				return it.LastDirtyTimestamp == 7 && it.StatusVersion == 9 && string(it.Instance) == `{"instanceId":"held"}`
			}
		}
		return false
	})
	waitFor(t, "both heartbeats answered", func() bool { return r.Stats()[0].ItemFailures == 2 })
	for _, it := range f.items() {
		if it.Action == sdk.ActionRegister && it.ID == "gone" {
			t.Fatal("a register of a cancelled instance was sent after the heartbeat's 404")
		}
	}
}

// countingPolicy counts its calls.
type countingPolicy struct{ calls atomic.Int64 }

func (c *countingPolicy) Decide(context.Context, sdk.PendingState) (sdk.FlushDecision, error) {
	c.calls.Add(1)
	return sdk.FlushDecision{MaxBatch: 250, MinCount: 250, MaxAge: time.Millisecond}, nil
}

func TestPolicyAskedPerDecisionNotPerTask(t *testing.T) {
	pol := &countingPolicy{}
	f := &fakeTransport{}
	r := New(Options{Config: Config{Workers: 2}, Plugins: func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) { return f, pol, nil }})
	r.SetPeers([]sdk.Peer{{Name: "p"}})
	t.Cleanup(func() { ctx, c := context.WithTimeout(context.Background(), time.Second); defer c(); _ = r.Close(ctx) })
	l := r.Listener()
	const n = 10000
	for i := 0; i < n; i++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	waitFor(t, "all sent", func() bool { return len(f.items()) == n })
	batches := int64(len(f.sent()))
	if calls := pol.calls.Load(); calls > batches+1 || calls >= n/10 {
		t.Fatalf("policy called %d times for %d tasks in %d batches", calls, n, batches)
	}
}

func TestOverflowBoundsMemory(t *testing.T) {
	f := &fakeTransport{block: make(chan struct{})}
	r := newTestReplicator(t, Config{Workers: 1, MaxBufferSize: 50, BatchingDelay: 0}, map[string]*fakeTransport{"p": f})
	l := r.Listener()
	l(context.Background(), write(registry.ActionRegister, "first"))
	waitFor(t, "worker busy", func() bool { return r.Stats()[0].InFlight == 1 })
	for i := 0; i < 1000; i++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	waitFor(t, "overflow counted", func() bool {
		s := r.Stats()[0]
		return s.Overflow == 1000-50 && s.PendingDepth == 50
	})
	close(f.block)
	waitFor(t, "the newest survive", func() bool {
		items := f.items()
		return len(items) > 0 && items[len(items)-1].ID == "999"
	})
}

func TestSetPeersKeepsQueuedWork(t *testing.T) {
	a := &fakeTransport{block: make(chan struct{})}
	b := &fakeTransport{}
	c := &fakeTransport{}
	ts := map[string]*fakeTransport{"a": a, "b": b, "c": c}
	r := New(Options{Config: Config{Workers: 1, BatchingDelay: 0}, Plugins: func(p sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) {
		return ts[p.Name], nil, nil
	}})
	t.Cleanup(func() { ctx, c := context.WithTimeout(context.Background(), time.Second); defer c(); _ = r.Close(ctx) })
	r.SetPeers([]sdk.Peer{{Name: "a", URL: "u-a"}, {Name: "b", URL: "u-b"}})
	l := r.Listener()
	l(context.Background(), write(registry.ActionRegister, "0"))
	waitFor(t, "a busy", func() bool { return r.Stats()[0].InFlight == 1 })
	for i := 1; i < 5; i++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	waitFor(t, "a has a backlog", func() bool { return r.Stats()[0].PendingDepth >= 3 })
	r.SetPeers([]sdk.Peer{{Name: "a", URL: "u-a"}, {Name: "c", URL: "u-c"}})
	close(a.block)
	waitFor(t, "a's queued work delivered after reload", func() bool { return len(a.items()) == 5 })
	l(context.Background(), write(registry.ActionRegister, "after"))
	waitFor(t, "new peer c gets new work", func() bool { return len(c.items()) == 1 })
	time.Sleep(20 * time.Millisecond)
	for _, it := range b.items() {
		if it.ID == "after" {
			t.Fatal("a removed peer must get no new work")
		}
	}
}

func TestCloseDrainsAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	f := &fakeTransport{}
	r := New(Options{Config: Config{BatchingDelay: 50 * time.Millisecond}, Plugins: func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) { return f, nil, nil }})
	r.SetPeers([]sdk.Peer{{Name: "p"}, {Name: "q"}})
	for i := 0; i < 20; i++ {
		r.Listener()(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.items()); n != 40 {
		t.Fatalf("close must drain: %d of 40 sent", n)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// orderTransport holds every batch that carries "held" until released, and records the items in
// the order the peer would apply them.
type orderTransport struct {
	mu      sync.Mutex
	applied []string
	hold    chan struct{}
}

func (o *orderTransport) Send(ctx context.Context, _ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	for _, it := range b.Items {
		if it.ID == "held" && it.Action == sdk.ActionRegister {
			select {
			case <-o.hold:
			case <-ctx.Done():
				return nil, sdk.Fail(sdk.Transient, ctx.Err())
			}
		}
	}
	o.mu.Lock()
	for _, it := range b.Items {
		o.applied = append(o.applied, string(it.Action)+" "+it.ID)
	}
	o.mu.Unlock()
	return ok(len(b.Items)), nil
}

func (o *orderTransport) order() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.applied...)
}

// With several workers, a later task for an instance is not sent while an earlier one for it is
// in flight: a cancel must not overtake the register it follows (the register would bring the
// instance back on the peer). Other instances are not held up.
func TestOneInstanceInOrderAcrossBatches(t *testing.T) {
	o := &orderTransport{hold: make(chan struct{})}
	r := New(Options{
		Config:         Config{Workers: 4, BatchingDelay: 0},
		EncodeInstance: func(i *registry.Instance) []byte { return []byte(`{"instanceId":"` + i.InstanceID + `"}`) },
		Plugins:        func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) { return o, nil, nil },
	})
	r.SetPeers([]sdk.Peer{{Name: "p", URL: "http://p/eureka/"}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	l := r.Listener()
	l(context.Background(), write(registry.ActionRegister, "held"))
	waitFor(t, "the register in flight", func() bool { return r.Stats()[0].InFlight == 1 })
	l(context.Background(), write(registry.ActionCancel, "held"))
	l(context.Background(), write(registry.ActionRegister, "other"))
	waitFor(t, "the other instance sent while the first is held", func() bool {
		got := o.order()
		return len(got) == 1 && got[0] == "Register other"
	})
	close(o.hold)
	waitFor(t, "everything sent", func() bool { return len(o.order()) == 3 })
	if got := o.order(); got[1] != "Register held" || got[2] != "Cancel held" {
		t.Fatalf("applied in the order %q: the cancel overtook the register", got)
	}
}

// stuckPolicy is slow at its first answer (cut at once, recheck after 1 ms) and never answers
// again until release is closed, as a policy in a plugin process that hangs would.
type stuckPolicy struct {
	calls   atomic.Int64
	release chan struct{}
}

func (s *stuckPolicy) Decide(ctx context.Context, _ sdk.PendingState) (sdk.FlushDecision, error) {
	if s.calls.Add(1) == 1 {
		for start := time.Now(); time.Since(start) < 2*asyncDecideAfter; { // slow, as a process hop is
			runtime.Gosched()
		}
	} else {
		select {
		case <-s.release:
		case <-ctx.Done():
			return sdk.FlushDecision{}, ctx.Err()
		}
	}
	return sdk.FlushDecision{CutNow: true, MaxBatch: 250, MinCount: 1, RecheckAfter: time.Millisecond}, nil
}

// A slow policy whose decisions carry RecheckAfter is asked in the background: its last decision
// holds meanwhile, so batches keep being cut even while the policy does not answer.
func TestSlowPolicyDoesNotStallTheAcceptor(t *testing.T) {
	pol := &stuckPolicy{release: make(chan struct{})}
	f := &fakeTransport{}
	r := New(Options{Config: Config{Workers: 2}, Plugins: func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) { return f, pol, nil }})
	r.SetPeers([]sdk.Peer{{Name: "p"}})
	t.Cleanup(func() {
		close(pol.release)
		ctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		_ = r.Close(ctx)
	})
	l := r.Listener()
	// One task at a time, each sent before the next, until one of them found the decision due for
	// a recheck (1 ms): the policy is then asked again, and hangs.
	sent := 0
	deadline := time.Now().Add(5 * time.Second)
	for pol.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the policy was not asked again")
		}
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint("one-", sent)))
		sent++
		waitFor(t, "a task sent", func() bool { return len(f.items()) == sent })
	}
	for i := 0; i < 100; i++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(i)))
	}
	waitFor(t, "every task sent while the policy hangs", func() bool { return len(f.items()) == sent+100 })
	if n := pol.calls.Load(); n != 2 {
		t.Fatalf("policy asked %d times while a call was outstanding, want 2", n)
	}
}

// slowPolicy answers after at least a millisecond, as a policy in a busy plugin process might, and
// asks to be asked again after a millisecond.
type slowPolicy struct{ calls atomic.Int64 }

func (s *slowPolicy) Decide(context.Context, sdk.PendingState) (sdk.FlushDecision, error) {
	s.calls.Add(1)
	for start := time.Now(); time.Since(start) < time.Millisecond; {
		runtime.Gosched()
	}
	return sdk.FlushDecision{CutNow: true, MaxBatch: 250, MinCount: 1, RecheckAfter: time.Millisecond}, nil
}

// A slow policy's decision holds for at least slowPolicyHold times its latency, whatever its
// RecheckAfter: a stream of tasks over 300 ms asks a 1 ms policy a few times, not hundreds.
func TestSlowPolicyAskedRarely(t *testing.T) {
	pol := &slowPolicy{}
	f := &fakeTransport{}
	r := New(Options{Config: Config{Workers: 2}, Plugins: func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) { return f, pol, nil }})
	r.SetPeers([]sdk.Peer{{Name: "p"}})
	t.Cleanup(func() {
		ctx, c := context.WithTimeout(context.Background(), time.Second)
		defer c()
		_ = r.Close(ctx)
	})
	l := r.Listener()
	sent := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; sent++ {
		l(context.Background(), write(registry.ActionRegister, fmt.Sprint(sent)))
		waitFor(t, "a task sent", func() bool { return len(f.items()) == sent+1 })
	}
	// Held for 100 ms each (the cap) after the first answer: 4 asks in 300 ms, and a few more
	// for a machine so busy that an answer arrives late. Asked per RecheckAfter, it would be
	// about one per task.
	if n := pol.calls.Load(); n > 10 {
		t.Fatalf("a 1 ms policy was asked %d times for %d tasks in 300 ms, want at most 10", n, sent)
	}
	t.Logf("%d tasks, %d decisions", sent, pol.calls.Load())
}
