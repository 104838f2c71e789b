package cluster

import (
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/registry"
)

// Option changes how a Cluster or Peers is built.
type Option func(*options)

type options struct {
	resolver       Resolver
	interfaceAddrs func() ([]net.Addr, error)
	clock          registry.Clock
	logger         hclog.Logger
	client         *http.Client
	jitter         func(time.Duration) time.Duration
	validate       Validator
}

// WithResolver sets the DNS resolver (default net.DefaultResolver).
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithInterfaceAddrs sets how this machine's addresses are listed (default net.InterfaceAddrs).
func WithInterfaceAddrs(f func() ([]net.Addr, error)) Option {
	return func(o *options) { o.interfaceAddrs = f }
}

// WithClock sets the clock of the read gate (tests use a fake one).
func WithClock(c registry.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger.
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the client used for startup sync and anti-entropy requests. Request time
// limits come from the configuration, so the client needs none of its own.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

func buildOptions(opts []Option) options {
	o := options{
		resolver:       net.DefaultResolver,
		interfaceAddrs: net.InterfaceAddrs,
		clock:          registry.SystemClock{},
		logger:         hclog.NewNullLogger(),
		client:         defaultClient(),
		jitter:         jitter,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// defaultClient has the connect timeout of Eureka's peer client (1 s) so that a dead peer costs
// little; the whole-request limits are per call.
func defaultClient() *http.Client { return &http.Client{Transport: DefaultTransport()} }

// DefaultTransport is the transport of the client used for startup sync and anti-entropy, for a
// caller that adds TLS or request signing to it (see WithHTTPClient).
func DefaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 4
	t.IdleConnTimeout = 30 * time.Second
	return t
}
