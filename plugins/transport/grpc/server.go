package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/heraldhq/herald/plugins/transport/grpc/internal/wirepb"
	"github.com/heraldhq/herald/sdk"
)

// server is the receiving side: it takes peers' streams and hands each batch to the node.
type server struct {
	wirepb.UnimplementedReplicationServer
	host sdk.Host
	ln   net.Listener
	srv  *grpc.Server
	done chan struct{}
	// streams counts the streams peers opened.
	streams atomic.Int64
}

func startServer(ln net.Listener, host sdk.Host, auth *authSetup) *server {
	s := &server{host: host, ln: ln, done: make(chan struct{})}
	opts := append([]grpc.ServerOption{grpc.StreamInterceptor(auth.interceptor())}, auth.listen...)
	s.srv = grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// Senders ping every 10 s to find dead connections; allow it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// Stop waits for the batches being handed to the node.
		grpc.WaitForHandlers(true),
	)...)
	wirepb.RegisterReplicationServer(s.srv, s)
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s
}

// stop closes the listener and every stream: their senders see the stream break and send again
// once the node is back.
func (s *server) stop() {
	s.srv.Stop()
	<-s.done
}

// Replicate implements the service: frames are handed to the node concurrently, up to
// maxInFlightPerStream at a time, and answered as they complete.
func (s *server) Replicate(st grpc.BidiStreamingServer[wirepb.BatchFrame, wirepb.ResultFrame]) error {
	s.streams.Add(1)
	ctx := st.Context()
	var (
		sendMu sync.Mutex
		wg     sync.WaitGroup
	)
	slots := make(chan struct{}, maxInFlightPerStream)
	defer wg.Wait() // no Send after the handler returns
	for {
		f, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			r := s.receive(ctx, f)
			sendMu.Lock()
			defer sendMu.Unlock()
			// A failed Send means the stream is gone: Recv fails too and ends the handler, and the
			// sender retries the batch on its next stream.
			_ = st.Send(r)
		}()
	}
}

// receive hands one frame to the node and returns its answer.
func (s *server) receive(ctx context.Context, f *wirepb.BatchFrame) (r *wirepb.ResultFrame) {
	defer func() {
		if p := recover(); p != nil {
			r = &wirepb.ResultFrame{Seq: f.Seq, Error: fmt.Sprintf("the node failed on the batch: %v", p)}
		}
	}()
	items := make([]sdk.Item, len(f.Items))
	for i, w := range f.Items {
		items[i] = sdk.Item{Action: sdk.Action(w.Action), App: w.App, ID: w.Id, LastDirtyTimestamp: w.LastDirtyTimestamp,
			Status: w.Status, OverriddenStatus: w.OverriddenStatus, Instance: nonEmpty(w.Instance), Payload: nonEmpty(w.Payload),
			TraceParent: w.Traceparent, StatusVersion: w.StatusVersion}
	}
	// The batch span's context: the node's handling of the batch joins the batch's trace.
	res, err := s.host.Receive(sdk.WithTraceParent(ctx, f.Traceparent), sdk.Batch{ID: f.BatchId, Items: items})
	if err != nil {
		msg := err.Error()
		if msg == "" {
			msg = "the node refused the batch"
		}
		return &wirepb.ResultFrame{Seq: f.Seq, Error: msg}
	}
	out := make([]*wirepb.Result, len(res))
	buf := make([]wirepb.Result, len(res))
	for i, r := range res {
		buf[i].StatusCode, buf[i].Entity = int32(r.StatusCode), r.Entity
		out[i] = &buf[i]
	}
	return &wirepb.ResultFrame{Seq: f.Seq, Results: out}
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
