package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.ActionHandler(t, plugintest.ActionHandlerCase{
		New:    func(*testing.T) sdk.ActionHandler { return New() },
		Config: map[string]any{"path": filepath.Join(t.TempDir(), "audit.jsonl")},
	})
}

func TestObservesTheFiveActions(t *testing.T) {
	modes := map[sdk.Action]sdk.ReceiveMode{}
	for _, sp := range New().Actions() {
		if sp.Accept {
			t.Errorf("%s: an audit trail of replicated actions needs no Accept", sp.Action)
		}
		modes[sp.Action] = sp.Receive
	}
	for _, a := range plugintest.BuiltinActions {
		if modes[a] != sdk.ReceiveObserve {
			t.Errorf("%s is not observed", a)
		}
	}
}

func readLines(t *testing.T, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

func TestWritesOneLinePerItem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	impl := New()
	impl.now = func() time.Time { return time.Date(2026, 11, 24, 6, 50, 1, 0, time.UTC) }
	h := plugintest.ServeActionHandler(t, impl) // through gRPC, as herald runs it
	plugintest.MustConfigure(t, h, map[string]any{"path": path}, nil)

	ctx := context.Background()
	regs := []sdk.Item{plugintest.Item(sdk.ActionRegister, "ORDERS", "i-1"), plugintest.Item(sdk.ActionRegister, "ORDERS", "i-2")}
	if _, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: sdk.ReceiveObserve, Action: sdk.ActionRegister, Items: regs,
		Results: []sdk.ItemResult{{StatusCode: 200}, {StatusCode: 422}}}); err != nil {
		t.Fatal(err)
	}
	cancel := []sdk.Item{plugintest.Item(sdk.ActionCancel, "ORDERS", "i-1")}
	if _, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: sdk.ReceiveObserve, Action: sdk.ActionCancel, Items: cancel,
		Results: []sdk.ItemResult{{StatusCode: 404}}}); err != nil {
		t.Fatal(err)
	}

	lines := readLines(t, path)
	want := []Line{
		{Time: impl.now(), Node: plugintest.NodeName, Action: "Register", App: "ORDERS", ID: "i-1", Status: "UP", Result: 200, TraceParent: regs[0].TraceParent},
		{Time: impl.now(), Node: plugintest.NodeName, Action: "Register", App: "ORDERS", ID: "i-2", Status: "UP", Result: 422, TraceParent: regs[1].TraceParent},
		{Time: impl.now(), Node: plugintest.NodeName, Action: "Cancel", App: "ORDERS", ID: "i-1", Result: 404, TraceParent: cancel[0].TraceParent},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i := range want {
		if !lines[i].Time.Equal(want[i].Time) || lines[i].Node != want[i].Node || lines[i].Action != want[i].Action ||
			lines[i].App != want[i].App || lines[i].ID != want[i].ID || lines[i].Status != want[i].Status ||
			lines[i].Result != want[i].Result || lines[i].TraceParent != want[i].TraceParent {
			t.Errorf("line %d is %+v, want %+v", i, lines[i], want[i])
		}
	}
}

// A record that cannot be written fails the batch, so the sender sends it again.
func TestWriteFailureFailsTheBatch(t *testing.T) {
	a := New()
	plugintest.MustConfigure(t, a, map[string]any{"path": filepath.Join(t.TempDir(), "audit.jsonl")}, nil)
	a.mu.Lock()
	a.f.Close() // the disk went away
	a.mu.Unlock()
	_, err := a.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveObserve, Action: sdk.ActionHeartbeat,
		Items: []sdk.Item{plugintest.Item(sdk.ActionHeartbeat, "ORDERS", "i-1")}, Results: []sdk.ItemResult{{StatusCode: 200}}})
	if err == nil {
		t.Fatal("a failed write must fail the batch")
	}
}

func TestConfigDiagnostics(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		cfg  map[string]any
		path string
	}{
		"missing path":      {map[string]any{}, "path"},
		"empty path":        {map[string]any{"path": ""}, "path"},
		"path not a string": {map[string]any{"path": 3.0}, "path"},
		"unwritable path":   {map[string]any{"path": "/nonexistent-dir/audit.jsonl"}, "path"},
		"path is a folder":  {map[string]any{"path": dir}, "path"},
		"unknown key":       {map[string]any{"path": filepath.Join(dir, "a"), "colour": "red"}, "colour"},
	} {
		d := plugintest.Configure(t, New(), c.cfg, nil)
		if len(d) != 1 || d[0].Path != c.path || d[0].Message == "" || d[0].Warning {
			t.Errorf("%s: diagnostics %+v, want one error for %q", name, d, c.path)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("a refused configuration created the audit file")
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
