package sdk

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServedPluginSet is the go-plugin plugin set that serves impl as a plugin of the given kind: the
// set sdk.Serve hands to go-plugin. It is for harnesses that run a plugin over gRPC inside a test
// process (sdk/plugintest); a plugin never needs it.
func ServedPluginSet(kind string, impl any) map[string]plugin.Plugin { return servedMap(kind, impl) }

// ServeTest serves impl as a plugin of the given kind inside the calling process, as Serve does
// in a plugin process but in go-plugin's test mode: it logs to logger, sends the address a host
// reattaches to on reattach, and returns when the host closes the connection or ctx is done,
// closing closed. It is for harnesses (sdk/plugintest); a plugin never needs it.
func ServeTest(ctx context.Context, kind string, impl any, logger hclog.Logger, reattach chan<- *plugin.ReattachConfig, closed chan<- struct{}) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: servedMap(kind, impl)},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
				serverTracing())...)
		},
		Logger: logger,
		Test:   &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
}
