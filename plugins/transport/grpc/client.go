package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/heraldhq/herald/plugins/transport/grpc/internal/wirepb"
	"github.com/heraldhq/herald/sdk"
)

// Send implements sdk.Transport: it puts the batch on the peer's stream (opening it first if
// needed) and waits for its answer, at most ReadTimeout, and never past ctx.
func (t *Transport) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, classify(peer, err)
	}
	pc, err := t.peerConn(peer)
	if err != nil {
		return nil, err
	}
	frame := toFrame(b)
	frame.Traceparent = sdk.TraceParentOf(ctx)
	if err := checkSize(frame); err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", peer.Name, err))
	}
	st, err := pc.stream(ctx, t.opts.ConnectTimeout)
	if err != nil {
		return nil, classify(peer, err)
	}
	r, err := st.roundTrip(ctx, frame, t.opts.ReadTimeout)
	if err != nil {
		return nil, classify(peer, err)
	}
	t.batches.Add(1)
	t.items.Add(int64(len(b.Items)))
	if r.Error != "" {
		// The receiving node could not take the batch (its host failed): it may take it later.
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("peer %s refused the batch: %s", peer.Name, r.Error))
	}
	if len(r.Results) != len(b.Items) {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %d answers for %d items", peer.Name, len(r.Results), len(b.Items)))
	}
	out := make([]sdk.ItemResult, len(r.Results))
	for i, x := range r.Results {
		out[i].StatusCode = int(x.StatusCode)
		if len(x.Entity) > 0 {
			out[i].Entity = x.Entity
		}
	}
	return out, nil
}

func toFrame(b sdk.Batch) *wirepb.BatchFrame {
	items := make([]*wirepb.Item, len(b.Items))
	buf := make([]wirepb.Item, len(b.Items)) // one allocation for the items
	for i := range b.Items {
		it := &b.Items[i]
		w := &buf[i]
		w.Action, w.App, w.Id = string(it.Action), it.App, it.ID
		w.LastDirtyTimestamp, w.Status, w.OverriddenStatus = it.LastDirtyTimestamp, it.Status, it.OverriddenStatus
		w.Instance, w.Payload, w.Traceparent = it.Instance, it.Payload, it.TraceParent
		w.StatusVersion = it.StatusVersion
		items[i] = w
	}
	return &wirepb.BatchFrame{BatchId: b.ID, Items: items}
}

// checkSize refuses a frame over MaxMessageBytes before it is sent: gRPC would fail the whole
// stream for it, and a retry cannot make it smaller. Only large frames are measured exactly.
func checkSize(f *wirepb.BatchFrame) error {
	est := len(f.BatchId)
	for _, it := range f.Items {
		est += 64 + len(it.Action) + len(it.App) + len(it.Id) + len(it.Status) + len(it.OverriddenStatus) +
			len(it.Instance) + len(it.Payload) + len(it.Traceparent)
	}
	if est < MaxMessageBytes/2 {
		return nil
	}
	if n := proto.Size(f); n > MaxMessageBytes-64 {
		return fmt.Errorf("batch %s of %d items is %d bytes, over the %d-byte frame limit", f.BatchId, len(f.Items), n, MaxMessageBytes)
	}
	return nil
}

// classify maps a send failure to its class.
func classify(peer sdk.Peer, err error) error {
	var se *sdk.SendError
	if errors.As(err, &se) {
		return sdk.Fail(se.Class, fmt.Errorf("peer %s: %w", peer.Name, se.Err))
	}
	wrapped := fmt.Errorf("peer %s: %w", peer.Name, err)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, io.EOF), errors.Is(err, errClosed):
		return sdk.Fail(sdk.Transient, wrapped)
	case errors.Is(err, context.DeadlineExceeded):
		return sdk.Fail(sdk.Congestion, wrapped)
	}
	s, ok := status.FromError(err)
	if !ok {
		return sdk.Fail(sdk.Transient, wrapped)
	}
	switch s.Code() {
	case codes.DeadlineExceeded, codes.ResourceExhausted:
		return sdk.Fail(sdk.Congestion, wrapped)
	case codes.PermissionDenied, codes.Unauthenticated:
		// A peer that does not (yet) accept this node's credentials: a certificate or secret being
		// rotated, or a misconfiguration to fix. Dropping would lose the writes; back off and retry.
		return sdk.Fail(sdk.Congestion, wrapped)
	case codes.InvalidArgument, codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange:
		return sdk.Fail(sdk.Permanent, wrapped)
	}
	// Unavailable (refused, reset, the peer stopping), Canceled, Aborted, Internal, Unknown: the
	// stream is gone; the batch goes on a new one.
	return sdk.Fail(sdk.Transient, wrapped)
}

var (
	errConnectTimeout = sdk.Fail(sdk.Transient, errors.New("connect timeout"))
	errReadTimeout    = sdk.Fail(sdk.Congestion, errors.New("no answer within the read timeout"))
)

// peerConn is the connection to one peer and its current stream.
type peerConn struct {
	t    *Transport
	addr string
	cc   *grpc.ClientConn

	mu      sync.Mutex
	st      *stream  // the open stream; nil when none
	opening *opening // a stream being opened; nil when none
}

type opening struct {
	done chan struct{}
	st   *stream
	err  error
}

