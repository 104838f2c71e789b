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

const knownKeys = "compress, connect_timeout, listen, port_offset, read_timeout"

// Info implements sdk.Describer.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{Name: "grpc", Kind: sdk.KindTransport, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "listen", Type: "string", Default: "the node's host, its port + port_offset",
			Description: `host:port where peers' batches are taken; "off" takes none (this node only sends)`},
		{Path: "port_offset", Type: "number", Default: DefaultPortOffset,
			Description: "added to a node's Eureka port to find its grpc port (the default listen, and peers without an address)"},
		{Path: "compress", Type: "bool", Default: DefaultCompress, Description: "gzip frames"},
		{Path: "connect_timeout", Type: "duration", Default: DefaultConnectTimeout.String(), Description: "time to open a peer's connection and stream"},
		{Path: "read_timeout", Type: "duration", Default: DefaultReadTimeout.String(),
			Description: "time to wait for a batch's answer; past it the send counts as congestion"},
	}}
}

// Configure implements sdk.Configurable: it checks the config block and starts listening.
func (p *Plugin) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	bad := func(key, format string, args ...any) {
		diags = append(diags, sdk.Diagnostic{Path: key, Message: fmt.Sprintf(format, args...)})
	}
	o := Options{Compress: DefaultCompress, PortOffset: DefaultPortOffset, NodeName: req.NodeName, PeerAuth: req.PeerAuth}
	listen, listenSet := "", false
	for k, v := range req.Config {
		switch k {
		case "listen":
			s, ok := v.(string)
			switch {
			case !ok:
				bad(k, `want "host:port" or "off", got %v`, v)
			case s == ListenOff:
				listen, listenSet = "", true
			default:
				if err := checkHostPort(s); err != nil {
					bad(k, `want "host:port" (or "off" to take no batches), got %q: %v`, s, err)
				}
				listen, listenSet = s, true
			}
		case "port_offset":
			n, ok := wholeNumber(v)
			if !ok || n < 1 || n > 65534 {
				bad(k, "want a whole number from 1 to 65534, got %v", v)
				continue
			}
			o.PortOffset = n
		case "compress":
			b, ok := v.(bool)
			if s, isString := v.(string); isString {
				var err error
				b, err = strconv.ParseBool(s)
				ok = err == nil
			}
			if !ok {
				bad(k, "want true or false, got %v", v)
			}
			o.Compress = b
		case "connect_timeout", "read_timeout":
			s, ok := v.(string)
			d, err := time.ParseDuration(s)
			if !ok || err != nil || d <= 0 {
				bad(k, "want a positive duration such as \"1s\", got %v", v)
				continue
			}
			if k == "connect_timeout" {
				o.ConnectTimeout = d
			} else {
				o.ReadTimeout = d
			}
		default:
			bad(k, "unknown key (known: %s)", knownKeys)
		}
	}
	if len(diags) > 0 {
		return diags
	}
	if !listenSet {
		addr, err := offsetAddress(req.NodeURL, o.PortOffset)
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

// wholeNumber reads a number from HCL (float64), JSON (float64), Go (int) or a -set flag (string).
func wholeNumber(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), x == float64(int(x))
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
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
