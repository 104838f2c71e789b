package sdk

import "github.com/hashicorp/go-plugin"

// ServedPluginSet is the go-plugin plugin set that serves impl as a plugin of the given kind: the
// set sdk.Serve hands to go-plugin. It is for harnesses that run a plugin over gRPC inside a test
// process (sdk/plugintest, with plugin.TestPluginGRPCConn); a plugin never needs it.
func ServedPluginSet(kind string, impl any) map[string]plugin.Plugin { return servedMap(kind, impl) }
