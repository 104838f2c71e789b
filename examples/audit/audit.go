package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Audit observes every replicated action a node applies and appends one JSON line per item to a
// file: when, what, on which instance, the node's answer, and the trace it belongs to.
type Audit struct {
	sdk.UnimplementedActionHandler
	mu   sync.Mutex
	node string
	f    *os.File
	now  func() time.Time
}

// Line is one audit record.
type Line struct {
	Time        time.Time `json:"time"`
	Node        string    `json:"node"`
	Action      string    `json:"action"`
	App         string    `json:"app"`
	ID          string    `json:"id"`
	Status      string    `json:"status,omitempty"`
	Result      int       `json:"result"`
	TraceParent string    `json:"traceparent,omitempty"`
}

// New returns the handler; Configure opens its file.
func New() *Audit { return &Audit{now: time.Now} }

// Config is the handler's config {} block.
type Config struct {
	Path string `config:"path,required" description:"file the audit trail is appended to (JSON lines)"`
}

// Validate implements sdk.Validator: a file path whose folder exists (checked by herald config
// validate too, before anything is opened).
func (c Config) Validate() []sdk.Diagnostic {
	if c.Path == "" {
		return []sdk.Diagnostic{{Path: "path", Message: "want a file path, got \"\""}}
	}
	if st, err := os.Stat(c.Path); err == nil && st.IsDir() {
		return []sdk.Diagnostic{{Path: "path", Message: fmt.Sprintf("%s is a folder: want a file", c.Path)}}
	}
	if _, err := os.Stat(filepath.Dir(c.Path)); err != nil {
		return []sdk.Diagnostic{{Path: "path", Message: fmt.Sprintf("cannot append to %s: %v", c.Path, err)}}
	}
	return nil
}

// Info implements sdk.Describer.
func (a *Audit) Info() sdk.Info {
	return sdk.Info{Name: "audit", Kind: sdk.KindActionHandler, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Actions implements sdk.ActionHandler: observe all five actions.
func (a *Audit) Actions() []sdk.ActionSpec {
	var out []sdk.ActionSpec
	for _, act := range []sdk.Action{sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionCancel, sdk.ActionStatusUpdate, sdk.ActionDeleteStatusOverride} {
		out = append(out, sdk.ActionSpec{Action: act, Receive: sdk.ReceiveObserve})
	}
	return out
}

// Configure implements sdk.Configurable: it opens the file for appending.
func (a *Audit) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	path := c.Path
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return []sdk.Diagnostic{{Path: "path", Message: fmt.Sprintf("cannot open for appending: %v", err)}}
	}
	a.mu.Lock()
	if a.f != nil {
		a.f.Close()
	}
	a.f, a.node = f, req.NodeName
	a.mu.Unlock()
	return nil
}

// Receive implements sdk.ActionHandler: one line per observed item. A write error fails the
// batch, so the sender sends it again and no record is lost.
func (a *Audit) Receive(_ context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	if req.Mode != sdk.ReceiveObserve {
		return nil, fmt.Errorf("audit only observes, asked to %s", req.Mode)
	}
	var buf []byte
	now := a.now().UTC()
	for i, it := range req.Items {
		l := Line{Time: now, Node: a.node, Action: string(it.Action), App: it.App, ID: it.ID, Status: it.Status, TraceParent: it.TraceParent}
		if i < len(req.Results) {
			l.Result = req.Results[i].StatusCode
		}
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		buf = append(append(buf, b...), '\n')
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil, fmt.Errorf("audit: not configured (no path)")
	}
	if _, err := a.f.Write(buf); err != nil {
		return nil, fmt.Errorf("audit: writing %s: %w", a.f.Name(), err)
	}
	return nil, nil
}

// Close implements io.Closer: it closes the audit file (herald closes in-process plugins; a plugin
// process just exits).
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
