package sdk

import "github.com/hashicorp/go-plugin"

// TestPluginSet is the go-plugin plugin set that serves impl as a plugin of the given kind, for
// harnesses that run a plugin over gRPC inside a test process (sdk/plugintest). Plugins never need
// it: sdk.Serve uses the same set.
func TestPluginSet(kind string, impl any) map[string]plugin.Plugin { return servedMap(kind, impl) }
