package plugintest

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Options are the ways a plugin may legitimately differ from what a suite assumes. The zero value
// runs every check.
type Options struct {
	// SkipUnknownKey skips the check that Configure refuses an unknown key, for a plugin whose
	// config {} block is free-form (a map of labels, say). All suites.
	SkipUnknownKey bool
	// SkipUnreachable skips the checks against a TCP port nothing listens on and against a peer that
	// accepts connections and never answers, for a transport that does not reach its peers over
	// TCP (one that hands batches to a message broker, say). TransportCase.PeerAt is then not
	// needed. Transport suite.
	SkipUnreachable bool
	// PeerIgnoresHost says the Peer of a TransportCase does not answer through the FakeHost the
	// suite gives it (a fixed fake server). The suite then checks that each item has a result with
	// a status code, but cannot check that the results are in order, that the fields arrived, or
	// that a peer whose node cannot apply a batch is retried. Transport suite.
	PeerIgnoresHost bool
	// MaxWait is how long a lone task may wait before the policy cuts it (0: 10 s; herald drops
	// tasks older than replication.max_time_for_replication, 30 s by default). Flush policy suite.
	MaxWait time.Duration
}

// The two ways each suite runs a plugin.
const (
	viaInProcess = "in-process"
	viaGRPC      = "grpc"
)

var vias = []string{viaInProcess, viaGRPC}

// serve runs impl as a plugin of kind over gRPC in the test process (go-plugin's test connection,
// the SDK's plugin set and adapters) and returns what herald would hold: the host side.
func serve(tb testing.TB, kind string, impl any) any {
	tb.Helper()
	if impl == nil {
		tb.Fatalf("plugintest: no %s to serve (nil)", kind)
	}
	client, server := plugin.TestPluginGRPCConn(tb, false, sdk.ServedPluginSet(kind, impl))
	tb.Cleanup(func() {
		// Closing the client asks the server to stop (go-plugin's controller); stopping it here
		// as well would race with that.
		_ = client.Close()
		select {
		case <-server.DoneCh:
		case <-time.After(5 * time.Second):
		}
	})
	raw, err := client.Dispense(kind)
	if err != nil {
		tb.Fatalf("plugintest: dispensing the %s over gRPC: %v", kind, err)
	}
	return raw
}

// ServeTransport runs impl through the gRPC path and returns herald's side of it. The result also
// implements sdk.Describer and sdk.Configurable, as herald's client does; configure it (with
// Configure) before sending, as herald does. The connection closes when the test ends.
func ServeTransport(tb testing.TB, impl sdk.Transport) sdk.Transport {
	tb.Helper()
	return serve(tb, sdk.KindTransport, impl).(sdk.Transport)
}

// ServeFlushPolicy runs impl through the gRPC path and returns herald's side of it.
func ServeFlushPolicy(tb testing.TB, impl sdk.FlushPolicy) sdk.FlushPolicy {
	tb.Helper()
	return serve(tb, sdk.KindFlushPolicy, impl).(sdk.FlushPolicy)
}

// ServeActionHandler runs impl through the gRPC path and returns herald's side of it. Its Actions
// are read once, when it is served, as herald does.
func ServeActionHandler(tb testing.TB, impl sdk.ActionHandler) sdk.ActionHandler {
	tb.Helper()
	return serve(tb, sdk.KindActionHandler, impl).(sdk.ActionHandler)
}

// Configure calls p's Configure, if p has one, as herald does before any other call: with cfg
// (nil: an empty block), the node "plugintest" at http://127.0.0.1:8761/eureka/, and host (nil: a
// new FakeHost). p may be a plugin or what a Serve function returned, in which case host is
// served to the plugin over the broker. It returns the diagnostics.
func Configure(tb testing.TB, p any, cfg map[string]any, host sdk.Host) []sdk.Diagnostic {
	tb.Helper()
	c, ok := p.(sdk.Configurable)
	if !ok {
		return nil
	}
	if host == nil {
		host = NewFakeHost()
	}
	raw, err := json.Marshal(cfg) // as herald hands a config {} block to a plugin
	if err != nil {
		tb.Fatalf("plugintest: the config cannot be sent to the plugin: %v", err)
	}
	return c.Configure(context.Background(), sdk.ConfigureRequest{Config: raw, NodeName: NodeName,
		NodeURL: NodeURL, LogLevel: "info", Host: host, PeerAuth: PeerAuth})
}

// PeerAuth is the peer authentication every plugin configured by Configure gets: a cluster secret
// made for the test run, so a transport's sending side signs and its receiving side verifies as
// they do in a cluster (see package peerauth).
var PeerAuth = peerauth.Config{Secrets: []string{peerauth.NewSecret()}}

// The node a plugin is configured for by Configure.
const (
	NodeName = "plugintest"
	NodeURL  = "http://127.0.0.1:8761/eureka/"
)

// MustConfigure is Configure that fails the test on an error diagnostic.
func MustConfigure(tb testing.TB, p any, cfg map[string]any, host sdk.Host) {
	tb.Helper()
	for _, d := range Configure(tb, p, cfg, host) {
		if !d.Warning {
			tb.Fatalf("Configure refused the test's config: %s: %s. Give the suite a config your plugin accepts (the case's Config).",
				pathOr(d.Path), d.Message)
		}
	}
}

// StartReceiver starts the receiving side of a transport as a peer node would run it: impl is
// served through the gRPC path and configured with cfg and host, which reaches it over the broker,
// so every inbound batch it hands to Host.Receive crosses the host service as it does in herald.
// It fails the test on an error diagnostic, and closes impl when the test ends if impl is an
// io.Closer. Read the address it listens on from impl itself.
func StartReceiver(tb testing.TB, impl sdk.Transport, cfg map[string]any, host sdk.Host) {
	tb.Helper()
	rx := ServeTransport(tb, impl)
	MustConfigure(tb, rx, cfg, host)
	closeAtEnd(tb, impl)
}

// closeAtEnd closes p when the test ends if it is an io.Closer (herald closes in-process plugins
// that are).
func closeAtEnd(tb testing.TB, p any) {
	if c, ok := p.(io.Closer); ok {
		tb.Cleanup(func() { _ = c.Close() })
	}
}

func pathOr(p string) string {
	if p == "" {
		return "(no path)"
	}
	return p
}
