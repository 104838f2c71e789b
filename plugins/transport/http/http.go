// Package httptransport is herald's built-in "http" transport: it carries a batch to a peer as
// Eureka's POST {base}/peerreplication/batch (a ReplicationList) and reads the per-item answers
// (a ReplicationListResponse), so herald peers with herald and with Eureka servers alike.
//
// Failures are classified as Eureka's ReplicationTaskProcessor does: 503 and read timeouts are
// congestion, connection failures are transient, anything else is permanent. A 413 (the batch is
// larger than the peer's body limit) is permanent and marked with sdk.ErrTooLarge.
package httptransport

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Options configures the transport. Zero values take Eureka's defaults.
type Options struct {
	// ConnectTimeout bounds dialing a peer [peerNodeConnectTimeoutMs, 1 s].
	ConnectTimeout time.Duration
	// ReadTimeout bounds waiting for a peer's answer [peerNodeReadTimeoutMs, 5 s].
	ReadTimeout time.Duration
	// MaxConnsPerHost bounds connections to one peer (default 500, as Eureka).
	MaxConnsPerHost int
	// IdleTimeout closes idle connections (default 30 s).
	IdleTimeout time.Duration
	// Compress gzips request bodies [enableReplicatedRequestCompression, false].
	Compress bool
	// NodeID is sent as DiscoveryIdentity-Id.
	NodeID string
	// MaxResponseBytes bounds a peer's answer (default 64 MiB).
	MaxResponseBytes int64
	// PeerAuth signs each batch with the cluster secret and dials https peers with the node's
	// certificate, verifying theirs against the cluster CA.
	PeerAuth peerauth.Config
}

// Transport sends batches over HTTP. It is safe for concurrent use; connections are kept alive and
// shared by all sends to a peer.
type Transport struct {
	opts     Options
	client   *http.Client
	signer   *peerauth.Signer
	setupErr error
	// names are the node names the peers gave in their answers (peerauth.HeaderNode), by peer
	// URL: shown beside the URL in errors and spans. onName, when set, is told each one.
	names  sync.Map
	onName func(peerURL, name string)
}

// OnPeerName makes the transport tell f the node name each peer gives in its answers (the
// peerauth.HeaderNode header), with the peer's URL, on every answer that carries one. The name is
// for display; the peer's identity stays its URL. Call it before the first Send.
func (t *Transport) OnPeerName(f func(peerURL, name string)) { t.onName = f }

// learn records the node name the peer gave in h.
func (t *Transport) learn(peer sdk.Peer, h http.Header) string {
	name := h.Get(peerauth.HeaderNode)
	if name == "" || len(name) > 128 {
		return t.nameOf(peer)
	}
	if old, ok := t.names.Load(peer.URL); !ok || old.(string) != name {
		t.names.Store(peer.URL, name)
		if t.onName != nil {
			t.onName(peer.URL, name)
		}
	}
	return name
}

// nameOf returns the node name the peer gave last, "" when none yet.
func (t *Transport) nameOf(peer sdk.Peer) string {
	if v, ok := t.names.Load(peer.URL); ok {
		return v.(string)
	}
	return ""
}

// who names the peer in errors: its URL-based name, and its node name once known.
func (t *Transport) who(peer sdk.Peer) string {
	if n := t.nameOf(peer); n != "" && n != peer.Name {
		return peer.Name + " (" + n + ")"
	}
	return peer.Name
}

// New returns a Transport.
func New(o Options) *Transport {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 500
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 20
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          o.MaxConnsPerHost,
		MaxIdleConnsPerHost:   o.MaxConnsPerHost,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       o.IdleTimeout,
		ResponseHeaderTimeout: o.ReadTimeout,
		// Bodies are small and already compact; Go's transparent gzip is kept for answers.
	}
	t := &Transport{opts: o, client: &http.Client{Transport: tr}}
	if tl, err := o.PeerAuth.LoadTLS(); err != nil {
		t.setupErr = err
	} else if tl != nil {
		tr.TLSClientConfig = tl.ClientConfig()
	}
	if s, err := o.PeerAuth.Signer(o.NodeID); err != nil {
		t.setupErr = err
	} else {
		t.signer = s
	}
	return t
}

// Err reports a problem with the peer authentication material (unreadable certificate, short
// secret); a transport with one refuses to send.
func (t *Transport) Err() error { return t.setupErr }

