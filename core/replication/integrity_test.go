package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// bigWrite is a registration whose instance encodes to about n bytes (the test encoder pads it).
func bigWrite(id string, n int) registry.Write {
	w := write(registry.ActionRegister, id)
	w.Instance.Metadata = map[string]string{"pad": strings.Repeat("x", n)}
	return w
}

// padEncoder encodes an instance as its id and its "pad" metadata, counting calls.
func padEncoder(calls *atomic.Int64) func(*registry.Instance) []byte {
	return func(i *registry.Instance) []byte {
		calls.Add(1)
		return []byte(`{"instanceId":"` + i.InstanceID + `","pad":"` + i.Metadata["pad"] + `"}`)
	}
}

func statusWrite(id string) registry.Write {
	w := write(registry.ActionStatusUpdate, id)
	w.Status = registry.StatusOutOfService
	return w
}

// syncBuffer is a log sink safe for the pipeline's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A peer that refuses every batch holding one poison task (a 413 for its size) must still get
// every other task of those batches; only the poison task is dropped, counted and logged.
func TestPermanentRefusalSplitsBatchAndDropsOnlyTheCulprit(t *testing.T) {
	var mu sync.Mutex
	delivered := map[string]int{}
	f := &fakeTransport{block: make(chan struct{})}
	f.answer = func(_ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
		for _, it := range b.Items {
			if it.ID == "poison" {
				return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer p: answered 413: %w", sdk.ErrTooLarge))
			}
		}
		mu.Lock()
		for _, it := range b.Items {
			delivered[string(it.Action)+"/"+it.ID]++
		}
		mu.Unlock()
		return ok(len(b.Items)), nil
	}
	logs := &syncBuffer{}
	var encodes atomic.Int64
	r := newTestReplicator(t, Config{Workers: 1, BatchingDelay: 0}, map[string]*fakeTransport{"p": f}, func(o *Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
		o.EncodeInstance = padEncoder(&encodes)
	})
	l := r.Listener()
	l(context.Background(), write(registry.ActionHeartbeat, "first")) // occupies the only worker
	waitFor(t, "first send in flight", func() bool { return r.Stats()[0].InFlight == 1 })
	const n = 100
	for i := 0; i < n; i++ {
		if i == n/3 {
			l(context.Background(), bigWrite("poison", 1000))
		}
		l(context.Background(), statusWrite(fmt.Sprint("s", i)))
	}
	waitFor(t, "all pending", func() bool { return r.Stats()[0].PendingDepth == n+1 })
	close(f.block)
	waitFor(t, "every status change delivered, the poison dropped", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == n+1 && r.Stats()[0].PermanentDropped == 1
	})
	waitFor(t, "idle", func() bool { return r.pipelines["p"].idle() })
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < n; i++ {
		if k := "StatusUpdate/s" + fmt.Sprint(i); delivered[k] != 1 {
			t.Fatalf("%s delivered %d times: a refused batch must cost only the refused task", k, delivered[k])
		}
	}
	if delivered["Register/poison"] != 0 || len(delivered) != n+1 {
		t.Fatalf("delivered %d distinct tasks, want the %d status changes and the first heartbeat", len(delivered), n)
	}
	s := r.Stats()[0]
	if s.Overflow != 0 || s.Expired != 0 || s.Superseded != 0 {
		t.Fatalf("nothing else may be dropped: %+v", s)
	}
	// Halving finds the culprit in about 2·log2(n) sends, not n.
	if sends := len(f.sent()); sends > 2+2*8 {
		t.Fatalf("%d sends to isolate one task among %d", sends, n+1)
	}
	if got := logs.String(); !strings.Contains(got, "app=APP") || !strings.Contains(got, "id=poison") ||
		!strings.Contains(got, "request body limit") {
		t.Fatalf("the dropped task must be logged with its app, id and why:\n%s", got)
	}
}

// Batches are cut by bytes as well as by count: what goes on the wire is never larger than
// MaxBatchBytes, except one task that is larger alone, which still goes (alone).
func TestBatchesCutByBytes(t *testing.T) {
	const maxBytes = 4000
	f := &fakeTransport{block: make(chan struct{})}
	var encodes atomic.Int64
	r := newTestReplicator(t, Config{Workers: 1, BatchingDelay: 0, MaxBatchBytes: maxBytes}, map[string]*fakeTransport{"p": f},
		func(o *Options) { o.EncodeInstance = padEncoder(&encodes) })
	l := r.Listener()
	l(context.Background(), write(registry.ActionHeartbeat, "first"))
	waitFor(t, "first send in flight", func() bool { return r.Stats()[0].InFlight == 1 })
	for i := 0; i < 20; i++ {
		l(context.Background(), bigWrite(fmt.Sprint("r", i), 900))
		if i == 10 {
			l(context.Background(), bigWrite("huge", 3*maxBytes))
		}
	}
	waitFor(t, "pending", func() bool { return r.Stats()[0].PendingDepth == 21 })
	close(f.block)
	waitFor(t, "all sent", func() bool { return len(f.items()) == 22 })
	sawHuge := false
	for _, b := range f.sent() {
		wire := len(eurekawire.AppendReplicationList(nil, b))
		if len(b) == 1 && b[0].ID == "huge" {
			sawHuge = true
			continue
		}
		if wire > maxBytes {
			t.Fatalf("a batch of %d items is %d bytes on the wire, more than max_batch_bytes %d", len(b), wire, maxBytes)
		}
	}
	if !sawHuge {
		t.Fatal("a task larger than max_batch_bytes must go alone")
	}
	if s := r.Stats()[0]; s.Batches < 6 || s.PermanentDropped != 0 || s.Overflow != 0 {
		t.Fatalf("20 tasks of ~1 KB must take at least 5 batches of <4 KB, and nothing may be dropped: %+v", s)
	}
}

