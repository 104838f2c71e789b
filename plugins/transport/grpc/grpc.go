// Package grpctransport is herald's built-in "grpc" transport, for herald-to-herald replication:
// batches travel as protobuf over one long-lived, bidirectional gRPC stream per peer, many batches
// in flight at once (each answer names the batch it answers), optionally gzip-compressed.
//
// Each node sends and receives: its receiving side listens on its own port (by default the node's
// Eureka port plus port_offset, 1000: a node on 8761 takes batches on 9761) and hands each inbound
// batch to the node through sdk.Host.Receive, so it goes through the same validation, apply and
// observe handlers as a batch over HTTP. Peers are reached at sdk.Peer.Address when it is set,
// otherwise at their Eureka URL's host and port plus port_offset. Eureka servers do not speak this
// protocol: use the "http" transport for them (a per-peer transport in a peer "URL" {} block).
//
// Failures are classified as the http transport's: a peer that cannot be reached (connection
// refused, reset, the stream broken) is transient; a deadline or an exhausted resource is
// congestion, as is a batch the receiving node refused as a whole (it is retried later); a batch
// that cannot be carried (invalid, too large, an unknown service) is permanent.
package grpctransport

import (
	"bytes"
	gz "compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Defaults of the options and config keys.
const (
	DefaultPortOffset     = 1000
	DefaultConnectTimeout = time.Second
	DefaultReadTimeout    = 5 * time.Second
	// DefaultCompress is off. Replication batches are small (a few tasks each under load), so
	// gzip shrinks them about fourfold but costs about a third more CPU per replicated write
	// (BenchmarkTransports), which is the scarce resource on the LAN links peers usually share.
	// Turn it on where bandwidth is dear (peers across regions).
	DefaultCompress = false
)

// MaxMessageBytes bounds one frame in either direction (the limit of the plugin protocol, so a
// batch that reaches the transport out of process also fits here).
const MaxMessageBytes = sdk.MaxMessageBytes

// maxInFlightPerStream bounds the batches one inbound stream has at the node at once; past it the
// receiver stops reading and flow control holds the sender back.
const maxInFlightPerStream = 128

// Options configures a Transport. Zero values take the defaults.
type Options struct {
	// ConnectTimeout bounds opening a peer's connection and stream.
	ConnectTimeout time.Duration
	// ReadTimeout bounds waiting for a batch's answer; past it the send counts as congestion.
	ReadTimeout time.Duration
	// Compress gzips frames.
	Compress bool
	// PortOffset is added to a peer's Eureka port to find its grpc port when sdk.Peer.Address is
	// not set (default 1000).
	PortOffset int
	// NodeName names this node in the signatures of the streams it opens.
	NodeName string
	// PeerAuth authenticates both sides: TLS (mutual when peer_auth.mtls) when the node has a
	// certificate, a signature with the cluster secret on every stream opened.
	PeerAuth peerauth.Config
}

func (o *Options) defaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.PortOffset <= 0 {
		o.PortOffset = DefaultPortOffset
	}
}

// Stats counts what the sending side carried.
type Stats struct {
	// Batches and Items answered by peers (item by item or refused as a whole).
	Batches, Items int64
	// BytesSent and BytesReceived are the bytes written to and read from the sending side's peer
	// connections: frames, HTTP/2 framing and keep-alives, as they go over TCP.
	BytesSent, BytesReceived int64
}

// Transport sends batches to peers over gRPC and, once Listen is called, receives theirs. It is
// safe for concurrent use.
type Transport struct {
	opts     Options
	dialOpts []grpc.DialOption
	callOpts []grpc.CallOption
	base     context.Context // cancelled by Close: ends every stream
	stop     context.CancelFunc

	mu     sync.RWMutex
	peers  map[string]*peerConn // by "a:"+address or "u:"+Eureka URL
	closed bool
	srv    *server
	auth   *authSetup
	// err is a problem with the peer authentication material: such a transport refuses to send.
	err error

	batches, items, sent, received atomic.Int64
}

// New returns a Transport that sends; call Listen to receive as well.
func New(o Options) *Transport {
	o.defaults()
	t := &Transport{opts: o, peers: map[string]*peerConn{}}
	t.base, t.stop = context.WithCancel(context.Background())
	if t.auth, t.err = newAuthSetup(o.NodeName, o.PeerAuth); t.err != nil {
		t.auth = &authSetup{dial: insecure.NewCredentials(), auth: &peerauth.Authenticator{}}
	}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	t.dialOpts = []grpc.DialOption{
		grpc.WithTransportCredentials(t.auth.dial),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, sent: &t.sent, received: &t.received}, nil
		}),
		// Reconnect soon after a peer comes back: herald's pipeline paces its own retries.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: o.ConnectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
	if o.Compress {
		t.callOpts = append(t.callOpts, grpc.UseCompressor(gzip.Name))
	}
	return t
}

// Err reports a problem with the peer authentication material (an unreadable certificate, a
// short secret); a transport with one sends nothing.
func (t *Transport) Err() error { return t.err }

// Stats returns the sending side's counters.
func (t *Transport) Stats() Stats {
	return Stats{Batches: t.batches.Load(), Items: t.items.Load(), BytesSent: t.sent.Load(), BytesReceived: t.received.Load()}
}

// Addr returns the receiving side's listen address, or nil when it does not listen.
func (t *Transport) Addr() net.Addr {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.srv == nil {
		return nil
	}
	return t.srv.ln.Addr()
}

// Listen starts the receiving side on addr (host:port): each inbound batch is handed to
// host.Receive and its answers returned to the sender. A Transport listens once.
func (t *Transport) Listen(addr string, host sdk.Host) error {
	if host == nil {
		return errors.New("grpc transport: Listen needs a host")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errClosed
	}
	if t.srv != nil {
		return fmt.Errorf("grpc transport: already listening on %s", t.srv.ln.Addr())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	t.srv = startServer(ln, host, t.auth)
	return nil
}

// Close stops the receiving side (in-flight batches at the node are waited for, and their senders
// retry them) and closes every peer connection; sends fail from then on.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	srv, peers := t.srv, t.peers
	t.peers = map[string]*peerConn{}
	t.mu.Unlock()
	t.stop()
	for _, pc := range peers {
		_ = pc.cc.Close()
	}
	if srv != nil {
		srv.stop()
	}
	return nil
}

var errClosed = errors.New("grpc transport: closed")

// countingConn counts the bytes a connection carries.
type countingConn struct {
	net.Conn
	sent, received *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.received.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// FrameSize returns the bytes a batch takes on the stream as one frame: the gRPC message prefix
// and the protobuf frame, gzipped when compress is set (HTTP/2 framing not included).
func FrameSize(b sdk.Batch, compress bool) int {
	data, err := proto.Marshal(toFrame(b))
	if err != nil {
		return 0
	}
	if compress {
		var z bytes.Buffer
		zw := gz.NewWriter(&z)
		_, _ = zw.Write(data)
		_ = zw.Close()
		data = z.Bytes()
	}
	return 5 + len(data)
}
