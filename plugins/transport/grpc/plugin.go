package grpctransport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// ListenOff as the listen key turns the receiving side off: the node sends with this transport
// but takes no batches over it.
const ListenOff = "off"

// Plugin is the grpc transport as a configurable plugin, in-process or served by `herald plugin
// serve transport grpc`. Configure starts its receiving side; Close stops it.
type Plugin struct {
	mu     sync.RWMutex
	t      *Transport
	closed bool
}

var (
	_ sdk.Transport    = (*Plugin)(nil)
	_ sdk.Configurable = (*Plugin)(nil)
	_ sdk.Describer    = (*Plugin)(nil)
)

// NewPlugin returns the plugin with the default options, sending only, until Configure.
func NewPlugin() *Plugin { return &Plugin{t: New(Options{Compress: DefaultCompress})} }

// Config is the grpc transport's config {} block.
type Config struct {
	Listen         string        `config:"listen" description:"host:port where peers' batches are taken; \"off\" takes none (this node only sends); default: the node's host, its port + port_offset"`
	PortOffset     int           `config:"port_offset" default:"1000" description:"added to a node's Eureka port to find its grpc port (the default listen, and peers without an address)"`
	Compress       bool          `config:"compress" default:"false" description:"gzip frames"`
	ConnectTimeout time.Duration `config:"connect_timeout" default:"1s" description:"time to open a peer's connection and stream"`
	ReadTimeout    time.Duration `config:"read_timeout" default:"5s" description:"time to wait for a batch's answer; past it the send counts as congestion"`
}

// Validate implements sdk.Validator.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	bad := func(key, format string, args ...any) {
		diags = append(diags, sdk.Diagnostic{Path: key, Message: fmt.Sprintf(format, args...)})
	}
	if c.Listen != "" && c.Listen != ListenOff {
		if err := checkHostPort(c.Listen); err != nil {
			bad("listen", `want "host:port" (or "off" to take no batches), got %q: %v`, c.Listen, err)
		}
	}
	if c.PortOffset < 1 || c.PortOffset > 65534 {
		bad("port_offset", "want a whole number from 1 to 65534, got %d", c.PortOffset)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout", `want a positive duration such as "1s", got %q`, c.ConnectTimeout)
	}
	if c.ReadTimeout <= 0 {
		bad("read_timeout", `want a positive duration such as "5s", got %q`, c.ReadTimeout)
	}
	return diags
}

// Info implements sdk.Describer.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "grpc", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Configure implements sdk.Configurable: it checks the config block and starts listening.
func (p *Plugin) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	var diags []sdk.Diagnostic
	bad := func(key, format string, args ...any) {
		diags = append(diags, sdk.Diagnostic{Path: key, Message: fmt.Sprintf(format, args...)})
	}
	o := Options{Compress: c.Compress, PortOffset: c.PortOffset, ConnectTimeout: c.ConnectTimeout, ReadTimeout: c.ReadTimeout,
		NodeName: req.NodeName, PeerAuth: req.PeerAuth}
	listen := c.Listen
	switch listen {
	case ListenOff:
		listen = ""
	case "":
		addr, err := sdk.OffsetAddress(req.NodeURL, o.PortOffset)
		if err != nil {
			bad("listen", `cannot take the default from the node's URL %q (%v): set listen = "host:port", or "off"`, req.NodeURL, err)
			return diags
		}
		listen = addr
	}
	host := req.Host
	if host == nil {
		host = noHost{}
	}
	t := New(o)
	if err := t.Err(); err != nil {
		bad("", "peer authentication: %v", err)
		return diags
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		bad("", "the transport is closed")
		return diags
	}
	// The old listener goes first: the new one may want its address.
	_ = p.t.Close()
	p.t = t
	if listen != "" {
		if err := t.Listen(listen, host); err != nil {
			bad("listen", "cannot listen on %s: %v", listen, err)
		}
	}
	return diags
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a TCP port", port)
	}
	return nil
}

func (p *Plugin) current() *Transport {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.t
}

// Send implements sdk.Transport.
func (p *Plugin) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	return p.current().Send(ctx, peer, b)
}

// Stats returns the sending side's counters.
func (p *Plugin) Stats() Stats { return p.current().Stats() }

// Addr returns the receiving side's address, or nil when it does not listen.
func (p *Plugin) Addr() net.Addr { return p.current().Addr() }

// Close implements io.Closer: it stops the receiving side and closes peer connections.
func (p *Plugin) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return p.t.Close()
}

// noHost answers as a plugin host that is not there.
type noHost struct{}

func (noHost) Instance(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, sdk.ErrNoHost
}
func (noHost) Apply(context.Context, []sdk.Item) ([]sdk.ItemResult, error) { return nil, sdk.ErrNoHost }
func (noHost) Replicate(context.Context, []sdk.Item) error                 { return sdk.ErrNoHost }
func (noHost) Receive(context.Context, sdk.Batch) ([]sdk.ItemResult, error) {
	return nil, sdk.ErrNoHost
}
