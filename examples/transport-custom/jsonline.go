package main

import (
	"bufio"
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
	mu   sync.Mutex
	cfg  Config
	host sdk.Host
	log  sdk.Logger
	sign *peerauth.Signer
	auth *peerauth.Authenticator
	ln   net.Listener
}

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
	return &JSONLine{host: sdk.NoHost(), cfg: Config{PortOffset: 2000, Timeout: 5 * time.Second}}
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

// Close implements io.Closer: it stops the receiving side.
func (j *JSONLine) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ln == nil {
		return nil
	}
	return j.ln.Close()
}

// Send implements sdk.Transport, with a connection per batch to stay short (herald's grpc
// transport keeps one stream per peer). A cancelled send is retried (Transient), a late one is
// Congestion: sdk.ClassOf(ctx.Err()).
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
	var resp message
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err == nil {
		defer conn.Close()
		defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })()
		if err = json.NewEncoder(conn).Encode(req); err == nil {
			err = json.NewDecoder(conn).Decode(&resp)
		}
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

func (j *JSONLine) accept(ln net.Listener) {
	for conn, err := ln.Accept(); err == nil; conn, err = ln.Accept() {
		go j.serve(conn)
	}
}

// serve answers a connection's batches (at most MaxMessageBytes in all): each, once its signature
// checks out, goes to the node, which runs its action handlers and answers per item.
func (j *JSONLine) serve(conn net.Conn) {
	defer conn.Close()
	j.mu.Lock()
	host, auth, log := j.host, j.auth, j.log
	j.mu.Unlock()
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(conn, sdk.MaxMessageBytes)))
	for req := (message{}); dec.Decode(&req) == nil; req = (message{}) {
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
		if json.NewEncoder(conn).Encode(resp) != nil {
			return
		}
	}
}
