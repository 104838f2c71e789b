package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// outOfProcess runs every built-in plugin the nodes use as its own process.
const outOfProcess = `
plugin "action_handler" "eureka" {
  out_of_process = true
}
plugin "transport" "http" {
  out_of_process = true
  config {
    read_timeout = "2s"
  }
}
plugin "flush_policy" "adaptive" {
  out_of_process = true
  config {
    max_delay = "2ms"
  }
}
`

func transportPlugin(t *testing.T, n *e2e.Node) int {
	return pluginProcess(t, n, "plugin serve transport http")
}

func pluginProcess(t *testing.T, n *e2e.Node, cmdline string) int {
	t.Helper()
	var pid int
	e2e.Eventually(t, 10*time.Second, func() error {
		pids := e2e.Children(n.Pid(), cmdline)
		if len(pids) != 1 {
			return fmt.Errorf("%s has %d %q processes", n.Name, len(pids), cmdline)
		}
		pid = pids[0]
		return nil
	})
	return pid
}

// A plugin process runs with GOMAXPROCS=1 unless its block sets max_procs (0: Go's default) or
// GOMAXPROCS in env.
func TestPluginProcessMaxProcs(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 1, `
plugin "transport" "http" {
  out_of_process = true
}
plugin "flush_policy" "adaptive" {
  out_of_process = true
  max_procs      = 0
}
plugin "action_handler" "eureka" {
  out_of_process = true
  env            = { GOMAXPROCS = "3" }
}
`)
	inherited, _ := os.LookupEnv("GOMAXPROCS")
	for _, c := range []struct{ cmdline, want string }{
		{"plugin serve transport http", "1"},
		{"plugin serve flush_policy adaptive", inherited},
		{"plugin serve action_handler eureka", "3"},
	} {
		pid := pluginProcess(t, nodes[0], c.cmdline)
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, kv := range strings.Split(string(environ), "\x00") {
			if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
				got = v
			}
		}
		if got != c.want {
			t.Errorf("%s: GOMAXPROCS=%q, want %q", c.cmdline, got, c.want)
		}
	}
}

// Replication with the transport, the flush policy and the action handler as plugin processes: a
// kill -9 of A's transport plugin and of B's action handler under load loses no acknowledged
// write, and a kill -9 of the host leaves no plugin process behind.
func TestOutOfProcessPlugins(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, outOfProcess)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if n := len(e2e.Children(a.Pid(), "plugin serve flush_policy adaptive")); n != 1 {
		t.Fatalf("flush policy plugin processes: %d", n)
	}
	register(t, a, "OOP", "first", 1000, nil)
	visibleOn(t, "OOP", "first", b, c)

	l := &load{acked: map[string]bool{}, targets: []*e2e.Node{a}}
	stop, done := make(chan struct{}), make(chan struct{})
	go l.run(stop, done)
	l.waitMore(t, 30)
	old := transportPlugin(t, a)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// B's handler applies what A sends: while it is down, B answers 503 and A sends again.
	oldHandler := pluginProcess(t, b, "plugin serve action_handler eureka")
	if err := syscall.Kill(oldHandler, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.waitMore(t, 30) // writes acknowledged while the plugins restart
	close(stop)
	<-done
	restarted := transportPlugin(t, a)
	if restarted == old {
		t.Fatal("the transport plugin was not restarted")
	}
	if pluginProcess(t, b, "plugin serve action_handler eureka") == oldHandler {
		t.Fatal("the action handler was not restarted")
	}
	if n := metric(t, a, `herald_plugin_restarts_total{kind="transport",name="http"}`); n < 1 {
		t.Errorf("A's transport plugin restarts metric = %v, want ≥ 1", n)
	}
	if n := metric(t, b, `herald_plugin_restarts_total{kind="action_handler",name="eureka"}`); n < 1 {
		t.Errorf("B's action handler restarts metric = %v, want ≥ 1", n)
	}
	if n := metric(t, a, `herald_plugin_call_duration_seconds_count{kind="transport",method="Send",name="http"}`); n < 10 {
		t.Errorf("A's transport Send calls counted: %v", n)
	}
	l.mu.Lock()
	acked := l.acked
	l.mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	e2e.Eventually(t, 30*time.Second, func() error { return sameRegistries(nodes, acked) })
	t.Logf("%d acknowledged writes reached both peers across a kill -9 of the transport plugin and of an action handler", len(acked))

	plugins := append(e2e.Children(a.Pid(), "plugin serve"), e2e.Children(a.Pid(), "plugin serve flush_policy")...)
	a.KillNodeOnly()
	e2e.Eventually(t, 10*time.Second, func() error {
		for _, pid := range plugins {
			if e2e.Alive(pid) {
				return fmt.Errorf("plugin process %d outlived its host", pid)
			}
		}
		return nil
	})
}

func TestPluginErrorsNameTheBlock(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, hcl, want string }{
		{"config refused", `plugin "transport" "http" {
  out_of_process = true
  config {
    read_timeout = 5
  }
}`, `plugin "transport" "http" (`},
		{"missing binary", `plugin "transport" "custom" {
  command = "/nonexistent/herald-transport-custom"
}
replication {
  transport = "custom"
}`, `command "/nonexistent/herald-transport-custom" not found`},
		{"bad checksum", `plugin "transport" "http" {
  command = "` + heraldBin + `"
  args    = ["plugin", "serve", "transport", "http"]
  sha256  = "0000000000000000000000000000000000000000000000000000000000000000"
}`, "checksum mismatch"},
		{"not a plugin", `plugin "transport" "custom" {
  command = "/bin/true"
}
replication {
  transport = "custom"
}`, "cannot start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := e2e.FreePorts(t, 1)[0]
			n := e2e.NewNode(t, heraldBin, "n", port, clusterHCL(port, nil, c.hcl))
			code, out := n.Run(15 * time.Second)
			if code == 0 {
				t.Fatalf("the node started despite a bad plugin block:\n%s", out)
			}
			if !strings.Contains(out, c.want) || !strings.Contains(out, ".hcl:") {
				t.Fatalf("error does not say %q with the block's file and line:\n%s", c.want, out)
			}
		})
	}
}
