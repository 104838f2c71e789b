package sdk

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	kind   string
	impl   any
	logger hclog.Logger
	test   *plugin.ServeTestConfig
}

// WithTransport serves a transport.
func WithTransport(t Transport) ServeOption {
	return func(c *serveConfig) { c.kind, c.impl = KindTransport, t }
}

// WithFlushPolicy serves a flush policy.
func WithFlushPolicy(p FlushPolicy) ServeOption {
	return func(c *serveConfig) { c.kind, c.impl = KindFlushPolicy, p }
}

// WithActionHandler serves an action handler.
func WithActionHandler(h ActionHandler) ServeOption {
	return func(c *serveConfig) { c.kind, c.impl = KindActionHandler, h }
}

// WithLogger replaces the plugin process's logger (see Logger), which ConfigureRequest.Logger is
// named from. Its output reaches the host's log only in hclog's JSON format on stderr, and the
// plugin keeps its level: the node's log level is applied only to the default logger.
func WithLogger(l hclog.Logger) ServeOption { return func(c *serveConfig) { c.logger = l } }

// Serve is the whole main() of a plugin:
//
//	func main() { sdk.Serve(sdk.WithTransport(mytransport.New())) }
//
// It speaks herald's versioned handshake over gRPC (mutual TLS is set up by the host), and exits
// when the host goes away, even if the host was killed with SIGKILL.
func Serve(opts ...ServeOption) {
	c := &serveConfig{}
	for _, o := range opts {
		o(c)
	}
	if c.impl == nil {
		fmt.Fprintln(os.Stderr, "herald plugin: sdk.Serve needs WithTransport, WithFlushPolicy or WithActionHandler")
		os.Exit(1)
	}
	own := c.logger == nil
	if own {
		c.logger = defaultServeLogger()
	}
	setServedLogger(c.logger, own)
	go exitWithParent()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: servedMap(c.kind, c.impl)},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
				grpc.InitialWindowSize(WindowBytes), grpc.InitialConnWindowSize(WindowBytes), serverTracing())...)
		},
		Logger: c.logger,
		Test:   c.test,
	})
}

// exitWithParent ends the plugin when the host process is gone: a plugin must never outlive
// herald. (The host also asks Linux to kill it with the parent; this covers other systems and
// plugins started some other way.)
func exitWithParent() {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			os.Exit(2)
		}
	}
}
