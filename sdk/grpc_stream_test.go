package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/heraldhq/herald/sdk/internal/proto"
)

// echoTransport answers each item with a 200 whose entity names the batch and the item, after
// waiting for release (when set), and counts the batches it saw.
type echoTransport struct {
	release chan struct{}
	started chan string
	batches atomic.Int64
}

func (e *echoTransport) Send(ctx context.Context, peer Peer, b Batch) ([]ItemResult, error) {
	e.batches.Add(1)
	if e.started != nil {
		e.started <- b.ID
	}
	if e.release != nil {
		select {
		case <-e.release:
		case <-ctx.Done():
			return nil, Fail(Transient, ctx.Err())
		}
	}
	if b.ID == "refuse" {
		return nil, Fail(Congestion, errors.New("busy"))
	}
	rs := make([]ItemResult, len(b.Items))
	for i, it := range b.Items {
		rs[i] = ItemResult{StatusCode: 200, Entity: []byte(peer.Name + "/" + b.ID + "/" + it.ID)}
	}
	return rs, nil
}

// unaryOnly is a transport server from before SendStream.
type unaryOnly struct {
	pb.UnimplementedTransportServer
	ts    *transportServer
	calls atomic.Int64
}

func (u *unaryOnly) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	u.calls.Add(1)
	return u.ts.Send(ctx, req)
}

// serveTransportPB serves srv on a loopback TCP port and returns the host's client for it.
func serveTransportPB(t *testing.T, srv pb.TransportServer) (*transportClient, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterTransportServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tc := pb.NewTransportClient(conn)
	return &transportClient{c: tc, stream: &sendStreams{c: tc}}, s
}

func batchOf(id string, n int) Batch {
	b := Batch{ID: id}
	for i := 0; i < n; i++ {
		b.Items = append(b.Items, Item{Action: ActionHeartbeat, App: "A", ID: "i" + strconv.Itoa(i), Instance: []byte(`{"x":1}`)})
	}
	return b
}

// Many batches in flight at once on one stream: each gets its own answers, and errors keep their
// class.
func TestStreamMatchesAnswersToBatches(t *testing.T) {
	impl := &echoTransport{}
	c, _ := serveTransportPB(t, &transportServer{impl: impl})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				id := fmt.Sprintf("b%d-%d", g, i)
				rs, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf(id, 1+i%4))
				if err != nil {
					errs <- fmt.Errorf("%s: %v", id, err)
					return
				}
				if len(rs) != 1+i%4 {
					errs <- fmt.Errorf("%s: %d results", id, len(rs))
					return
				}
				for j, r := range rs {
					if want := "p/" + id + "/i" + strconv.Itoa(j); string(r.Entity) != want {
						errs <- fmt.Errorf("%s: result %d is %q, want %q", id, j, r.Entity, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf("refuse", 1)); ClassOf(err) != Congestion {
		t.Errorf("refused batch: %v (class %v), want congestion", err, ClassOf(err))
	}
	if c.stream.unsupported.Load() {
		t.Error("the client fell back to unary calls against a plugin that serves the stream")
	}
}

// A plugin that goes away with batches in flight fails every one of them as transient (the
// pipeline retries them), and the next batch opens a new stream.
func TestStreamEndFailsBatchesInFlightAsTransient(t *testing.T) {
	impl := &echoTransport{release: make(chan struct{}), started: make(chan string, 8)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterTransportServer(s, &transportServer{impl: impl})
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := pb.NewTransportClient(conn)
	c := &transportClient{c: tc, stream: &sendStreams{c: tc}}

	const n = 5
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf("b"+strconv.Itoa(i), 2))
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-impl.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d batches reached the plugin", i, n)
		}
	}
	s.Stop() // the plugin goes away: connections closed, batches unanswered
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if err == nil || ClassOf(err) != Transient {
				t.Errorf("batch in flight when the plugin went away: %v (class %v), want a transient error", err, ClassOf(err))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a batch in flight still waits after the plugin went away")
		}
	}
	close(impl.release)

	// The plugin is back on the same address: the next batch goes on a new stream.
	lis2, err := net.Listen("tcp", lis.Addr().String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", lis.Addr(), err)
	}
	impl2 := &echoTransport{}
	s2 := grpc.NewServer()
	pb.RegisterTransportServer(s2, &transportServer{impl: impl2})
	go func() { _ = s2.Serve(lis2) }()
	defer s2.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf("again", 1))
		if err == nil {
			if len(rs) != 1 || string(rs[0].Entity) != "p/again/i0" {
				t.Fatalf("after the restart: %v", rs)
			}
			break
		}
		if ClassOf(err) != Transient || time.Now().After(deadline) {
			t.Fatalf("after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // reconnect backoff is gRPC's; poll until it reconnects
	}
}

