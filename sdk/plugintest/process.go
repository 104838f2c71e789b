package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/heraldhq/herald/sdk"
)

// The third way each suite runs a plugin: in a process of its own, as herald runs a plugin
// binary. The test binary is started again with -test.run naming the test that called the suite
// and envServe set to that test's name; there the suite, instead of running its checks, serves
// the plugin its case's New returns with sdk.Serve. herald's side is go-plugin's client with the
// handshake, mutual TLS and the plugin set herald uses. If the process dies (a panic), the test
// fails with the panic and its stack, read from the process's stderr.

// envServe names the test whose plugin a process started by a suite serves.
const envServe = "PLUGINTEST_SERVE"

// serveAsChild serves, if this process is the plugin process a suite started for the test t, the
// plugin newImpl returns, and ends the test when herald's side closes the connection. It returns
// false in any other process.
func serveAsChild(t *testing.T, kind string, newImpl func() any) bool {
	if os.Getenv(envServe) != t.Name() {
		return false
	}
	var opt sdk.ServeOption
	switch impl := newImpl(); kind {
	case sdk.KindTransport:
		p, _ := impl.(sdk.Transport)
		opt = sdk.WithTransport(p)
	case sdk.KindFlushPolicy:
		p, _ := impl.(sdk.FlushPolicy)
		opt = sdk.WithFlushPolicy(p)
	case sdk.KindActionHandler:
		p, _ := impl.(sdk.ActionHandler)
		opt = sdk.WithActionHandler(p)
	}
	sdk.Serve(opt)
	t.SkipNow()
	return true
}

// runPattern is the -test.run pattern that selects exactly the (sub)test named name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// serveProcess starts the plugin of the test top (the test that called the suite) in a process of
// its own and returns herald's side of it. The process is stopped when tb ends.
func serveProcess(tb testing.TB, top, kind string) any {
	tb.Helper()
	stderr := captureOutput(tb, "the stderr of the "+kind+" plugin process")
	out := captureOutput(tb, "go-plugin's log of the "+kind+" plugin process")
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(top), "-test.count=1")
	cmd.Env = append(os.Environ(), envServe+"="+top)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: sdk.PluginMap()},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           out.logger(),
		Stderr:           stderr,
		// A test binary built with -race starts slowly on a busy machine.
		StartTimeout:    time.Minute,
		GRPCDialOptions: dialOptions(),
	})
	tb.Cleanup(client.Kill)
	tb.Cleanup(func() { reportExit(tb, client, stderr) })
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("plugintest: starting the plugin process (%s -test.run=%s): %v%s", os.Args[0], runPattern(top), err,
			stderrNote(stderr))
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		tb.Fatalf("plugintest: dispensing the %s from its process: %v%s", kind, err, stderrNote(stderr))
	}
	return raw
}

// reportExit fails tb if the plugin process exited before the test ended, with the panic (or the
// end of the stderr) that explains it.
func reportExit(tb testing.TB, client *plugin.Client, stderr *output) {
	if tb.Failed() {
		// A call failed: give the process a moment to be seen dead, if that is why.
		for deadline := time.Now().Add(2 * time.Second); !client.Exited() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !client.Exited() {
		return
	}
	s := stderr.String()
	for _, start := range []string{"panic: ", "fatal error: "} {
		if i := strings.Index(s, start); i >= 0 {
			if s = s[i:]; len(s) > 16<<10 {
				s = s[:16<<10] + "\n[…]"
			}
			stderr.markShown()
			tb.Errorf("the plugin process died during the test: %s. herald restarts a plugin process that dies and retries "+
				"what it was doing, so the same input kills it again: return an error instead. Its output from the panic on:\n%s",
				strings.TrimSuffix(firstLine(s), "."), s)
			return
		}
	}
	tb.Errorf("the plugin process exited during the test: a plugin serves until herald closes the connection (sdk.Serve "+
		"returns then); do not call os.Exit or log.Fatal.%s", stderrNote(stderr))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// stderrNote is the end of a plugin process's stderr, to append to a message ("" if empty).
func stderrNote(stderr *output) string {
	if s := stderr.tail(8 << 10); strings.TrimSpace(s) != "" {
		return fmt.Sprintf(" The end of its stderr:\n%s", s)
	}
	return ""
}
