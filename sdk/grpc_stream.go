package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/heraldhq/herald/sdk/internal/proto"
)

// The batch stream between herald and a transport plugin.
//
// A unary gRPC call per batch costs a new HTTP/2 stream each way (headers, HPACK, trailers), a
// goroutine on each side and several wakeups, per batch. Instead, the host keeps one long-lived
// SendStream per plugin process and writes each batch on it as one request with a call id; when
// several batches are ready while a frame is being written, the next frame carries all of them.
// The plugin runs every request as its own Send call, concurrently (the host's workers still
// decide how many batches are in flight), and writes the answers back, coalesced the same way,
// matched by call id. A plugin author sees none of this: Transport.Send is called as before.
//
// When the stream ends (the plugin died, or the connection broke), every batch on it fails as a
// transient error, so the host's pipeline puts it back at the front of its pending stage and sends
// it again once the plugin is back: nothing is lost. A batch in a sampled trace goes by the unary
// Send, so that its trace shows the plugin call as a gRPC span as before. A plugin built with an
// SDK older than the stream answers Unimplemented, and the host uses unary Send from then on.

// coalesceBytes bounds a frame of coalesced requests or answers (estimated bytes); a single
// request larger than that travels alone.
const coalesceBytes = 4 << 20

// streamQueue is how many requests may wait for the frame writer.
const streamQueue = 256

// errNoStream says the plugin does not serve SendStream: use Send.
var errNoStream = errors.New("plugin does not serve SendStream")

// sendStreams is the host side: the current stream, opened on first use and after a failure.
type sendStreams struct {
	c           pb.TransportClient
	unsupported atomic.Bool
	ids         atomic.Uint64

	mu  sync.Mutex
	cur *sendStream
}

type streamCall struct {
	req  *pb.SendRequest
	size int
	done chan *pb.SendResponse // buffered: the reader never blocks on a caller
}

// sendStream is one open SendStream.
type sendStream struct {
	st     pb.Transport_SendStreamClient
	cancel context.CancelFunc
	queue  chan *streamCall
	// cancels are the ids of calls whose callers stopped waiting, for the plugin to cancel.
	cancels chan uint64

	mu    sync.Mutex
	calls map[uint64]*streamCall
	err   error
	dead  chan struct{}
}

// usable reports whether a batch may go on the stream: not when the plugin lacks it, and not in
// a sampled trace (the unary call carries the trace context and shows as a span).
func (s *sendStreams) usable(ctx context.Context) bool {
	if s.unsupported.Load() {
		return false
	}
	sc := trace.SpanContextFromContext(ctx)
	return !sc.IsValid() || !sc.IsSampled()
}

func (s *sendStreams) get() (*sendStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.cur; ss != nil {
		select {
		case <-ss.dead:
		default:
			return ss, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := s.c.SendStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	ss := &sendStream{st: st, cancel: cancel, queue: make(chan *streamCall, streamQueue),
		cancels: make(chan uint64, streamQueue), calls: map[uint64]*streamCall{}, dead: make(chan struct{})}
	go ss.read()
	go ss.write()
	s.cur = ss
	return ss, nil
}

// send sends one request on the stream and waits for its answer. errNoStream: use unary Send.
func (s *sendStreams) send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	ss, err := s.get()
	if err != nil {
		return nil, s.failure(ctx, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, Fail(Transient, context.DeadlineExceeded)
		}
		req.TimeoutNs = int64(left)
	}
	id := s.ids.Add(1)
	req.CallId = id
	call := &streamCall{req: req, size: requestSize(req), done: make(chan *pb.SendResponse, 1)}
	ss.mu.Lock()
	if ss.err != nil {
		err := ss.err
		ss.mu.Unlock()
		return nil, s.failure(ctx, err)
	}
	ss.calls[id] = call
	ss.mu.Unlock()
	select {
	case ss.queue <- call:
	case <-ss.dead:
		return nil, s.failure(ctx, ss.ended())
	case <-ctx.Done():
		ss.forget(id)
		return nil, Fail(Transient, ctx.Err())
	}
	select {
	case resp := <-call.done:
		return resp, nil
	case <-ss.dead:
		select {
		case resp := <-call.done: // answered just before the stream ended
			return resp, nil
		default:
		}
		return nil, s.failure(ctx, ss.ended())
	case <-ctx.Done():
		// The plugin's Send is cancelled as a unary call's would be; an answer that comes anyway
		// is dropped, and the pipeline treats the batch as not sent.
		ss.forget(id)
		select {
		case ss.cancels <- id:
		default: // cancels are a courtesy: a full queue only leaves the plugin's deadline
		}
		return nil, Fail(Transient, ctx.Err())
	}
}

// failure classifies a stream that could not carry a call: Unimplemented switches this client to
// unary Send; anything else (the plugin died, the connection broke) is transient, so the batch is
// retried.
func (s *sendStreams) failure(ctx context.Context, err error) error {
	if status.Code(err) == codes.Unimplemented {
		s.unsupported.Store(true)
		return errNoStream
	}
	if ctx.Err() != nil {
		return Fail(Transient, ctx.Err())
	}
	return Fail(Transient, fmt.Errorf("plugin stream: %w", err))
}

func (ss *sendStream) forget(id uint64) {
	ss.mu.Lock()
	delete(ss.calls, id)
	ss.mu.Unlock()
}

func (ss *sendStream) ended() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.err
}

