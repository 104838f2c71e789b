// Package sdk is what a team imports to extend herald, and nothing else: plugins depend on this
// package (and its subpackages), never on herald's core.
//
// herald replicates every registry write to every peer through a pipeline per peer. Three kinds of
// plugin take part:
//
//   - a Transport carries one batch of replicated items to one peer and returns the peer's answer
//     for each item, or a failure class for the whole batch (sdk/TRANSPORT.md);
//   - a FlushPolicy decides when the pipeline cuts a batch from the tasks waiting for a peer
//     (sdk/FLUSH_POLICY.md);
//   - an ActionHandler validates or enriches a client's write before it is replicated, and
//     validates, applies or observes replicated actions on the receiving node; it may declare new
//     actions that replicate like Eureka's five (sdk/ACTION_HANDLER.md).
//
// A plugin runs in its own process and talks to herald over gRPC (github.com/hashicorp/go-plugin,
// mutual TLS set up by herald). Its main function is one call:
//
//	package main
//
//	import "github.com/heraldhq/herald/sdk"
//
//	func main() { sdk.Serve(sdk.WithTransport(&Carrier{})) }
//
// and herald runs it from a `plugin "transport" "carrier" { command = "/path/to/binary" }` block,
// selected with `replication { transport = "carrier" }` (or per peer in a `peer "URL" {}` block;
// action handlers with `replication { action_handlers = ["eureka", "carrier"] }`).
//
// # Configuration and description
//
// A plugin may implement Describer (its name, kind and config struct) and Configurable: herald
// calls Configure once, before any other call, with the block's config {} data, the node's
// identity and log level, its telemetry settings and the Host. Return a Diagnostic per problem,
// with the key's path; herald refuses to start and prints each one with the block's file and line.
//
// Declare the config {} block as a struct with tags and name it in Info.Config; the SDK derives
// the schema (SchemaOf) and herald checks the block against it before Configure runs (unknown
// keys, wrong types, missing required keys). Configure decodes it, defaults applied:
//
//	type Config struct {
//		Listen  string        `config:"listen,required" description:"host:port to listen on"`
//		Timeout time.Duration `config:"timeout" default:"5s"`
//	}
//
//	func (c Config) Validate() []sdk.Diagnostic { ... } // optional: ranges, keys that go together
//
//	func (p *Carrier) Info() sdk.Info { return sdk.Info{Name: "carrier", Config: Config{}} }
//
//	func (p *Carrier) Configure(ctx context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
//		var cfg Config
//		if diags := req.Decode(&cfg); sdk.HasErrors(diags) {
//			return diags
//		}
//		...
//	}
//
// The block arrives as JSON (RawConfig), the same in-process and out of process: integers stay
// integers, durations are strings such as "30s". `herald config validate` sets
// ConfigureRequest.ValidateOnly; the SDK then decodes and validates a declared config struct
// without calling Configure, so the plugin starts nothing.
//
// # Logging
//
// ConfigureRequest.Logger (a Logger, hclog's) is the plugin's logger: keep it from Configure and
// log through it. Its lines appear in the node's log at the node's level, named after the plugin
// and with the node's name, whether the plugin runs in its own process or in herald's. In a plugin
// process the log package writes to it too (at info level), so a plain log.Printf is not lost.
//
// # The host service
//
// ConfigureRequest.Host is the node the plugin serves: read an instance, apply built-in actions,
// replicate custom actions to every peer, or hand in a batch that the plugin's own listener
// received from a peer. Out of process its calls travel back to herald over go-plugin's broker.
//
// # Tracing
//
// The SDK puts a span around every call into the plugin, as a child of herald's span (the trace
// context travels in gRPC metadata), and exports it where herald exports its own; StartSpan adds
// the plugin's own spans. A plugin never starts a trace: it costs nothing when herald samples
// nothing. TraceTransport, TraceFlushPolicy and TraceActionHandler give the same spans to a plugin
// used in-process.
//
// # Crashes
//
// A plugin process that dies is restarted by herald with backoff; the batches it was sending fail
// as Transient and are retried, so no replicated write is lost. A plugin exits by itself when
// herald goes away.
//
// # Testing
//
// Package sdk/plugintest runs a plugin through the real gRPC path in the test process (and as a
// plugin process of its own), has a conformance suite per kind that says, in plain words, what
// breaks the contract, and joins two in-memory nodes with a transport (NewLoopback) to test a
// receiving side.
//
// # The module
//
// The SDK is a Go module of its own, github.com/heraldhq/herald/sdk, apart from herald's: a
// plugin's go.mod requires it alone, and needs only the previous Go release (the go directive of
// the SDK's go.mod). Its packages import nothing of herald's outside sdk/.
//
// The built-in plugins in herald's plugins/ directory are written against this package only:
// plugins/transport/http, plugins/transport/grpc, plugins/flush/sizeorage, plugins/flush/adaptive
// and plugins/action/eureka. examples/ holds plugins written as an outside team would.
package sdk