func (t *Transport) peerConn(peer sdk.Peer) (*peerConn, error) {
	key := "u:" + peer.URL
	if peer.Address != "" {
		key = "a:" + peer.Address
	}
	t.mu.RLock()
	pc, closed := t.peers[key], t.closed
	t.mu.RUnlock()
	if pc != nil {
		return pc, nil
	}
	if closed {
		return nil, sdk.Fail(sdk.Transient, errClosed)
	}
	addr, err := sdk.PeerAddress(peer, t.opts.PortOffset)
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", peer.Name, err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, sdk.Fail(sdk.Transient, errClosed)
	}
	if pc = t.peers[key]; pc != nil {
		return pc, nil
	}
	cc, err := grpc.NewClient(addr, t.dialOpts...)
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", peer.Name, err))
	}
	pc = &peerConn{t: t, addr: addr, cc: cc}
	t.peers[key] = pc
	return pc, nil
}

// stream returns the peer's open stream, or opens one, waiting at most connectTimeout and never
// past ctx. Concurrent callers share one opening.
func (pc *peerConn) stream(ctx context.Context, connectTimeout time.Duration) (*stream, error) {
	pc.mu.Lock()
	if st := pc.st; st != nil {
		pc.mu.Unlock()
		return st, nil
	}
	o := pc.opening
	if o == nil {
		o = &opening{done: make(chan struct{})}
		pc.opening = o
		go pc.open(o)
	}
	pc.mu.Unlock()
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	select {
	case <-o.done:
		return o.st, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, errConnectTimeout
	}
}

func (pc *peerConn) open(o *opening) {
	ctx, cancel := context.WithCancel(pc.t.base)
	cs, err := wirepb.NewReplicationClient(pc.cc).Replicate(pc.t.auth.streamContext(ctx), pc.t.callOpts...)
	var st *stream
	if err != nil {
		cancel()
	} else {
		st = &stream{pc: pc, cs: cs, cancel: cancel, calls: map[uint64]*call{}, out: make(chan *call, 64), done: make(chan struct{})}
	}
	pc.mu.Lock()
	pc.opening = nil
	pc.st = st
	pc.mu.Unlock()
	if st != nil {
		go st.write()
		go st.read()
	}
	o.st, o.err = st, err
	close(o.done)
}

// drop forgets a broken stream, so that the next send opens a new one.
func (pc *peerConn) drop(st *stream) {
	pc.mu.Lock()
	if pc.st == st {
		pc.st = nil
	}
	pc.mu.Unlock()
}

// stream is one open Replicate stream: a writer goroutine puts frames on it in the order sends
// queue them, a reader goroutine hands each answer to the send waiting for its seq.
type stream struct {
	pc     *peerConn
	cs     grpc.BidiStreamingClient[wirepb.BatchFrame, wirepb.ResultFrame]
	cancel context.CancelFunc
	out    chan *call

	mu    sync.Mutex
	seq   uint64
	calls map[uint64]*call // waiting for an answer
	err   error            // why the stream broke; set once, before done is closed
	done  chan struct{}
}

type call struct {
	seq uint64
	msg *grpc.PreparedMsg        // the frame, encoded (and compressed) by the sending goroutine
	res chan *wirepb.ResultFrame // buffered: the reader never blocks
}

func (s *stream) roundTrip(ctx context.Context, f *wirepb.BatchFrame, readTimeout time.Duration) (*wirepb.ResultFrame, error) {
	c := &call{msg: new(grpc.PreparedMsg), res: make(chan *wirepb.ResultFrame, 1)}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.seq++
	c.seq = s.seq
	s.calls[c.seq] = c
	s.mu.Unlock()
	// Encoding here rather than in the writer spreads marshalling and compression over the
	// sending goroutines; the writer only puts bytes on the stream.
	f.Seq = c.seq
	if err := c.msg.Encode(s.cs, f); err != nil {
		s.forget(c.seq)
		return nil, err
	}
	timer := time.NewTimer(readTimeout)
	defer timer.Stop()
	select {
	case s.out <- c:
	case <-s.done:
		return nil, s.err
	case <-ctx.Done():
		s.forget(c.seq)
		return nil, ctx.Err()
	case <-timer.C:
		s.forget(c.seq)
		return nil, errReadTimeout
	}
	select {
	case r := <-c.res:
		return r, nil
	case <-s.done:
		select {
		case r := <-c.res: // answered just before the stream broke
			return r, nil
		default:
			return nil, s.err
		}
	case <-ctx.Done():
		s.forget(c.seq)
		return nil, ctx.Err()
	case <-timer.C:
		s.forget(c.seq)
		return nil, errReadTimeout
	}
}

// forget drops a call its sender stopped waiting for: a frame not yet written is not sent, an
// answer that still comes is dropped.
func (s *stream) forget(seq uint64) {
	s.mu.Lock()
	delete(s.calls, seq)
	s.mu.Unlock()
}

func (s *stream) waiting(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[seq] != nil
}

func (s *stream) write() {
	for {
		select {
		case c := <-s.out:
			if !s.waiting(c.seq) {
				continue
			}
			if err := s.cs.SendMsg(c.msg); err != nil {
				if err != io.EOF { // io.EOF: the stream ended; read() gets its status
					s.fail(err)
				}
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *stream) read() {
	for {
		r, err := s.cs.Recv()
		if err != nil {
			if err == io.EOF {
				err = status.Error(codes.Unavailable, "the peer closed the stream")
			}
			s.fail(err)
			return
		}
		s.mu.Lock()
		c := s.calls[r.Seq]
		delete(s.calls, r.Seq)
		s.mu.Unlock()
		if c != nil {
			c.res <- r
		}
	}
}

// fail breaks the stream: waiting sends get err, and the next send opens a new stream.
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.calls = map[uint64]*call{}
	s.mu.Unlock()
	close(s.done)
	s.cancel()
	s.pc.drop(s)
}
