package httptransport

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// Config is the http transport's config {} block. In-process, herald fills keys not written in the
// block from replication.connect_timeout, replication.read_timeout and replication.compress, and
// node_id from the node's name.
type Config struct {
	ConnectTimeout time.Duration `config:"connect_timeout" default:"1s" description:"dial timeout per peer (Eureka's peerNodeConnectTimeoutMs)"`
	ReadTimeout    time.Duration `config:"read_timeout" default:"5s" description:"time to wait for a peer's answer; past it the send counts as congestion (peerNodeReadTimeoutMs)"`
	Compress       bool          `config:"compress" description:"gzip request bodies"`
	NodeID         string        `config:"node_id" description:"sent as DiscoveryIdentity-Id (default: the node's name)"`
}

// Validate implements sdk.Validator.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if c.ConnectTimeout <= 0 {
		diags = append(diags, sdk.Diagnostic{Path: "connect_timeout", Message: `want a positive duration such as "1s"`})
	}
	if c.ReadTimeout <= 0 {
		diags = append(diags, sdk.Diagnostic{Path: "read_timeout", Message: `want a positive duration such as "5s"`})
	}
	return diags
}

// Plugin is the http transport as a configurable plugin, in-process or served by `herald plugin
// serve transport http`.
type Plugin struct {
	mu     sync.RWMutex
	t      *Transport
	onName func(peerURL, name string)
}

// OnPeerName is Transport.OnPeerName for the transport this plugin runs now and after every
// Configure. Call it before the first Send.
func (p *Plugin) OnPeerName(f func(peerURL, name string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onName = f
	p.t.OnPeerName(f)
}

// NewPlugin returns the plugin with default options until Configure.
func NewPlugin() *Plugin { return &Plugin{t: New(Options{})} }

// Info implements sdk.Describer.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "http", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable.
func (p *Plugin) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	o := Options{ConnectTimeout: c.ConnectTimeout, ReadTimeout: c.ReadTimeout, Compress: c.Compress, NodeID: c.NodeID,
		PeerAuth: req.PeerAuth}
	if o.NodeID == "" {
		o.NodeID = req.NodeName
	}
	t := New(o)
	if err := t.Err(); err != nil {
		return []sdk.Diagnostic{{Message: "peer authentication: " + err.Error()}}
	}
	p.mu.Lock()
	if p.onName != nil {
		t.OnPeerName(p.onName)
	}
	p.t = t
	p.mu.Unlock()
	return nil
}

// Send implements sdk.Transport.
func (p *Plugin) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	p.mu.RLock()
	t := p.t
	p.mu.RUnlock()
	return t.Send(ctx, peer, b)
}
