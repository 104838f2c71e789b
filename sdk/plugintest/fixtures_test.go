package plugintest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// The plugins the kit's own tests run the suites on: small, written against sdk alone, and
// conforming, so that the broken variants in broken_test.go differ from them in one thing each.

// wire is a transport that POSTs each batch as JSON to http://ADDRESS/batch and reads the
// results back as JSON; its receiving side (config key "listen") hands every batch to the node
// with Host.Receive and answers 503 when the node cannot take it.
type wire struct {
	mu      sync.Mutex
	host    sdk.Host
	timeout time.Duration
	srv     *http.Server
	ln      net.Listener
	client  http.Client
}

func newWire() *wire { return &wire{host: sdk.NoHost(), timeout: 10 * time.Second} }

// wireConfig is the transport's config {} block.
type wireConfig struct {
	Listen  string        `config:"listen" description:"address of the receiving side (none when unset)"`
	Timeout time.Duration `config:"timeout" default:"10s" description:"longest a send may take"`
}

func (c wireConfig) Validate() []sdk.Diagnostic {
	if c.Timeout <= 0 {
		return []sdk.Diagnostic{{Path: "timeout", Message: fmt.Sprintf("want a positive duration, got %s", c.Timeout)}}
	}
	return nil
}

func (w *wire) Info() sdk.Info {
	return sdk.Info{Name: "wire", Kind: sdk.KindTransport, Config: wireConfig{}}
}

func (w *wire) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c wireConfig
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	listen, timeout := c.Listen, c.Timeout
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timeout = timeout
	if req.Host != nil {
		w.host = req.Host
	}
	if listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return []sdk.Diagnostic{{Path: "listen", Message: err.Error()}}
	}
	srv := &http.Server{Handler: http.HandlerFunc(w.receive), ReadHeaderTimeout: 5 * time.Second}
	w.ln, w.srv = ln, srv
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Addr is the receiving side's address.
func (w *wire) Addr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ln.Addr().String()
}

func (w *wire) Close() error {
	w.mu.Lock()
	srv := w.srv
	w.srv = nil
	w.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

func (w *wire) receive(rw http.ResponseWriter, r *http.Request) {
	var b sdk.Batch
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	host := w.host
	w.mu.Unlock()
	rs, err := host.Receive(r.Context(), b)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_ = json.NewEncoder(rw).Encode(rs)
}

func (w *wire) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if len(b.Items) == 0 {
		return nil, nil
	}
	w.mu.Lock()
	timeout := w.timeout
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(b)
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+peer.Address+"/batch", bytes.NewReader(body))
	if err != nil {
		return nil, sdk.Fail(sdk.Permanent, err)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, sdk.Fail(sdk.Transient, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, sdk.Fail(sdk.Congestion, fmt.Errorf("peer %s: %s", peer.Name, strings.TrimSpace(string(msg))))
	case resp.StatusCode != http.StatusOK:
		return nil, sdk.Fail(sdk.Permanent, fmt.Errorf("peer %s answered %s", peer.Name, resp.Status))
	}
	var rs []sdk.ItemResult
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, sdk.Fail(sdk.Transient, err)
	}
	return rs, nil
}

// wirePeer starts a wire receiving side whose node is host.
func wirePeer(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
	rx := newWire()
	plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
	return sdk.Peer{Name: "peer", Address: rx.Addr()}
}

func wirePeerAt(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} }

// window cuts a batch at a count or when the oldest task has waited 2 ms.
type window struct{}

func (window) Info() sdk.Info { return sdk.Info{Name: "window", Kind: sdk.KindFlushPolicy} }

func (window) Decide(ctx context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	if err := ctx.Err(); err != nil {
		return sdk.FlushDecision{}, err
	}
	n := max(1, min(s.MaxBatchSize, 100))
	return sdk.FlushDecision{MaxBatch: n, MinCount: n, MaxAge: 2 * time.Millisecond, CutNow: s.IdleWorkers > 0 && s.Count >= n}, nil
}

// owners refuses registrations without an "owner" metadata key and validates the ones it
// receives the same way; it observes cancels.
type owners struct {
	sdk.UnimplementedActionHandler
	mu   sync.Mutex
	seen int
}

func (*owners) Info() sdk.Info { return sdk.Info{Name: "owners", Kind: sdk.KindActionHandler} }

func (*owners) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true, Receive: sdk.ReceiveValidate},
		{Action: sdk.ActionCancel, Receive: sdk.ReceiveObserve}}
}

func hasOwner(instance []byte) bool {
	var inst struct {
		Metadata map[string]string `json:"metadata"`
	}
	return json.Unmarshal(instance, &inst) == nil && inst.Metadata["owner"] != ""
}

func (*owners) Accept(_ context.Context, it sdk.Item) (sdk.Item, error) {
	if it.Action == sdk.ActionRegister && !hasOwner(it.Instance) {
		return it, sdk.Refuse(422, "metadata key %q is required", "owner")
	}
	return it, nil
}

func (o *owners) Receive(_ context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	switch req.Mode {
	case sdk.ReceiveValidate:
		rs := make([]sdk.ItemResult, len(req.Items))
		for i, it := range req.Items {
			if !hasOwner(it.Instance) {
				rs[i].StatusCode = 422
			}
		}
		return rs, nil
	case sdk.ReceiveObserve:
		o.mu.Lock()
		o.seen += len(req.Items)
		o.mu.Unlock()
		return nil, nil
	}
	return nil, errors.New("owners: applies nothing")
}
