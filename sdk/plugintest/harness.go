// Package plugintest is what a plugin author uses in tests: a harness that runs a plugin through
// the same gRPC path herald uses (go-plugin, the SDK's adapters, the host service over the
// broker) inside the test process, a FakeHost, and a conformance suite per plugin kind.
//
//	func TestConformance(t *testing.T) {
//		plugintest.Transport(t, plugintest.TransportCase{
//			New:  func(t *testing.T) sdk.Transport { return carrier.New() },
//			Peer: func(t *testing.T) sdk.Peer { return startPeer(t) },
//		})
//	}
//
// A suite checks the contract herald relies on and says in plain words what to fix.
package plugintest

import (
	"context"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/heraldhq/herald/sdk"
)

// serve runs impl as a plugin of kind over gRPC in the test process and returns what herald would
// hold: the host side of the plugin.
func serve(t testing.TB, kind string, impl any) any {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.TestPluginSet(kind, impl))
	t.Cleanup(func() {
		client.Close()
		server.Stop()
	})
	raw, err := client.Dispense(kind)
	if err != nil {
		t.Fatalf("plugintest: dispensing the %s over gRPC: %v", kind, err)
	}
	return raw
}

// ServeTransport runs t through the gRPC path; the result also implements sdk.Describer and
// sdk.Configurable, as herald's client does.
func ServeTransport(tb testing.TB, impl sdk.Transport) sdk.Transport {
	return serve(tb, sdk.KindTransport, impl).(sdk.Transport)
}

// ServeFlushPolicy runs p through the gRPC path.
func ServeFlushPolicy(tb testing.TB, impl sdk.FlushPolicy) sdk.FlushPolicy {
	return serve(tb, sdk.KindFlushPolicy, impl).(sdk.FlushPolicy)
}

// ServeActionHandler runs h through the gRPC path.
func ServeActionHandler(tb testing.TB, impl sdk.ActionHandler) sdk.ActionHandler {
	return serve(tb, sdk.KindActionHandler, impl).(sdk.ActionHandler)
}

// Configure calls p's Configure, if it has one, with cfg and host (nil: a new FakeHost), as herald
// does before any other call, and returns the diagnostics.
func Configure(tb testing.TB, p any, cfg map[string]any, host sdk.Host) []sdk.Diagnostic {
	tb.Helper()
	c, ok := p.(sdk.Configurable)
	if !ok {
		return nil
	}
	if host == nil {
		host = NewFakeHost()
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	return c.Configure(context.Background(), sdk.ConfigureRequest{Config: cfg, NodeName: "plugintest",
		NodeURL: "http://127.0.0.1:8761/eureka/", LogLevel: "info", Host: host})
}

// mustConfigure configures p and fails on any error diagnostic.
func mustConfigure(t *testing.T, p any, cfg map[string]any, host sdk.Host) {
	t.Helper()
	for _, d := range Configure(t, p, cfg, host) {
		if !d.Warning {
			t.Fatalf("Configure refused the test's config: %s: %s. Give the suite a config your plugin accepts (Config field).", d.Path, d.Message)
		}
	}
}
