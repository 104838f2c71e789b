package httptransport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Plugin is the http transport as a configurable plugin: what `herald plugin serve transport http`
// serves when the transport runs as its own process. Its config {} block takes connect_timeout,
// read_timeout (durations such as "1s"), compress (bool) and node_id.
type Plugin struct {
	mu sync.RWMutex
	t  *Transport
}

// NewPlugin returns the plugin with default options until Configure.
func NewPlugin() *Plugin { return &Plugin{t: New(Options{})} }

// Info implements sdk.Describer.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "http", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "connect_timeout", Type: "duration", Default: "1s", Description: "dial timeout per peer"},
		{Path: "read_timeout", Type: "duration", Default: "5s", Description: "time to wait for a peer's answer; past it the send counts as congestion"},
		{Path: "compress", Type: "bool", Default: false, Description: "gzip request bodies"},
		{Path: "node_id", Type: "string", Description: "sent as DiscoveryIdentity-Id"},
	}}
}

// Configure implements sdk.Configurable.
func (p *Plugin) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	o := Options{NodeID: req.NodeName, PeerAuth: req.PeerAuth}
	dur := func(key string, v any) time.Duration {
		s, ok := v.(string)
		d, err := time.ParseDuration(s)
		if !ok || err != nil || d <= 0 {
			diags = append(diags, sdk.Diagnostic{Path: key, Message: fmt.Sprintf("want a positive duration such as \"1s\", got %v", v)})
		}
		return d
	}
	for k, v := range req.Config {
		switch k {
		case "connect_timeout":
			o.ConnectTimeout = dur(k, v)
		case "read_timeout":
			o.ReadTimeout = dur(k, v)
		case "compress":
			b, ok := v.(bool)
			if !ok {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want true or false, got %v", v)})
			}
			o.Compress = b
		case "node_id":
			s, _ := v.(string)
			o.NodeID = s
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: connect_timeout, read_timeout, compress, node_id)"})
		}
	}
	if len(diags) == 0 {
		t := New(o)
		if err := t.Err(); err != nil {
			return []sdk.Diagnostic{{Message: "peer authentication: " + err.Error()}}
		}
		p.mu.Lock()
		p.t = t
		p.mu.Unlock()
	}
	return diags
}

// Send implements sdk.Transport.
func (p *Plugin) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	p.mu.RLock()
	t := p.t
	p.mu.RUnlock()
	return t.Send(ctx, peer, b)
}
