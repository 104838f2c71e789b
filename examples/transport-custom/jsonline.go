package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// JSONLine carries each batch as one line of JSON over TCP and reads the answer back as one line.
// Its receiving side hands a batch to the node (sdk.Host.Receive) once the line's signature with
// the cluster secret checks out. Written against herald's sdk only.
type JSONLine struct {
	mu    sync.Mutex
	cfg   Config
	host  sdk.Host
	log   sdk.Logger
	sign  *peerauth.Signer
	auth  *peerauth.Authenticator
	ln    net.Listener
	idle  map[string][]*lineConn // the sending side's connections between batches, per peer address
	conns map[net.Conn]bool      // the receiving side's connections
	done  bool                   // closed
	// idleFor is how long a receiving connection may wait for a batch (idleTimeout).
	idleFor time.Duration
}

// maxIdle bounds the idle connections kept per peer: as many as herald sends batches to a peer at
// once by default (replication.workers, Eureka's maxThreadsForPeerReplication).
const maxIdle = 20

// idleTimeout closes a receiving connection that brings no batch for that long: a sender's idle
// connection is replaced on its next send, and a caller cannot hold connections open for nothing.
const idleTimeout = time.Minute

// lineConn reads and writes the lines of a connection, each at most MaxMessageBytes long.
type lineConn struct {
	net.Conn
	limit io.LimitedReader
	dec   *json.Decoder
}

func newLineConn(conn net.Conn) *lineConn {
	c := &lineConn{Conn: conn, limit: io.LimitedReader{R: conn}}
	c.dec = json.NewDecoder(&c.limit)
	return c
}

func (c *lineConn) read(m *message) error { c.limit.N = sdk.MaxMessageBytes; return c.dec.Decode(m) }
func (c *lineConn) write(m message) error { return json.NewEncoder(c).Encode(m) }

// Config is the config {} block: the SDK checks it against these types (file, line and key of any
// error) and fills in the defaults; a Validate() []sdk.Diagnostic method would add range checks.
type Config struct {
	Listen     string        `config:"listen" description:"address of the receiving side (\"off\": none; default: the node's host, its port + port_offset)"`
	PortOffset int           `config:"port_offset" default:"2000" description:"a peer without an address in its peer block listens on its Eureka port plus this"`
	Timeout    time.Duration `config:"timeout" default:"5s" description:"longest a send may take"`
}

// message is a line on the wire: a request (Batch is Eureka's ReplicationList, which carries every
// field of every item, base64-encoded: exactly the bytes Auth signs) or its answer (Results is a
// ReplicationListResponse, or Error says why the node cannot take the batch now).
type message struct {
	ID      string            `json:"id,omitempty"`
	Auth    map[string]string `json:"auth,omitempty"`
	Batch   []byte            `json:"batch,omitempty"`
	Results json.RawMessage   `json:"results,omitempty"`
	Error   string            `json:"error,omitempty"`
}

const signedPath = "/jsonline/batch" // what a signature names, as a path names an HTTP request

// New returns the transport, sending only, until Configure.
func New() *JSONLine {
	return &JSONLine{host: sdk.NoHost(), cfg: Config{PortOffset: 2000, Timeout: 5 * time.Second},
		idle: map[string][]*lineConn{}, conns: map[net.Conn]bool{}, idleFor: idleTimeout}
}

// Info implements sdk.Describer.
func (j *JSONLine) Info() sdk.Info {
	return sdk.Info{Name: "jsonline", Kind: sdk.KindTransport, Config: Config{}}
}

// Configure implements sdk.Configurable: config, peer authentication, host service, listener.
func (j *JSONLine) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	sign, err := req.PeerAuth.Signer(req.NodeName)
	auth, aerr := req.PeerAuth.Authenticator(sdk.MaxMessageBytes)
	if err = errors.Join(err, aerr); err != nil {
		return []sdk.Diagnostic{{Message: "peer authentication: " + err.Error()}}
	}
	listen := c.Listen
	if listen == "" {
		if listen, err = sdk.OffsetAddress(req.NodeURL, c.PortOffset); err != nil {
			return []sdk.Diagnostic{{Path: "listen", Message: err.Error() + `; set listen = "host:port" or "off"`}}
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cfg, j.host, j.log, j.sign, j.auth = c, req.Host, req.Logger, sign, auth
	if listen == "off" || j.ln != nil {
		return nil
	}
	if j.ln, err = net.Listen("tcp", listen); err != nil {
		return []sdk.Diagnostic{{Path: "listen", Message: "cannot listen: " + err.Error()}}
	}
	go j.accept(j.ln)
	return nil
}

// Close implements io.Closer: it stops the receiving side and closes every connection.
func (j *JSONLine) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done = true
	for c := range j.conns {
		c.Close()
	}
	for addr, cs := range j.idle {
		for _, c := range cs {
			c.Close()
		}
		delete(j.idle, addr)
	}
	if j.ln == nil {
		return nil
	}
	return j.ln.Close()
}

