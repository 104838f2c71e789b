package main

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// receiver starts a jsonline receiving side whose host is h, as a peer node would have.
func receiver(t *testing.T, h *plugintest.FakeHost) *JSONLine {
	t.Helper()
	r := New()
	if d := plugintest.Configure(t, r, map[string]any{"listen": "127.0.0.1:0"}, h); len(d) != 0 {
		t.Fatal(d)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestConformance(t *testing.T) {
	plugintest.Transport(t, plugintest.TransportCase{
		New:    func(*testing.T) sdk.Transport { return New() },
		Config: map[string]any{"listen": "off", "timeout": "2s"},
		Peer: func(t *testing.T) sdk.Peer {
			return sdk.Peer{Name: "peer", Address: receiver(t, plugintest.NewFakeHost()).Addr()}
		},
		Unreachable: func(t *testing.T) sdk.Peer {
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := l.Addr().String()
			l.Close()
			return sdk.Peer{Name: "down", Address: addr}
		},
	})
}

// A batch sent through the plugin's gRPC path reaches the peer's host, and the host's answers
// come back; a host that cannot take the batch makes the send fail as congestion (retried).
func TestBatchReachesThePeersHost(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.Answer = func(it sdk.Item) sdk.ItemResult {
		if it.Action == sdk.ActionHeartbeat {
			return sdk.ItemResult{StatusCode: 404}
		}
		return sdk.ItemResult{StatusCode: 200}
	}
	peer := sdk.Peer{Name: "peer", Address: receiver(t, host).Addr()}
	tr := plugintest.ServeTransport(t, New())
	if d := plugintest.Configure(t, tr, map[string]any{"listen": "off"}, nil); len(d) != 0 {
		t.Fatal(d)
	}
	b := plugintest.Batch("b1", 5)
	rs, err := tr.Send(context.Background(), peer, b)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].StatusCode != 200 || rs[1].StatusCode != 404 {
		t.Errorf("results %+v", rs)
	}
	got := host.Received()
	if len(got) != 1 || got[0].ID != "b1" || len(got[0].Items) != 5 || string(got[0].Items[0].Instance) != string(b.Items[0].Instance) ||
		got[0].Items[0].TraceParent != b.Items[0].TraceParent {
		t.Fatalf("the peer's host got %+v", got)
	}
	host.Err = errors.New("action handler restarting")
	if _, err := tr.Send(context.Background(), peer, b); sdk.ClassOf(err) != sdk.Congestion {
		t.Fatalf("a host that cannot take the batch: %v (%s), want congestion", err, sdk.ClassOf(err))
	}
}
