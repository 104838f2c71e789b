package sdk_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/heraldhq/herald/sdk"
)

// syncBuffer is the host's log output: go-plugin writes to it from its stderr reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoggerReachesHostLog runs a real plugin process (testdata/logplugin) under go-plugin, as
// herald's plugin host does, and finds the lines it logs through ConfigureRequest.Logger and the
// log package in the host's hclog output: at their levels, under the plugin's name, with the
// node's name, and filtered at the node's level by the plugin itself.
func TestLoggerReachesHostLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir) // go-plugin's unix sockets
	bin := filepath.Join(dir, "logplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/logplugin").CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/logplugin: %v\n%s", err, out)
	}

	var out syncBuffer
	// The host logs everything it gets (trace): what the plugin leaves out, it filtered itself.
	host := hclog.New(&hclog.LoggerOptions{Name: "herald", Level: hclog.Trace, Output: &out})
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: sdk.PluginMap()},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           host.Named("plugin").Named("transport.logdemo"),
		StartTimeout:     time.Minute,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(sdk.KindTransport)
	if err != nil {
		t.Fatal(err)
	}
	if diags := raw.(sdk.Configurable).Configure(context.Background(), sdk.ConfigureRequest{
		NodeName: "node-a", NodeURL: "http://127.0.0.1:8761/eureka/", LogLevel: "info"}); len(diags) != 0 {
		t.Fatalf("diagnostics: %+v", diags)
	}

	// Each wanted line: its level, the plugin's logger name and the message, then its fields (in
	// any order: go-plugin reads them from a JSON object).
	want := [][]string{
		{"[INFO]  herald.plugin.transport.logdemo.logplugin: configured: ", "@module=logdemo", "node=node-a", "answer=42"},
		{"[WARN]  herald.plugin.transport.logdemo.logplugin: peer list is short: ", "@module=logdemo", "node=node-a", "peers=1"},
		{"[INFO]  herald.plugin.transport.logdemo.logplugin: plain log line from logdemo: ", "@module=logdemo", "node=node-a"},
	}
	has := func(log string, w []string) bool {
	lines:
		for _, line := range strings.Split(log, "\n") {
			for _, part := range w {
				if !strings.Contains(line, part) {
					continue lines
				}
			}
			return true
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range want {
		for !has(out.String(), w) {
			if time.Now().After(deadline) {
				t.Fatalf("the host's log lacks a line with %q; it reads:\n%s", w, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The debug line was logged before the others, on the same stream: had the plugin written
	// it, it would be here by now.
	if log := out.String(); strings.Contains(log, "configure details") {
		t.Errorf("a debug line reached the host at the node's level info:\n%s", log)
	}
}

// TestPluginLogger: the logger an in-process plugin gets is the node's, named KIND.NAME, with the
// node's name; without a node logger it discards.
func TestPluginLogger(t *testing.T) {
	var out syncBuffer
	node := hclog.New(&hclog.LoggerOptions{Name: "herald", Level: hclog.Info, Output: &out})
	l := sdk.PluginLogger(node.Named("plugin"), sdk.KindTransport, "grpc", "node-a")
	l.Debug("hidden")
	l.Info("listening", "addr", "127.0.0.1:9761")
	got := out.String()
	if want := "[INFO]  herald.plugin.transport.grpc: listening: node=node-a addr=127.0.0.1:9761"; !strings.Contains(got, want) {
		t.Errorf("log %q lacks %q", got, want)
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("a debug line passed the node's level info: %q", got)
	}
	sdk.PluginLogger(nil, sdk.KindTransport, "grpc", "node-a").Info("nowhere") // must not panic
}