// A caller that gives up (its context ends) gets a transient error at once, and the stream goes
// on serving the others.
func TestStreamCallerCancel(t *testing.T) {
	impl := &echoTransport{release: make(chan struct{}), started: make(chan string, 4)}
	c, _ := serveTransportPB(t, &transportServer{impl: impl})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, Peer{Name: "p"}, batchOf("slow", 1))
		done <- err
	}()
	<-impl.started
	cancel()
	if err := <-done; ClassOf(err) != Transient {
		t.Fatalf("cancelled send: %v, want transient", err)
	}
	close(impl.release)
	if _, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf("next", 1)); err != nil {
		t.Fatalf("send after a cancelled one: %v", err)
	}
}

// A plugin built before SendStream is reached with unary calls.
func TestStreamFallsBackToUnary(t *testing.T) {
	u := &unaryOnly{ts: &transportServer{impl: &echoTransport{}}}
	c, _ := serveTransportPB(t, u)
	for i := 0; i < 3; i++ {
		rs, err := c.Send(context.Background(), Peer{Name: "p"}, batchOf("u"+strconv.Itoa(i), 2))
		if err != nil || len(rs) != 2 {
			t.Fatalf("send %d to a unary-only plugin: %v %v", i, rs, err)
		}
	}
	if got := u.calls.Load(); got != 3 {
		t.Errorf("unary calls = %d, want 3", got)
	}
	if !c.stream.unsupported.Load() {
		t.Error("the client did not note that the plugin has no stream")
	}
}

// While one goroutine writes a frame, the messages others put wait and go out, in order, in the
// next frame that goroutine writes, with the control entries put after them; no other goroutine
// writes meanwhile. A failed write drops what is queued and reports once.
func TestFrameWriterCoalesces(t *testing.T) {
	type frame struct {
		msgs []int
		ctl  []string
	}
	var mu sync.Mutex
	var frames []frame
	entered, release := make(chan struct{}), make(chan struct{})
	var failures atomic.Int64
	fail := errors.New("broken")
	w := &frameWriter[int, string]{
		size: func(int) int { return 1 },
		send: func(ms []int, cs []string) error {
			mu.Lock()
			frames = append(frames, frame{append([]int(nil), ms...), append([]string(nil), cs...)})
			n := len(frames)
			mu.Unlock()
			if n == 1 {
				close(entered)
				<-release
			}
			if len(ms) > 0 && ms[0] == 99 {
				return fail
			}
			return nil
		},
		failed: func(err error) {
			if err != fail {
				t.Errorf("failed with %v", err)
			}
			failures.Add(1)
		},
	}
	first := make(chan struct{})
	go func() { w.put(0, "", false); close(first) }()
	<-entered
	for i := 1; i <= 3; i++ {
		w.put(i, "", false) // queued: returns at once
	}
	w.put(0, "cancel 3", true)
	close(release)
	<-first
	mu.Lock()
	got := fmt.Sprint(frames)
	mu.Unlock()
	if want := "[{[0] []} {[1 2 3] [cancel 3]}]"; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	w.put(99, "", false)
	w.put(100, "", false) // after the failure: dropped
	if failures.Load() != 1 || len(frames) != 3 {
		t.Fatalf("after a failed write: %d failures, %d frames", failures.Load(), len(frames))
	}
}
