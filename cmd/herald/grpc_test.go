package main

// End-to-end tests of the grpc transport between real herald processes: each node takes its
// peers' batches on its Eureka port + 1000.

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

const grpcInProcess = `
replication {
  transport = "grpc"
}
`

const grpcOutOfProcess = `
replication {
  transport = "grpc"
}
plugin "transport" "grpc" {
  out_of_process = true
  config {
    read_timeout = "2s"
  }
}
`

// grpcPorts returns n free ports p whose p+offset is free as well.
func grpcPorts(t *testing.T, n, offset int) []int {
	t.Helper()
	for range 20 {
		ports := e2e.FreePorts(t, n)
		ok := true
		for _, p := range ports {
			if !e2e.Claim(p + offset) { // free, and no other test of this run gets it
				ok = false
				break
			}
		}
		if ok {
			return ports
		}
	}
	t.Fatal("no free ports with free grpc ports")
	return nil
}

// startGRPCCluster starts n nodes replicating over the grpc transport. Anti-entropy is off, so
// whatever reaches a peer was carried by replication.
func startGRPCCluster(t *testing.T, n int, extra string) []*e2e.Node {
	t.Helper()
	ports := grpcPorts(t, n, 1000)
	var urls []string
	for _, p := range ports {
		urls = append(urls, urlOf(p))
	}
	nodes := make([]*e2e.Node, n)
	for i, p := range ports {
		nodes[i] = e2e.NewNode(t, heraldBin, fmt.Sprintf("node%d", i), p, clusterHCL(p, urls, extra))
		nodes[i].Env = []string{"HERALD_CLUSTER__ANTI_ENTROPY__ENABLED=false"}
		nodes[i].Start()
	}
	return nodes
}

func TestGRPCTransport(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, hcl string }{{"in-process", grpcInProcess}, {"out-of-process", grpcOutOfProcess}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testGRPCTransport(t, c.hcl, c.hcl == grpcOutOfProcess)
		})
	}
}

func testGRPCTransport(t *testing.T, extra string, outOfProcess bool) {
	nodes := startGRPCCluster(t, 3, extra)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n.Port+1000), time.Second)
		if err != nil {
			t.Fatalf("%s takes no grpc batches on its port + 1000: %v", n.Name, err)
		}
		conn.Close()
	}
	success := func(from, to *e2e.Node) float64 {
		return metric(t, from, fmt.Sprintf(`herald_replication_batches_total{peer="%s",result="success"}`, to.URL()))
	}

	t.Run("register at A reaches B and C", func(t *testing.T) {
		register(t, a, "GRPC", "g1", 1000, nil)
		visibleOn(t, "GRPC", "g1", b, c)
		d, _, _ := instance(t, c, "GRPC", "g1")
		if d.Instance.LastDirtyTimestamp != "1000" || d.Instance.Metadata["v"] != "1000" {
			t.Fatalf("arrived as %+v", d.Instance)
		}
		if success(a, b) < 1 || success(a, c) < 1 {
			t.Fatalf("A counted %v successful batches to B, %v to C", success(a, b), success(a, c))
		}
	})
	t.Run("writes at every node reach the others", func(t *testing.T) {
		for i := 0; i < 30; i++ {
			register(t, nodes[i%3], "MANY", "m"+strconv.Itoa(i), 1000, nil)
		}
		for i := 0; i < 30; i++ {
			visibleOn(t, "MANY", "m"+strconv.Itoa(i), a, b, c)
		}
	})
	t.Run("a heartbeat a peer cannot match makes the sender register it", func(t *testing.T) {
		// Only A knows g2: the peers answer the heartbeat 404 over grpc and A sends a register.
		register(t, a, "GRPC", "g2", 1000, repl)
		if code, _ := do(t, "PUT", a.URL()+"apps/GRPC/g2?status=UP&lastDirtyTimestamp=1000", nil, nil); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
		visibleOn(t, "GRPC", "g2", b, c)
	})
	t.Run("status override and cancel propagate", func(t *testing.T) {
		if code, _ := do(t, "PUT", b.URL()+"apps/GRPC/g1/status?value=OUT_OF_SERVICE", nil, nil); code != 200 {
			t.Fatalf("override: %d", code)
		}
		for _, n := range []*e2e.Node{a, c} {
			eventually(t, "override on "+n.Name, func() error {
				d, ok, err := instance(t, n, "GRPC", "g1")
				if err != nil || !ok || d.Instance.Status != "OUT_OF_SERVICE" || d.Instance.OverriddenStatus != "OUT_OF_SERVICE" {
					return fmt.Errorf("status %q overridden %q (%v)", d.Instance.Status, d.Instance.OverriddenStatus, err)
				}
				return nil
			})
		}
		if code, _ := do(t, "DELETE", c.URL()+"apps/GRPC/g1", nil, nil); code != 200 {
			t.Fatalf("cancel: %d", code)
		}
		goneFrom(t, "GRPC", "g1", a, b)
	})
	if !outOfProcess {
		return
	}
	t.Run("the transport runs as a process and its receiving side survives a kill -9", func(t *testing.T) {
		if n := metric(t, a, `herald_plugin_call_duration_seconds_count{kind="transport",method="Send",name="grpc"}`); n < 1 {
			t.Fatalf("A's grpc plugin Send calls counted: %v", n)
		}
		old := pluginProcess(t, b, "plugin serve transport grpc")
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		register(t, a, "GRPC", "after-kill", 1000, nil)
		e2e.Eventually(t, 30*time.Second, func() error {
			_, ok, err := instance(t, b, "GRPC", "after-kill")
			if err != nil || !ok {
				return fmt.Errorf("not on B yet (%v)", err)
			}
			return nil
		})
		visibleOn(t, "GRPC", "after-kill", c)
		if pluginProcess(t, b, "plugin serve transport grpc") == old {
			t.Fatal("B's transport plugin was not restarted")
		}
	})
}
