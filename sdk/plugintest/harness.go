package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

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

// The ways each suite runs a plugin: called directly; through the gRPC path in the test process
// (every check); in a plugin process of its own, as herald runs a plugin binary (a few checks).
const (
	viaInProcess = "in-process"
	viaGRPC      = "grpc"
	viaProcess   = "process"
)

var vias = []string{viaInProcess, viaGRPC, viaProcess}

// serve runs impl as a plugin of kind over gRPC in the test process, as herald runs a plugin
// process (go-plugin's server in test mode, its client reattached to it, the SDK's plugin set and
// adapters) and returns what herald would hold: the host side. A panic in impl fails the test
// with its stack; go-plugin's log is kept quiet and shown if the test fails (or with -v).
func serve(tb testing.TB, kind string, impl any) any {
	tb.Helper()
	if impl == nil {
		tb.Fatalf("plugintest: no %s to serve (nil)", kind)
	}
	impl = guardAs(tb, kind, impl)
	out := captureOutput(tb, fmt.Sprintf("go-plugin's log of the %s %s served through gRPC", kind, pluginName(impl)))
	logger := out.logger()
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go sdk.ServeTest(ctx, kind, impl, logger, reattach, closed)
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-closed:
		cancel()
		tb.Fatalf("plugintest: serving the %s over gRPC failed:\n%s", kind, out.tail(8<<10))
	}
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess{closed: closed, stop: cancel}, nil }
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginMap(), // a reattached client takes the unversioned set
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  dialOptions(),
	})
	tb.Cleanup(func() {
		// Closing the client asks the server to stop (go-plugin's controller); the server's context
		// is cancelled only if it did not, since stopping it twice at once races in go-plugin.
		if rpc, err := client.Client(); err == nil {
			_ = rpc.Close()
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
		cancel()
		<-closed
	})
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("plugintest: connecting to the %s over gRPC: %v", kind, err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		tb.Fatalf("plugintest: dispensing the %s over gRPC: %v", kind, err)
	}
	return raw
}

// dialOptions are the gRPC options herald dials its plugins with.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(sdk.MaxMessageBytes), grpc.MaxCallSendMsgSize(sdk.MaxMessageBytes))}
}

// inProcess is go-plugin's handle on a plugin served in the test process: it "exits" when the
// server stops.
type inProcess struct {
	closed <-chan struct{}
	stop   context.CancelFunc
}

func (p inProcess) Wait(ctx context.Context) error {
	select {
	case <-p.closed:
	case <-ctx.Done():
	}
	return nil
}

func (p inProcess) Kill(context.Context) error { p.stop(); return nil }

func (inProcess) ID() string { return "plugintest" }

func (inProcess) PluginToHost(n, a string) (string, string, error) { return n, a, nil }

func (inProcess) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// pluginName is the plugin's name from its Info, or its type.
func pluginName(p any) string {
	if d, ok := p.(sdk.Describer); ok { // a guard: a panic in Info is reported, not raised
		if n := d.Info().Name; n != "" {
			return fmt.Sprintf("%q", n)
		}
	}
	return fmt.Sprintf("%T", unguard(p))
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
		NodeURL: NodeURL, LogLevel: "info", Host: host, PeerAuth: PeerAuth,
		Logger: sdk.PluginLogger(hclog.NewNullLogger(), "plugintest", "plugin", NodeName)})
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