// end records why the stream ended, once, and wakes every caller waiting on it.
func (ss *sendStream) end(err error) {
	ss.mu.Lock()
	if ss.err != nil {
		ss.mu.Unlock()
		return
	}
	if err == nil || err == io.EOF {
		err = status.Error(codes.Unavailable, "plugin closed the stream")
	}
	ss.err = err
	ss.calls = nil
	ss.mu.Unlock()
	close(ss.dead)
	ss.cancel()
}

// write sends queued requests, several to a frame when several are waiting.
func (ss *sendStream) write() {
	frame := &pb.SendFrame{}
	for {
		frame.Requests, frame.Cancel = frame.Requests[:0], frame.Cancel[:0]
		size := 0
		select {
		case c := <-ss.queue:
			frame.Requests = append(frame.Requests, c.req)
			size += c.size
		case id := <-ss.cancels:
			frame.Cancel = append(frame.Cancel, id)
		case <-ss.dead:
			return
		}
	more:
		for size < coalesceBytes {
			select {
			case c := <-ss.queue:
				frame.Requests = append(frame.Requests, c.req)
				size += c.size
			case id := <-ss.cancels:
				frame.Cancel = append(frame.Cancel, id)
			default:
				break more
			}
		}
		err := ss.st.Send(frame) // the frame is encoded before Send returns
		clear(frame.Requests)
		if err != nil {
			if err == io.EOF { // the stream ended: its status comes from Recv
				_, err = ss.st.Recv()
			}
			ss.end(err)
			return
		}
	}
}

// read hands each answer to the call waiting for it.
func (ss *sendStream) read() {
	for {
		f, err := ss.st.Recv()
		if err != nil {
			ss.end(err)
			return
		}
		ss.mu.Lock()
		for _, r := range f.Responses {
			if c := ss.calls[r.CallId]; c != nil {
				delete(ss.calls, r.CallId)
				c.done <- r
			}
		}
		ss.mu.Unlock()
	}
}

// requestSize estimates a request's encoded size, for bounding frames.
func requestSize(req *pb.SendRequest) int {
	n := 64
	for _, it := range req.Items {
		n += 64 + len(it.Action) + len(it.App) + len(it.Id) + len(it.Status) + len(it.OverriddenStatus) +
			len(it.Instance) + len(it.Payload) + len(it.TraceParent)
	}
	return n
}

func responseSize(resp *pb.SendResponse) int {
	n := 32 + len(resp.Error)
	for _, r := range resp.Results {
		n += 16 + len(r.Entity)
	}
	return n
}

// SendStream serves the batch stream in the plugin: each request is one Send, run at once and
// concurrently; answers go back as they are ready, several to a frame when several are.
func (s *transportServer) SendStream(st pb.Transport_SendStreamServer) error {
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	out := make(chan *pb.SendResponse, streamQueue)
	written := make(chan error, 1)
	go func() { written <- writeResults(ctx, st, out) }()
	var calls sync.WaitGroup
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{}
	for {
		f, err := st.Recv()
		if err != nil {
			if err == io.EOF { // the host is done sending: answer what is in flight, then end
				calls.Wait()
				close(out)
				return <-written
			}
			cancel()
			calls.Wait()
			return err
		}
		for _, req := range f.Requests {
			calls.Add(1)
			var cctx context.Context
			var ccancel context.CancelFunc
			if req.TimeoutNs > 0 {
				cctx, ccancel = context.WithTimeout(ctx, time.Duration(req.TimeoutNs))
			} else {
				cctx, ccancel = context.WithCancel(ctx)
			}
			mu.Lock()
			running[req.CallId] = ccancel
			mu.Unlock()
			go func() {
				defer calls.Done()
				resp := s.send(cctx, req)
				mu.Lock()
				delete(running, req.CallId)
				mu.Unlock()
				ccancel()
				resp.CallId = req.CallId
				select {
				case out <- resp:
				case <-ctx.Done():
				}
			}()
		}
		// A cancel follows its request (one writer on the host's side), so the call is known.
		mu.Lock()
		for _, id := range f.Cancel {
			if c := running[id]; c != nil {
				c()
			}
		}
		mu.Unlock()
	}
}

// writeResults writes answers until out is closed or ctx ends, coalescing those that wait.
func writeResults(ctx context.Context, st pb.Transport_SendStreamServer, out <-chan *pb.SendResponse) error {
	frame := &pb.SendResultFrame{}
	for {
		var first *pb.SendResponse
		var ok bool
		select {
		case first, ok = <-out:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		frame.Responses = append(frame.Responses[:0], first)
		size := responseSize(first)
	more:
		for size < coalesceBytes {
			select {
			case r, ok := <-out:
				if !ok {
					break more
				}
				frame.Responses = append(frame.Responses, r)
				size += responseSize(r)
			default:
				break more
			}
		}
		err := st.Send(frame)
		clear(frame.Responses)
		if err != nil {
			return err
		}
	}
}

// WindowBytes is the HTTP/2 flow-control window, per stream and per connection, of the
// connection between herald and a plugin process, on both ends: the batch stream carries every
// batch in flight at once, and gRPC's default (64 KiB, grown by its estimator) would make it wait
// for window updates.
const WindowBytes = 4 << 20