// With a peer down, the pending stage stays within MaxBufferBytes: the oldest tasks are dropped
// and counted as overflow, and the instance of each task is encoded once however often it is
// retried, and however many peers it goes to.
func TestBufferBytesCapWithPeerDown(t *testing.T) {
	const capBytes = 64 << 10
	const n = 400
	var down, after atomic.Bool
	down.Store(true)
	deadPeer := &fakeTransport{answer: func(_ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
		if down.Load() {
			return nil, sdk.Fail(sdk.Transient, errors.New("connection refused"))
		}
		for _, it := range b.Items {
			if it.ID == fmt.Sprint("r", n-1) {
				after.Store(true)
			}
		}
		return ok(len(b.Items)), nil
	}}
	live := &fakeTransport{}
	var encodes atomic.Int64
	r := newTestReplicator(t, Config{BatchingDelay: 0, MaxBufferBytes: capBytes, MaxBatchBytes: 16 << 10,
		NetworkFailureRetryDelay: time.Millisecond}, map[string]*fakeTransport{"dead": deadPeer, "live": live},
		func(o *Options) { o.EncodeInstance = padEncoder(&encodes) })
	l := r.Listener()
	var maxPending int64
	for i := 0; i < n; i++ {
		l(context.Background(), bigWrite(fmt.Sprint("r", i), 2000))
		// Writes come no faster than the live peer takes them, so only the dead peer overflows.
		waitFor(t, "the live peer", func() bool { return len(live.items()) == i+1 })
		s := r.Stats()[0]
		maxPending = max(maxPending, s.PendingBytes)
		if s.AcceptorBytes > capBytes {
			t.Fatalf("acceptor queue holds %d bytes, over the %d cap", s.AcceptorBytes, capBytes)
		}
	}
	waitFor(t, "overflow counted for the dead peer", func() bool {
		s := r.Stats()[0]
		maxPending = max(maxPending, s.PendingBytes)
		return s.Peer == "dead" && s.Overflow > 0 && s.Retries > 0
	})
	for i := 0; i < 50; i++ { // keep sampling while the dead peer's retries cycle
		s := r.Stats()[0]
		maxPending = max(maxPending, s.PendingBytes)
		time.Sleep(time.Millisecond)
	}
	if maxPending > capBytes || maxPending == 0 {
		t.Fatalf("pending bytes reached %d, cap %d", maxPending, capBytes)
	}
	if got := encodes.Load(); got != n {
		t.Fatalf("%d instance encodings for %d registrations to two peers with retries: want one each", got, n)
	}
	s := r.Stats()[0]
	// About 2 KB a task: a 64 KiB buffer holds ~30, so most of the 400 overflowed.
	if s.Overflow < n/2 {
		t.Fatalf("overflow %d: the byte cap must drop the oldest", s.Overflow)
	}
	down.Store(false)
	waitFor(t, "the peer back gets the newest", func() bool {
		s := r.Stats()[0]
		return s.PendingDepth == 0 && s.InFlight == 0 && s.PendingBytes == 0 && s.InFlightBytes == 0
	})
	if !after.Load() {
		t.Fatal("the newest task must survive overflow and reach the peer once it is back")
	}
}

// A client registration whose item would be larger than a batch may be is refused with 413; one
// that fits is admitted.
func TestAdmitRegistration(t *testing.T) {
	var encodes atomic.Int64
	r := New(Options{Config: Config{MaxBatchBytes: 10000}, EncodeInstance: padEncoder(&encodes)})
	if err := r.AdmitRegistration(bigWrite("ok", 9000).Instance); err != nil {
		t.Fatalf("a registration that fits must be admitted: %v", err)
	}
	err := r.AdmitRegistration(bigWrite("big", 10000).Instance)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.StatusCode() != 413 || tl.ID != "big" || tl.App != "APP" || tl.Limit != 10000-batchEnvelope {
		t.Fatalf("want a 413 naming the instance, got %v", err)
	}
	// Escapes count: 2000 '<' are 12000 bytes of JSON.
	esc := bigWrite("esc", 0)
	esc.Instance.Metadata["pad"] = strings.Repeat("<", 2000)
	r2 := New(Options{Config: Config{MaxBatchBytes: 10000}, EncodeInstance: func(i *registry.Instance) []byte {
		return []byte(`{"pad":"` + strings.Repeat(`\u003c`, len(i.Metadata["pad"])) + `"}`)
	}})
	if err := r2.AdmitRegistration(esc.Instance); err == nil {
		t.Fatal("the size that counts is the encoded one")
	}
}

// The size the pipeline counts for a task is never below what the http transport puts on the wire.
func TestItemSizeBoundsWire(t *testing.T) {
	var encodes atomic.Int64
	enc := padEncoder(&encodes)
	tasks := []*Task{
		NewTask(bigWrite("a<&>\"é", 100), noSpan, 1, time.Second).prepare(enc),
		NewTask(statusWrite("b"), noSpan, 1, time.Second).prepare(enc),
		NewTask(write(registry.ActionCancel, "c"), noSpan, 1, time.Second).prepare(enc),
		NewItemTask(sdk.Item{Action: "Custom", App: "APP", ID: "d", Payload: []byte("payload\x00")}, noSpan, 1, time.Second).prepare(enc),
	}
	items := make([]sdk.Item, len(tasks))
	sum := batchEnvelope
	for i, tk := range tasks {
		items[i] = tk.item(nil)
		sum += tk.size()
	}
	if wire := int64(len(eurekawire.AppendReplicationList(nil, items))); wire > sum {
		t.Fatalf("wire %d bytes, counted %d", wire, sum)
	}
}