// Send implements sdk.Transport. It sends on a connection the peer's earlier batches left idle,
// or a new one, and retries once on a new one when the peer had closed the idle connection. A
// cancelled send is retried (Transient), a late one is Congestion: sdk.ClassOf(ctx.Err()).
func (j *JSONLine) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	j.mu.Lock()
	cfg, sign := j.cfg, j.sign
	j.mu.Unlock()
	addr, err := sdk.PeerAddress(peer, cfg.PortOffset) // transport_address, or Eureka port + offset
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", peer.Name, err))
	}
	req := message{ID: b.ID, Batch: eurekawire.AppendReplicationList(nil, b.Items)}
	if sign != nil {
		req.Auth = sign.SignValues("POST", signedPath, req.Batch)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, reused, err := j.exchange(ctx, addr, req, true)
	if err != nil && reused && ctx.Err() == nil {
		resp, _, err = j.exchange(ctx, addr, req, false)
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, sdk.Fail(sdk.Transient, err)
	case resp.Error != "": // as herald treats a peer's 401, 403 or 503: retried later
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("%s refused the batch for now: %s", addr, resp.Error))
	}
	rs, err := eurekawire.DecodeReplicationListResponse(resp.Results)
	if err != nil || len(rs) != len(b.Items) {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("%s answered %d results for %d items (%v)", addr, len(rs), len(b.Items), err))
	}
	return rs, nil
}

// exchange sends req to addr and reads the answer, on an idle connection when reuse allows and
// there is one (reused says so), else on a new one. The connection is kept for the next batch
// only after a whole exchange within ctx: its deadline is set when ctx ends, to return at once.
func (j *JSONLine) exchange(ctx context.Context, addr string, req message, reuse bool) (resp message, reused bool, err error) {
	var c *lineConn
	j.mu.Lock()
	if cs := j.idle[addr]; reuse && len(cs) > 0 {
		c, j.idle[addr], reused = cs[len(cs)-1], cs[:len(cs)-1], true
	}
	j.mu.Unlock()
	if c == nil {
		conn, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
		if err != nil {
			return resp, false, err
		}
		c = newLineConn(conn)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	if err = c.write(req); err == nil {
		err = c.read(&resp)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !stop() || err != nil || j.done || len(j.idle[addr]) >= maxIdle {
		c.Close()
	} else {
		j.idle[addr] = append(j.idle[addr], c)
	}
	return resp, reused, err
}

func (j *JSONLine) accept(ln net.Listener) {
	for conn, err := ln.Accept(); err == nil; conn, err = ln.Accept() {
		go j.serve(conn)
	}
}

// serve answers a connection's batches (each at most MaxMessageBytes): each, once its signature
// checks out, goes to the node, which runs its action handlers and answers per item.
func (j *JSONLine) serve(conn net.Conn) {
	defer conn.Close()
	j.mu.Lock()
	done := j.done
	j.conns[conn] = true
	j.mu.Unlock()
	defer func() { j.mu.Lock(); delete(j.conns, conn); j.mu.Unlock() }()
	if done { // accepted as Close ran
		return
	}
	c := newLineConn(conn)
	for req := (message{}); conn.SetReadDeadline(time.Now().Add(j.idleFor)) == nil && c.read(&req) == nil; req = (message{}) {
		j.mu.Lock()
		host, auth, log := j.host, j.auth, j.log
		j.mu.Unlock()
		var resp message
		items, err := eurekawire.DecodeReplicationList(req.Batch)
		switch {
		case err != nil || auth.Insecure: // insecure_peers: every caller is a peer
		case auth.Verifier == nil:
			err = errors.New("not an authenticated peer: no cluster secret to check the batch with")
		default:
			_, err = auth.Verifier.VerifyValues("POST", signedPath, func(k string) string { return req.Auth[k] }, req.Batch)
		}
		var rs []sdk.ItemResult
		if err == nil {
			rs, err = host.Receive(context.Background(), sdk.Batch{ID: req.ID, Items: items})
		}
		if resp.Results = eurekawire.AppendReplicationListResponse(nil, rs); err != nil {
			resp = message{Error: err.Error()}
			log.Warn("batch refused", "from", conn.RemoteAddr().String(), "error", err)
		}
		if c.write(resp) != nil {
			return
		}
	}
}
