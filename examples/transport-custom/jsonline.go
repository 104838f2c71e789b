package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// JSONLine is a transport that carries each batch as one line of JSON over TCP and reads the
// answer back as one line. Its receiving side listens on its own port and hands inbound batches
// to the node through the host service (sdk.Host.Receive).
//
// It is written against herald's sdk only, as a team outside herald would write it.
type JSONLine struct {
	mu         sync.Mutex
	host       sdk.Host
	portOffset int
	timeout    time.Duration

	// The receiving side.
	ln     net.Listener
	conns  map[net.Conn]struct{}
	stop   context.CancelFunc
	ctx    context.Context
	served sync.WaitGroup
}

// The wire format: one request line per batch, one response line per request.
//
//	→ {"id":"peer-3#17","items":[{"action":"Register","app":"ORDERS","id":"i-1",…}]}
//	← {"results":[{"code":200},{"code":409,"entity":…}]}   or   {"error":"…"}
type (
	request struct {
		ID    string     `json:"id"`
		Items []wireItem `json:"items"`
	}
	wireItem struct {
		Action             string `json:"action"`
		App                string `json:"app"`
		ID                 string `json:"id"`
		LastDirtyTimestamp int64  `json:"lastDirtyTimestamp,omitempty"`
		Status             string `json:"status,omitempty"`
		OverriddenStatus   string `json:"overriddenStatus,omitempty"`
		Instance           []byte `json:"instance,omitempty"` // opaque bytes (base64 on the wire)
		Payload            []byte `json:"payload,omitempty"`
		TraceParent        string `json:"traceparent,omitempty"`
		StatusVersion      int64  `json:"statusVersion,omitempty"`
	}
	response struct {
		Results []wireResult `json:"results,omitempty"`
		Error   string       `json:"error,omitempty"`
	}
	wireResult struct {
		Code   int    `json:"code"`
		Entity []byte `json:"entity,omitempty"`
	}
)

// maxLine bounds one line in either direction, so a misbehaving peer cannot exhaust memory.
const maxLine = sdk.MaxMessageBytes

// Defaults of the config keys.
const (
	defaultPortOffset = 2000
	defaultTimeout    = 5 * time.Second
)

// New returns the transport, sending only, until Configure.
func New() *JSONLine {
	return &JSONLine{portOffset: defaultPortOffset, timeout: defaultTimeout, host: sdk.NoHost()}
}

// Config is the transport's config {} block.
type Config struct {
	Listen     string        `config:"listen" description:"address of the receiving side (\"off\": none; default: the node's host, its port + port_offset)"`
	PortOffset int           `config:"port_offset" default:"2000" description:"a peer's jsonline port is its Eureka port plus this"`
	Timeout    time.Duration `config:"timeout" default:"5s" description:"longest a send may take"`
}

// Validate implements sdk.Validator.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if c.PortOffset < 1 || c.PortOffset > 60000 {
		diags = append(diags, sdk.Diagnostic{Path: "port_offset", Message: fmt.Sprintf("want a whole number between 1 and 60000, got %d", c.PortOffset)})
	}
	if c.Timeout <= 0 {
		diags = append(diags, sdk.Diagnostic{Path: "timeout", Message: fmt.Sprintf(`want a duration such as "5s", got %s`, c.Timeout)})
	}
	return diags
}

// Info implements sdk.Describer.
func (j *JSONLine) Info() sdk.Info {
	return sdk.Info{Name: "jsonline", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable: it decodes the config block and starts the receiving side.
func (j *JSONLine) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	offset, timeout, listen := c.PortOffset, c.Timeout, c.Listen
	if listen == "" {
		addr, err := offsetAddress(req.NodeURL, offset)
		if err != nil {
			return []sdk.Diagnostic{{Path: "listen", Message: fmt.Sprintf(`cannot take the default from the node's URL: %v; set listen = "host:port" or "off"`, err)}}
		}
		listen = addr
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.portOffset, j.timeout = offset, timeout
	if req.Host != nil {
		j.host = req.Host
	}
	if listen == "off" || j.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return []sdk.Diagnostic{{Path: "listen", Message: fmt.Sprintf("cannot listen: %v", err)}}
	}
	j.ln, j.conns = ln, map[net.Conn]struct{}{}
	j.ctx, j.stop = context.WithCancel(context.Background())
	j.served.Add(1)
	go j.accept(ln)
	return nil
}

// Addr is the receiving side's address ("" when it does not listen).
func (j *JSONLine) Addr() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ln == nil {
		return ""
	}
	return j.ln.Addr().String()
}

// Close implements io.Closer: it stops the receiving side and its connections.
func (j *JSONLine) Close() error {
	j.mu.Lock()
	ln := j.ln
	j.ln = nil
	if ln != nil {
		j.stop()
		for c := range j.conns {
			c.Close()
		}
	}
	j.mu.Unlock()
	if ln == nil {
		return nil
	}
	err := ln.Close()
	j.served.Wait()
	return err
}