// bodySize estimates a batch's body, so that it is allocated once at about the right size.
func bodySize(items []sdk.Item) int {
	n := 32
	for i := range items {
		it := &items[i]
		n += 160 + len(it.App) + len(it.ID) + len(it.Instance) + len(it.TraceParent) + len(it.Payload)*4/3
	}
	return n
}

// BatchURL returns the batch endpoint under a peer's Eureka base URL.
func BatchURL(base string) string {
	return strings.TrimRight(base, "/") + "/peerreplication/batch/"
}

// Send implements sdk.Transport.
func (t *Transport) Send(ctx context.Context, peer sdk.Peer, batch sdk.Batch) ([]sdk.ItemResult, error) {
	// The body is built for this send and not pooled: the http.Transport may still read a request
	// body after Do returns (a peer that answers 413 before reading it all), so a reused buffer could
	// be overwritten mid-send. The host bounds its size (replication.max_batch_bytes).
	body := eurekawire.AppendReplicationList(make([]byte, 0, bodySize(batch.Items)), batch.Items)
	if t.opts.Compress {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = z.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.ConnectTimeout+t.opts.ReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, BatchURL(peer.URL), bytes.NewReader(body))
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", t.who(peer), err))
	}
	if t.setupErr != nil {
		return nil, sdk.Fail(sdk.Transient, fmt.Errorf("peer %s: peer authentication: %w", t.who(peer), t.setupErr))
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("DiscoveryIdentity-Name", "DefaultServer")
	h.Set("DiscoveryIdentity-Version", "1.0")
	if t.opts.NodeID != "" {
		h.Set("DiscoveryIdentity-Id", t.opts.NodeID)
	}
	if t.opts.Compress {
		h.Set("Content-Encoding", "gzip")
	}
	// The batch span's context: the receiving node's spans for this request join the batch's trace.
	sdk.InjectTraceContext(ctx, h)
	if t.signer != nil {
		t.signer.Sign(req, body)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, classify(t.who(peer), err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	name := t.learn(peer, resp.Header)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		// The span of this send (the batch span in-process, the plugin's Send span in a plugin
		// process) is the HTTP client call: OpenTelemetry's HTTP client attributes.
		u := *req.URL
		u.User = nil
		span.SetAttributes(attribute.String("http.request.method", req.Method), attribute.String("url.full", u.String()),
			attribute.Int("http.response.status_code", resp.StatusCode), attribute.String("herald.peer.url", peer.Name))
		if name != "" {
			span.SetAttributes(attribute.String("herald.peer.name", name))
		}
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("peer %s: 503 Service Unavailable", t.who(peer)))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The peer does not (yet) accept this node's credentials: a secret or certificate being
		// rotated, or a misconfiguration to fix. Dropping would lose the writes; back off and retry.
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("peer %s: batch refused, %s: check cluster.peer_auth on both nodes", t.who(peer), resp.Status))
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: batch %s of %d items, %d bytes, answered %s: %w",
			t.who(peer), batch.ID, len(batch.Items), len(body), resp.Status, sdk.ErrTooLarge))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: batch answered %s", t.who(peer), resp.Status))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.opts.MaxResponseBytes))
	if err != nil {
		return nil, classify(t.who(peer), err)
	}
	results, err := eurekawire.DecodeReplicationListResponse(data)
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", t.who(peer), err))
	}
	if len(results) != len(batch.Items) {
		// Eureka's sender ignores such an answer; herald treats it as a failed batch.
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %d answers for %d items", t.who(peer), len(results), len(batch.Items)))
	}
	return results, nil
}

// classify maps a transport error as Eureka does: a read timeout means the peer is overloaded
// (congestion: back off longer, do not hammer it), any other network failure is transient.
func classify(peer string, err error) error {
	wrapped := fmt.Errorf("peer %s: %w", peer, err)
	if errors.Is(err, context.Canceled) || isDial(err) {
		return sdk.Fail(sdk.Transient, wrapped)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return sdk.Fail(sdk.Congestion, wrapped)
	}
	return sdk.Fail(sdk.Transient, wrapped)
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// CloseIdleConnections closes kept-alive connections (on peer removal and shutdown).
func (t *Transport) CloseIdleConnections() { t.client.CloseIdleConnections() }
