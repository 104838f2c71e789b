// Command logplugin is a transport plugin that only logs: sdk's logger test runs it as a real
// plugin process and reads its lines in the host's log.
package main

import (
	"context"
	"errors"
	"log"

	"github.com/heraldhq/herald/sdk"
)

type transport struct{}

func (transport) Info() sdk.Info { return sdk.Info{Name: "logdemo", Kind: sdk.KindTransport} }

func (transport) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	req.Logger.Debug("configure details", "node_url", req.NodeURL)
	req.Logger.Info("configured", "answer", 42)
	req.Logger.Warn("peer list is short", "peers", 1)
	log.Printf("plain log line from %s", "logdemo")
	return nil
}

func (transport) Send(context.Context, sdk.Peer, sdk.Batch) ([]sdk.ItemResult, error) {
	return nil, sdk.Fail(sdk.Permanent, errors.New("logdemo sends nothing"))
}

func main() { sdk.Serve(sdk.WithTransport(transport{})) }
