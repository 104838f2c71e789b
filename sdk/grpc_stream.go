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
// SendStream per plugin process and writes each batch on it as one request with a call id. The
// plugin runs every request as its own Send call, concurrently (the host's workers still decide
// how many batches are in flight), and writes the answers back, matched by call id. A plugin
// author sees none of this: Transport.Send is called as before.
//
// Neither side has a writer goroutine: the caller of a batch (on the host) and the goroutine that
// ran a Send (in the plugin) write their own message on the stream, encoding it on the way, unless
// another is writing; then they leave it in a queue, and whoever is writing sends everything
// queued, several to a frame, before it lets go. A batch thus costs no goroutine handoff and no
// wakeup before it reaches gRPC, and a burst still goes in few frames.
//
// When the stream ends (the plugin died, or the connection broke), every batch on it fails as a
// transient error, so the host's pipeline puts it back at the front of its pending stage and sends
// it again once the plugin is back: nothing is lost. A batch in a sampled trace goes by the unary
// Send, so that its trace shows the plugin call as a gRPC span as before. A plugin built with an
// SDK older than the stream answers Unimplemented, and the host uses unary Send from then on.

// coalesceBytes bounds a frame of coalesced requests or answers (estimated bytes); a single
// request larger than that travels alone.
const coalesceBytes = 4 << 20

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
	w      frameWriter[*streamCall, uint64]

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
	ss := &sendStream{st: st, cancel: cancel, calls: map[uint64]*streamCall{}, dead: make(chan struct{})}
	frame := &pb.SendFrame{}
	ss.w.size = func(c *streamCall) int { return c.size }
	ss.w.send = func(calls []*streamCall, cancels []uint64) error {
		frame.Requests, frame.Cancel = frame.Requests[:0], append(frame.Cancel[:0], cancels...)
		for _, c := range calls {
			frame.Requests = append(frame.Requests, c.req)
		}
		err := st.Send(frame) // the frame is encoded before Send returns
		clear(frame.Requests)
		return err
	}
	ss.w.failed = ss.writeFailed
	go ss.read()
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
	// Written here, or queued for the caller writing now; a failed write ends the stream.
	ss.w.put(call, 0, false)
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
		ss.w.put(nil, id, true)
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

// writeFailed ends the stream after a failed write.
func (ss *sendStream) writeFailed(err error) {
	if err == io.EOF { // the stream ended: its status comes from Recv
		_, err = ss.st.Recv()
	}
	ss.end(err)
}

// frameWriter lets one goroutine at a time write on a stream, with no goroutine of its own: put
// writes the message at once when no one is writing, and otherwise queues it for the goroutine
// that is, which writes everything queued, several messages to a frame (up to coalesceBytes), before
// it returns. Messages keep the order of put. After a failed write, failed is called once and
// everything queued then or later is dropped: its callers learn of it from the stream's end.
//
// The queue is bounded by the callers: a batch's caller waits for its answer before it sends
// another (so the host's workers bound the requests), and a plugin's answers by the requests it
// runs. A write waits only for HTTP/2 flow control (WindowBytes), which the other side, reading
// the stream all the time, keeps open; a write on a broken stream fails at once.
type frameWriter[M any, C any] struct {
	size   func(M) int
	send   func([]M, []C) error
	failed func(error)

	mu      sync.Mutex
	msgs    []M
	ctl     []C
	writing bool
	broken  bool
	// out and outCtl are the writing goroutine's frame, kept for the next one.
	out    []M
	outCtl []C
}

// put queues a message (or, when ctl, a control entry) and writes the queue unless another
// goroutine is writing it.
func (w *frameWriter[M, C]) put(m M, c C, ctl bool) {
	w.mu.Lock()
	if w.broken {
		w.mu.Unlock()
		return
	}
	if ctl {
		w.ctl = append(w.ctl, c)
	} else {
		w.msgs = append(w.msgs, m)
	}
	if w.writing {
		w.mu.Unlock()
		return
	}
	w.writing = true
	for {
		n, size := 0, 0
		for n < len(w.msgs) && (n == 0 || size < coalesceBytes) {
			size += w.size(w.msgs[n])
			n++
		}
		if n == 0 && len(w.ctl) == 0 {
			w.writing = false
			w.mu.Unlock()
			return
		}
		w.out = append(w.out[:0], w.msgs[:n]...)
		w.outCtl = w.outCtl[:0]
		if n == len(w.msgs) {
			// Control entries go with the last of the messages queued before them (a cancel
			// follows its request), never ahead of them.
			w.outCtl = append(w.outCtl, w.ctl...)
			w.ctl = w.ctl[:0]
		}
		rest := copy(w.msgs, w.msgs[n:])
		clear(w.msgs[rest:])
		w.msgs = w.msgs[:rest]
		w.mu.Unlock()
		err := w.send(w.out, w.outCtl)
		clear(w.out)
		w.mu.Lock()
		if err != nil {
			w.broken, w.writing = true, false
			clear(w.msgs)
			w.msgs, w.ctl = nil, nil
			w.mu.Unlock()
			w.failed(err)
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
// concurrently; each answer is written by the goroutine that ran its Send, or, while another is
// writing, by that one, several to a frame.
func (s *transportServer) SendStream(st pb.Transport_SendStreamServer) error {
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	frame := &pb.SendResultFrame{}
	failed := make(chan error, 1)
	w := &frameWriter[*pb.SendResponse, struct{}]{
		size: responseSize,
		send: func(rs []*pb.SendResponse, _ []struct{}) error {
			frame.Responses = append(frame.Responses[:0], rs...)
			err := st.Send(frame)
			clear(frame.Responses)
			return err
		},
		// The host is gone or the stream broke: stop the Sends; Recv ends the loop below.
		failed: func(err error) { failed <- err; cancel() },
	}
	var calls sync.WaitGroup
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{}
	for {
		f, err := st.Recv()
		if err != nil {
			if err == io.EOF { // the host is done sending: answer what is in flight, then end
				calls.Wait()
				select {
				case err := <-failed:
					return err
				default:
					return nil
				}
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
				w.put(resp, struct{}{}, false)
			}()
		}
		// A cancel follows its request (the host sends it in the same frame or a later one), so
		// the call is known.
		mu.Lock()
		for _, id := range f.Cancel {
			if c := running[id]; c != nil {
				c()
			}
		}
		mu.Unlock()
	}
}

// WindowBytes is the HTTP/2 flow-control window, per stream and per connection, of the
// connection between herald and a plugin process, on both ends: the batch stream carries every
// batch in flight at once, and gRPC's default (64 KiB, grown by its estimator) would make it wait
// for window updates.
const WindowBytes = 4 << 20
