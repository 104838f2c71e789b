package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// JSONLine is a transport that carries each batch as one line of JSON over TCP and reads the
// answers back as one line: {"id":…,"items":[…]} → {"results":[…]} or {"error":"…"}. Its receiving
// side listens on its own port and hands inbound batches to the node through the host service.
//
// It is written against herald's sdk only, as a team outside herald would write it.
type JSONLine struct {
	mu         sync.Mutex
	host       sdk.Host
	ln         net.Listener
	portOffset int
	timeout    time.Duration
	wg         sync.WaitGroup
}

type request struct {
	ID    string     `json:"id"`
	Items []sdk.Item `json:"items"`
}

type response struct {
	Results []sdk.ItemResult `json:"results,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// New returns the transport with a port offset of 2000 and a 5 s timeout.
func New() *JSONLine {
	return &JSONLine{portOffset: 2000, timeout: 5 * time.Second, host: sdk.NoHost()}
}

// Info implements sdk.Describer.
func (j *JSONLine) Info() sdk.Info {
	return sdk.Info{Name: "jsonline", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "listen", Type: "string", Description: `address of the receiving side ("off": none; default: the node's port + port_offset)`},
		{Path: "port_offset", Type: "number", Default: 2000, Description: "a peer's jsonline port is its Eureka port plus this"},
		{Path: "timeout", Type: "duration", Default: "5s", Description: "longest a send may take"},
	}}
}

// Configure implements sdk.Configurable and starts the receiving side.
func (j *JSONLine) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	offset, timeout, listen := 2000, 5*time.Second, ""
	for k, v := range req.Config {
		switch k {
		case "listen":
			listen, _ = v.(string)
			if listen == "" {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: `want host:port or "off"`})
			}
		case "port_offset":
			f, ok := v.(float64)
			if !ok || f < 1 || f > 60000 || f != float64(int(f)) {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a whole number between 1 and 60000, got %v", v)})
				continue
			}
			offset = int(f)
		case "timeout":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a duration such as \"5s\", got %v", v)})
				continue
			}
			timeout = d
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: listen, port_offset, timeout)"})
		}
	}
	if len(diags) > 0 {
		return diags
	}
	if listen == "" && req.NodeURL != "" {
		addr, err := offsetAddress(req.NodeURL, offset)
		if err != nil {
			return []sdk.Diagnostic{{Path: "listen", Message: err.Error()}}
		}
		listen = addr
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.portOffset, j.timeout = offset, timeout
	if req.Host != nil {
		j.host = req.Host
	}
	if listen == "off" || listen == "" || j.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return []sdk.Diagnostic{{Path: "listen", Message: fmt.Sprintf("cannot listen: %v", err)}}
	}
	j.ln = ln
	j.wg.Add(1)
	go j.serve(ln)
	return nil
}

// Addr is the receiving side's address ("" when it has none).
func (j *JSONLine) Addr() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ln == nil {
		return ""
	}
	return j.ln.Addr().String()
}

// Close stops the receiving side.
func (j *JSONLine) Close() error {
	j.mu.Lock()
	ln := j.ln
	j.ln = nil
	j.mu.Unlock()
	if ln == nil {
		return nil
	}
	err := ln.Close()
	j.wg.Wait()
	return err
}

func offsetAddress(eurekaURL string, offset int) (string, error) {
	u, err := url.Parse(eurekaURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("cannot find a host in %q", eurekaURL)
	}
	port := 80
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	} else if u.Scheme == "https" {
		port = 443
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(port+offset)), nil
}

// Send implements sdk.Transport: one connection per send keeps the example short; a production
// transport would keep connections open.
func (j *JSONLine) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	j.mu.Lock()
	offset, timeout := j.portOffset, j.timeout
	j.mu.Unlock()
	addr := peer.Address
	if addr == "" {
		a, err := offsetAddress(peer.URL, offset)
		if err != nil {
			return nil, sdk.Fail(sdk.Permanent, err)
		}
		addr = a
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // cancelled: transient; timed out: congestion
		}
		return nil, sdk.Fail(sdk.Transient, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	line, err := json.Marshal(request{ID: b.ID, Items: b.Items})
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, err)
	}
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return nil, classify(ctx, err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	respLine, err := r.ReadBytes('\n')
	if err != nil {
		return nil, classify(ctx, err)
	}
	var resp response
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("unreadable answer from %s: %w", addr, err))
	}
	if resp.Error != "" {
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("%s refused the batch for now: %s", addr, resp.Error))
	}
	if len(resp.Results) != len(b.Items) {
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("%s answered %d results for %d items", addr, len(resp.Results), len(b.Items)))
	}
	return resp.Results, nil
}

func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sdk.Fail(sdk.Congestion, err)
	}
	return sdk.Fail(sdk.Transient, err)
}

// serve is the receiving side: one batch per line, answered with one line.
func (j *JSONLine) serve(ln net.Listener) {
	defer j.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			defer conn.Close()
			r := bufio.NewReaderSize(conn, 64<<10)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					return
				}
				var req request
				var resp response
				if err := json.Unmarshal(line, &req); err != nil {
					resp.Error = "unreadable batch: " + err.Error()
				} else {
					j.mu.Lock()
					host := j.host
					j.mu.Unlock()
					rs, err := host.Receive(context.Background(), sdk.Batch{ID: req.ID, Items: req.Items})
					if err != nil {
						resp.Error = err.Error()
					} else {
						resp.Results = rs
					}
				}
				out, _ := json.Marshal(resp)
				if _, err := conn.Write(append(out, '\n')); err != nil {
					return
				}
			}
		}()
	}
}
