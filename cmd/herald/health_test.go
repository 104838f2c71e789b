package main

// End-to-end tests of the health endpoints and of the graceful stop, against real herald
// processes.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/node"
)

// health fetches a health endpoint and decodes its JSON body.
func health(n *e2e.Node, path string) (int, node.HealthReport, error) {
	var rep node.HealthReport
	code, body, err := client.Do(context.Background(), "GET", n.Root()+path, "", nil, nil)
	if err != nil {
		return 0, rep, err
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return code, rep, fmt.Errorf("%s answered %d with a body that is not JSON: %q", path, code, body)
	}
	return code, rep, nil
}

func failing(rep node.HealthReport) []string {
	var out []string
	for _, c := range rep.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

// noAntiEntropy keeps peers from repairing each other, so what reaches a peer was replicated.
const noAntiEntropy = "HERALD_CLUSTER__ANTI_ENTROPY__ENABLED=false"

// A node is live as soon as it serves HTTP, and ready only once it serves reads: one whose
// startup sync found no peer with data holds reads back (wait_when_empty) and says so; it becomes
// ready when a peer has data. Its plugin processes are part of readiness.
func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 2)
	urls := []string{urlOf(ports[0]), urlOf(ports[1])}
	gated := `
cluster {
  startup_sync {
    wait_when_empty = "1h"
  }
}
` + outOfProcess
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], urls, gated))
	a.Env = []string{"HERALD_LOG__LEVEL=info"}
	a.StartNoWait()

	eventually(t, "A is live", func() error {
		code, rep, err := health(a, node.LivePath)
		if err == nil && (code != 200 || rep.Status != "live") {
			err = fmt.Errorf("%d %+v", code, rep)
		}
		return err
	})
	// B is not running: A's startup sync copies nothing, and reads stay refused for an hour.
	eventually(t, "A says why it is not ready", func() error {
		code, rep, err := health(a, node.ReadyPath)
		if err != nil {
			return err
		}
		if code != 503 || rep.Status != "not ready" {
			return fmt.Errorf("%d %s", code, rep.Status)
		}
		for _, c := range rep.Checks {
			if c.Name == "reads" && !c.OK && c.Detail != "" {
				return nil
			}
		}
		return fmt.Errorf("failing checks %q", failing(rep))
	})
	_, rep, err := health(a, node.ReadyPath)
	if err != nil {
		t.Fatal(err)
	}
	plugins := 0
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, "plugin ") {
			plugins++
			if !c.OK || !strings.Contains(c.Detail, "running") {
				t.Errorf("plugin check %+v", c)
			}
		}
	}
	if plugins != 3 {
		t.Errorf("readiness lists %d plugin processes, want 3: %+v", plugins, rep.Checks)
	}
	// The start log counts the peers without the node itself.
	if !strings.Contains(a.Logs(), "peers=1") {
		t.Errorf("the start log should say peers=1:\n%s", a.Logs())
	}

	// B starts, takes a registration and replicates it to A; A's anti-entropy sees a peer with
	// data and lifts the gate.
	b := e2e.NewNode(t, heraldBin, "b", ports[1], clusterHCL(ports[1], urls, ""))
	b.Start()
	register(t, b, "HEALTH", "h1", 1000, nil)
	a.WaitReady(30 * time.Second)
	code, rep, err := health(a, node.ReadyPath)
	if err != nil || code != 200 || rep.Status != "ready" || len(failing(rep)) > 0 {
		t.Fatalf("A ready: %d %+v (%v)", code, rep, err)
	}
	// Methods other than GET and HEAD are refused, in JSON too.
	code, body, err := client.Do(context.Background(), "POST", a.Root()+node.ReadyPath, "", nil, nil)
	if err != nil || code != 405 || !json.Valid(body) {
		t.Errorf("POST %s: %d %q (%v)", node.ReadyPath, code, body, err)
	}
}

// On SIGTERM a node withdraws readiness first and keeps serving for shutdown_delay, then drains
// its replication queues: a registration still waiting in the pending stage (batching_delay is
// long) reaches the peer before the node exits.
func TestGracefulStopDrainsReplication(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 2)
	urls := []string{urlOf(ports[0]), urlOf(ports[1])}
	slow := `
replication {
  flush_policy   = "size-or-age" # holds every task for batching_delay, at any load
  batching_delay = "4s"
}
http {
  shutdown_delay   = "3s"
  shutdown_timeout = "20s"
}
`
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], urls, slow))
	b := e2e.NewNode(t, heraldBin, "b", ports[1], clusterHCL(ports[1], urls, ""))
	for _, n := range []*e2e.Node{a, b} {
		n.Env = []string{noAntiEntropy, "HERALD_LOG__LEVEL=info"}
		n.Start()
	}
	register(t, a, "DRAIN", "d1", 1000, nil)
	a.Signal(syscall.SIGTERM)
	eventually(t, "A withdraws readiness and still answers", func() error {
		code, rep, err := health(a, node.ReadyPath)
		if err != nil {
			return err
		}
		if code != 503 || rep.Status != "stopping" {
			return fmt.Errorf("%d %s", code, rep.Status)
		}
		if code, _, err := health(a, node.LivePath); err != nil || code != 200 {
			return fmt.Errorf("live: %d (%v)", code, err)
		}
		return nil
	})
	select {
	case <-a.Exited():
	case <-time.After(60 * time.Second):
		t.Fatalf("A did not exit:\n%s", a.Logs())
	}
	if _, ok, err := instance(t, b, "DRAIN", "d1"); err != nil || !ok {
		t.Fatalf("the registration queued at A did not reach B before A exited (%v):\n%s", err, a.Logs())
	}
	if !strings.Contains(a.Logs(), "replication queues drained") {
		t.Errorf("A's log does not report the drain:\n%s", a.Logs())
	}
}

// Tasks that cannot reach a peer within shutdown_timeout are reported in the log, per peer.
func TestGracefulStopReportsUnsent(t *testing.T) {
	t.Parallel()
	// The peer's port is held by a listener that closes every connection at once: sends fail as
	// a peer that is down makes them fail, and no other process can take the port meanwhile.
	ports := e2e.FreePorts(t, 1)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	go func() {
		for {
			c, err := down.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	urls := []string{urlOf(ports[0]), urlOf(down.Addr().(*net.TCPAddr).Port)}
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], urls, `
http {
  shutdown_timeout = "1s"
}
`))
	a.Env = []string{noAntiEntropy}
	a.Start()
	register(t, a, "UNSENT", "u1", 1000, nil)
	start := time.Now()
	a.Signal(syscall.SIGTERM)
	select {
	case <-a.Exited():
	case <-time.After(60 * time.Second):
		t.Fatalf("A did not exit:\n%s", a.Logs())
	}
	logs := a.Logs()
	if !strings.Contains(logs, "replication tasks not sent to peer") || !strings.Contains(logs, "peer="+urls[1]) ||
		!strings.Contains(logs, "tasks_queued=") {
		t.Fatalf("the log does not name the peer and the tasks left unsent:\n%s", logs)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
}