// offsetAddress is host:port+offset of a Eureka URL such as http://10.0.0.2:8761/eureka/.
func offsetAddress(eurekaURL string, offset int) (string, error) {
	u, err := url.Parse(eurekaURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("no host in %q", eurekaURL)
	}
	port := 80
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	} else if u.Scheme == "https" {
		port = 443
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(port+offset)), nil
}

// Send implements sdk.Transport. It opens a connection per send to keep the example short; a
// production transport would keep connections open.
func (j *JSONLine) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if len(b.Items) == 0 {
		return nil, nil
	}
	j.mu.Lock()
	offset, timeout := j.portOffset, j.timeout
	j.mu.Unlock()
	addr := peer.Address
	if addr == "" {
		a, err := offsetAddress(peer.URL, offset)
		if err != nil {
			return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s: %w", peer.Name, err))
		}
		addr = a
	}
	line, err := json.Marshal(request{ID: b.ID, Items: toWire(b.Items)})
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, classify(ctx, err)
	}
	defer conn.Close()
	// Unblock the write and the read below as soon as ctx is done.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return nil, classify(ctx, err)
	}
	respLine, err := readLine(bufio.NewReader(conn))
	if err != nil {
		return nil, classify(ctx, err)
	}
	var resp response
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("unreadable answer from %s: %w", addr, err))
	}
	if resp.Error != "" {
		// The peer's node could not take the batch now (an action handler restarting, say).
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("%s refused the batch for now: %s", addr, resp.Error))
	}
	if len(resp.Results) != len(b.Items) {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("%s answered %d results for %d items", addr, len(resp.Results), len(b.Items)))
	}
	out := make([]sdk.ItemResult, len(resp.Results))
	for i, r := range resp.Results {
		out[i] = sdk.ItemResult{StatusCode: r.Code, Entity: r.Entity}
	}
	return out, nil
}

// classify says what a failed send means: a cancelled send is retried (Transient), one past its
// deadline or a peer too slow to answer is Congestion, any other network failure Transient.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // sdk.ClassOf: Canceled is Transient, DeadlineExceeded Congestion
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sdk.Fail(sdk.Congestion, err)
	}
	return sdk.Fail(sdk.Transient, err)
}

// readLine reads one line of at most maxLine bytes, without its newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case len(line) > maxLine:
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func (j *JSONLine) accept(ln net.Listener) {
	defer j.served.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		j.mu.Lock()
		if j.ln != ln { // closed meanwhile
			j.mu.Unlock()
			conn.Close()
			return
		}
		j.conns[conn] = struct{}{}
		host, ctx := j.host, j.ctx
		j.served.Add(1)
		j.mu.Unlock()
		go j.serve(ctx, conn, host)
	}
}

// serve answers the batches of one connection: each goes to the node (Host.Receive), which runs
// its action handlers and answers per item.
func (j *JSONLine) serve(ctx context.Context, conn net.Conn, host sdk.Host) {
	defer j.served.Done()
	defer func() {
		j.mu.Lock()
		delete(j.conns, conn)
		j.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReader(conn)
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		var resp response
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = "unreadable batch: " + err.Error()
		} else if rs, err := host.Receive(ctx, sdk.Batch{ID: req.ID, Items: fromWire(req.Items)}); err != nil {
			resp.Error = err.Error() // the sender retries
		} else {
			resp.Results = make([]wireResult, len(rs))
			for i, r := range rs {
				resp.Results[i] = wireResult{Code: r.StatusCode, Entity: r.Entity}
			}
		}
		out, _ := json.Marshal(resp)
		if _, err := conn.Write(append(out, '\n')); err != nil {
			return
		}
	}
}

func toWire(items []sdk.Item) []wireItem {
	out := make([]wireItem, len(items))
	for i, it := range items {
		out[i] = wireItem{Action: string(it.Action), App: it.App, ID: it.ID, LastDirtyTimestamp: it.LastDirtyTimestamp,
			Status: it.Status, OverriddenStatus: it.OverriddenStatus, Instance: it.Instance, Payload: it.Payload, TraceParent: it.TraceParent,
			StatusVersion: it.StatusVersion}
	}
	return out
}

func fromWire(items []wireItem) []sdk.Item {
	out := make([]sdk.Item, len(items))
	for i, w := range items {
		out[i] = sdk.Item{Action: sdk.Action(w.Action), App: w.App, ID: w.ID, LastDirtyTimestamp: w.LastDirtyTimestamp,
			Status: w.Status, OverriddenStatus: w.OverriddenStatus, Instance: w.Instance, Payload: w.Payload, TraceParent: w.TraceParent,
			StatusVersion: w.StatusVersion}
	}
	return out
}
