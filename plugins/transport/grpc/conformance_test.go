package grpctransport_test

import (
	"testing"

	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.Transport(t, plugintest.TransportCase{
		New:    func(*testing.T) sdk.Transport { return grpctransport.NewPlugin() },
		Config: map[string]any{"listen": "off", "read_timeout": "10s"},
		// The peer is a second grpc transport's receiving side, whose node is the suite's FakeHost.
		Peer: func(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
			rx := grpctransport.NewPlugin()
			plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
			return sdk.Peer{Name: "peer", Address: rx.Addr().String()}
		},
		PeerAt: func(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} },
	})
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
