package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	plugintest.ActionHandler(t, plugintest.ActionHandlerCase{
		New:    func(*testing.T) sdk.ActionHandler { return New() },
		Config: map[string]any{"path": path},
	})
}

func TestWritesOneLinePerItem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	// Through the gRPC path, as herald runs it.
	h := plugintest.ServeActionHandler(t, New())
	if d := plugintest.Configure(t, h, map[string]any{"path": path}, nil); len(d) != 0 {
		t.Fatal(d)
	}
	items := []sdk.Item{plugintest.Item(sdk.ActionRegister, "ORDERS", "i-1"), plugintest.Item(sdk.ActionRegister, "ORDERS", "i-2")}
	_, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveObserve, Action: sdk.ActionRegister, Items: items,
		Results: []sdk.ItemResult{{StatusCode: 200}, {StatusCode: 422}}})
	if err != nil {
		t.Fatal(err)
	}
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
	if len(lines) != 2 || lines[0].ID != "i-1" || lines[1].Result != 422 || lines[0].Action != "Register" ||
		lines[0].TraceParent != items[0].TraceParent || lines[0].Node != "plugintest" {
		t.Fatalf("audit lines: %+v", lines)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  map[string]any
		path string
	}{
		"missing path":    {map[string]any{}, "path"},
		"unwritable path": {map[string]any{"path": "/nonexistent-dir/audit.jsonl"}, "path"},
		"unknown key":     {map[string]any{"path": filepath.Join(t.TempDir(), "a"), "colour": "red"}, "colour"},
	} {
		d := plugintest.Configure(t, New(), c.cfg, nil)
		if len(d) != 1 || d[0].Path != c.path || d[0].Message == "" {
			t.Errorf("%s: diagnostics %+v, want one for %q", name, d, c.path)
		}
	}
}
