package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// Info implements sdk.Describer.
func (a *Audit) Info() sdk.Info {
	return sdk.Info{Name: "audit", Kind: sdk.KindActionHandler, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "path", Type: "string", Required: true, Description: "file the audit trail is appended to (JSON lines)"},
	}}
}

// Actions implements sdk.ActionHandler: observe all five actions.
func (a *Audit) Actions() []sdk.ActionSpec {
	var out []sdk.ActionSpec
	for _, act := range []sdk.Action{sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionCancel, sdk.ActionStatusUpdate, sdk.ActionDeleteStatusOverride} {
		out = append(out, sdk.ActionSpec{Action: act, Receive: sdk.ReceiveObserve})
	}
	return out
}

// Configure implements sdk.Configurable: `path` is required and must be writable.
func (a *Audit) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	path := ""
	for k, v := range req.Config {
		switch k {
		case "path":
			s, ok := v.(string)
			if !ok || s == "" {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a file path, got %v", v)})
			}
			path = s
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: path)"})
		}
	}
	if _, set := req.Config["path"]; !set {
		diags = append(diags, sdk.Diagnostic{Path: "path", Message: "required: the file to append the audit trail to"})
	}
	if len(diags) > 0 {
		return diags
	}
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
	return diags
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
