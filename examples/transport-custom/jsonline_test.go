package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// receiver starts a jsonline receiving side whose node is host, as a peer runs it (a plugin
// process whose host service is herald's), and returns the peer that names it.
func receiver(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
	rx := New()
	plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
	return sdk.Peer{Name: "peer", Address: rx.Addr()}
}

func TestConformance(t *testing.T) {
	plugintest.Transport(t, plugintest.TransportCase{
		New:    func(*testing.T) sdk.Transport { return New() },
		Config: map[string]any{"listen": "off", "timeout": "2s"},
		Peer:   receiver,
		PeerAt: func(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} },
	})
}

// A batch sent through the plugin's gRPC path reaches the peer's node with every field, and the
// node's answers come back; a node that cannot take the batch makes the send fail as congestion.
func TestBatchReachesThePeersNode(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.SetAnswer(func(it sdk.Item) sdk.ItemResult {
		if it.Action == sdk.ActionHeartbeat {
			return sdk.ItemResult{StatusCode: 404}
		}
		return sdk.ItemResult{StatusCode: 200}
	})
	peer := receiver(t, host)
	tr := plugintest.ServeTransport(t, New())
	plugintest.MustConfigure(t, tr, map[string]any{"listen": "off"}, nil)

	b := plugintest.Batch("b1", 5)
	rs, err := tr.Send(context.Background(), peer, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 || rs[0].StatusCode != 200 || rs[1].StatusCode != 404 {
		t.Errorf("results %+v", rs)
	}
	got := host.Received()
	if len(got) != 1 || got[0].ID != "b1" || len(got[0].Items) != 5 || string(got[0].Items[0].Instance) != string(b.Items[0].Instance) ||
		got[0].Items[0].TraceParent != b.Items[0].TraceParent {
		t.Fatalf("the peer's node got %+v", got)
	}

	host.SetErr(errors.New("action handler restarting"))
	if _, err := tr.Send(context.Background(), peer, b); sdk.ClassOf(err) != sdk.Congestion {
		t.Fatalf("a node that cannot take the batch: %v (%s), want congestion", err, sdk.ClassOf(err))
	}
}

// A peer without an Address is reached at its Eureka port plus port_offset.
func TestPeerByEurekaURL(t *testing.T) {
	host := plugintest.NewFakeHost()
	peer := receiver(t, host)
	_, port, _ := net.SplitHostPort(peer.Address)
	p, _ := strconv.Atoi(port)
	if p <= 1000 {
		t.Skipf("port %d leaves no room for an offset", p)
	}
	tr := New()
	plugintest.MustConfigure(t, tr, map[string]any{"listen": "off", "port_offset": float64(1000)}, nil)
	byURL := sdk.Peer{Name: "by-url", URL: "http://127.0.0.1:" + strconv.Itoa(p-1000) + "/eureka/"}
	if rs, err := tr.Send(context.Background(), byURL, plugintest.Batch("url", 2)); err != nil || len(rs) != 2 {
		t.Fatalf("send by URL: %+v %v", rs, err)
	}
	if len(host.ReceivedItems()) != 2 {
		t.Fatalf("the peer got %d items", len(host.ReceivedItems()))
	}
}

func TestConfigDiagnostics(t *testing.T) {
	d := plugintest.Configure(t, New(), map[string]any{"timeout": "soon", "port_offset": 0.5, "listen": 8000}, nil)
	paths := map[string]bool{}
	for _, x := range d {
		paths[x.Path] = !x.Warning && x.Message != ""
	}
	if len(d) != 3 || !paths["timeout"] || !paths["port_offset"] || !paths["listen"] {
		t.Errorf("diagnostics %+v, want one each for timeout, port_offset and listen", d)
	}
	busy := plugintest.ClosedAddr(t)
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	if d := plugintest.Configure(t, New(), map[string]any{"listen": busy}, nil); len(d) != 1 || d[0].Path != "listen" {
		t.Errorf("a port in use: diagnostics %+v", d)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
