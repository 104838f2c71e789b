package main

// sdk.Peer.Address between real herald processes: a peer block's transport_address points the
// grpc transport at a peer's listener on a port of its own; without it, the port_offset
// convention still applies.

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

func TestPeerTransportAddress(t *testing.T) {
	t.Parallel()
	// A listens for grpc batches on its port + 1000 (the convention); B on a port unrelated to
	// its own, which only A's transport_address names.
	ports := grpcPorts(t, 1, 1000)
	aPort := ports[0]
	p := e2e.FreePorts(t, 2)
	bPort, bGRPC := p[0], p[1]
	bListen := net.JoinHostPort("127.0.0.1", strconv.Itoa(bGRPC))
	urls := []string{urlOf(aPort), urlOf(bPort)}

	a := e2e.NewNode(t, heraldBin, "a", aPort, clusterHCL(aPort, urls, fmt.Sprintf(`
replication {
  transport = "grpc"
  peer %q {
    transport_address = %q
  }
}
`, urlOf(bPort), bListen)))
	b := e2e.NewNode(t, heraldBin, "b", bPort, clusterHCL(bPort, urls, fmt.Sprintf(`
replication {
  transport = "grpc"
}
plugin "transport" "grpc" {
  config {
    listen = %q
  }
}
`, bListen)))
	for _, n := range []*e2e.Node{a, b} {
		n.Env = []string{"HERALD_CLUSTER__ANTI_ENTROPY__ENABLED=false"} // only replication carries writes
		n.Start()
	}
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(bPort+1000)), time.Second); err == nil {
		conn.Close()
		t.Fatalf("something listens on B's port + 1000: the test cannot tell transport_address from the convention")
	}
	success := func(from, to *e2e.Node) float64 {
		return metric(t, from, fmt.Sprintf(`herald_replication_batches_total{peer="%s",result="success"}`, to.URL()))
	}

	register(t, a, "ADDR", "to-b", 1000, nil)
	visibleOn(t, "ADDR", "to-b", b)
	if success(a, b) < 1 {
		t.Fatalf("A counted no successful grpc batch to B at %s", bListen)
	}
	register(t, b, "ADDR", "to-a", 1000, nil)
	visibleOn(t, "ADDR", "to-a", a)
	if success(b, a) < 1 {
		t.Fatalf("B counted no successful grpc batch to A at its port + 1000")
	}
}
