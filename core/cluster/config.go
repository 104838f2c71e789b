package cluster

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults applied by DefaultConfig and, for durations left zero where zero has no meaning, by New.
const (
	// DefaultPeerUpdateInterval is Eureka's peerEurekaNodesUpdateIntervalMs.
	DefaultPeerUpdateInterval = 10 * time.Minute
	// DefaultSyncRetries is Eureka's numberRegistrySyncRetries.
	DefaultSyncRetries = 5
	// DefaultSyncRetryWait is Eureka's registrySyncRetryWaitMs.
	DefaultSyncRetryWait = 30 * time.Second
	// DefaultWaitWhenEmpty is Eureka's waitTimeInMsWhenSyncEmpty.
	DefaultWaitWhenEmpty = 5 * time.Minute
	// DefaultAntiEntropyInterval is how often a node compares digests with each peer.
	DefaultAntiEntropyInterval = 30 * time.Second
	// DefaultAntiEntropyGrace is how long a difference must persist before it is repaired. It covers
	// the replication pipeline's batching delay (500 ms) and one send, so anti-entropy does not race
	// writes that are merely in flight.
	DefaultAntiEntropyGrace = 2 * time.Second
	// DefaultRequestTimeout bounds one anti-entropy request to a peer.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultSyncTimeout bounds one GET /apps of the startup sync; a full registry can be large.
	DefaultSyncTimeout = 30 * time.Second
	// DefaultAPIPrefix is where the herald-specific endpoints live on every node.
	DefaultAPIPrefix = "/herald/v1/"
)

// Config is what the cluster needs to know. The node maps its configuration file onto it. Durations
// that have no meaningful zero (intervals, timeouts) take their defaults when zero; counts and waits
// where zero means "off" are taken as given, so start from DefaultConfig.
type Config struct {
	// Peers are the Eureka base URLs of the cluster's nodes (http://host:port/eureka/). This node's
	// own URL may be listed; it is recognised and left out.
	Peers []string

	// SelfURL is this node's advertised Eureka base URL. A peer URL equal to it (after
	// normalisation) is this node, whatever its host resolves to. Optional.
	SelfURL string

	// ListenAddr is the address the node's HTTP server is bound to (host:port, as returned by the
	// listener, so ":0" has been replaced by the real port). A peer URL is this node when its port is
	// this port (or SelfURL's) and its host resolves to the bound IP, or to any address of this
	// machine when the host part is empty or unspecified (0.0.0.0, ::).
	ListenAddr string

	// DNS, when Name is set, adds the peers found in DNS to Peers.
	DNS DNSConfig

	// PeerUpdateInterval is how often the peer set is recomputed (host names re-resolved). Zero
	// means DefaultPeerUpdateInterval.
	PeerUpdateInterval time.Duration

	// Sync configures the startup sync.
	Sync SyncConfig

	// AntiEntropy configures the digest exchange.
	AntiEntropy AntiEntropyConfig

	// APIPrefix is the path under which every node serves the herald endpoints (Handler). Zero means
	// DefaultAPIPrefix. Peers are asked at the same path on their URL's scheme, host and port.
	APIPrefix string
}

// DNSConfig finds peers in DNS.
type DNSConfig struct {
	// Name is the name to resolve: a host name whose A/AAAA records are the peers, or, with SRV, a
	// full service name such as _eureka._tcp.example.com.
	Name string
	// SRV selects SRV records (target and port per peer) instead of A/AAAA records and Port.
	SRV bool
	// Port is the peers' port for A/AAAA records.
	Port int
	// Scheme is "http" (default) or "https".
	Scheme string
	// Path is the Eureka base path on each peer; default "/eureka/".
	Path string
	// Refresh is how often the name is re-resolved; zero means PeerUpdateInterval.
	Refresh time.Duration
}

// SyncConfig configures the startup sync (Eureka's syncUp) and the read gate after it.
type SyncConfig struct {
	// Retries is the number of rounds over the peers (numberRegistrySyncRetries). Zero skips the
	// sync: the node opens with an empty registry at once.
	Retries int
	// RetryWait is the pause between rounds (registrySyncRetryWaitMs).
	RetryWait time.Duration
	// WaitWhenEmpty is how long reads are refused after opening when the sync copied nothing
	// (waitTimeInMsWhenSyncEmpty). Zero never gates reads, also not during the sync.
	WaitWhenEmpty time.Duration
	// Timeout bounds one GET /apps. Zero means DefaultSyncTimeout.
	Timeout time.Duration
}

// AntiEntropyConfig configures the digest exchange between nodes.
type AntiEntropyConfig struct {
	// Enabled turns the exchange on. Peers that do not serve the endpoints (Eureka servers) are
	// skipped at the cost of one request per round.
	Enabled bool
	// Interval is the mean time between rounds; each wait is jittered by ±10% so that nodes started
	// together do not hit each other in lockstep. Zero means DefaultAntiEntropyInterval.
	Interval time.Duration
	// Grace is how long a difference must persist before it is repaired: differences are compared
	// twice, Grace apart. Zero means DefaultAntiEntropyGrace; a negative value compares once.
	Grace time.Duration
	// RequestTimeout bounds each request to a peer. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// DefaultConfig returns Eureka's defaults with anti-entropy enabled.
func DefaultConfig() Config {
	return Config{
		PeerUpdateInterval: DefaultPeerUpdateInterval,
		Sync: SyncConfig{
			Retries:       DefaultSyncRetries,
			RetryWait:     DefaultSyncRetryWait,
			WaitWhenEmpty: DefaultWaitWhenEmpty,
			Timeout:       DefaultSyncTimeout,
		},
		AntiEntropy: AntiEntropyConfig{
			Enabled:        true,
			Interval:       DefaultAntiEntropyInterval,
			Grace:          DefaultAntiEntropyGrace,
			RequestTimeout: DefaultRequestTimeout,
		},
		APIPrefix: DefaultAPIPrefix,
	}
}

// withDefaults fills the zero durations that have no meaning of their own.
func (c Config) withDefaults() Config {
	if c.PeerUpdateInterval <= 0 {
		c.PeerUpdateInterval = DefaultPeerUpdateInterval
	}
	if c.Sync.Timeout <= 0 {
		c.Sync.Timeout = DefaultSyncTimeout
	}
	if c.AntiEntropy.Interval <= 0 {
		c.AntiEntropy.Interval = DefaultAntiEntropyInterval
	}
	if c.AntiEntropy.Grace == 0 {
		c.AntiEntropy.Grace = DefaultAntiEntropyGrace
	}
	if c.AntiEntropy.RequestTimeout <= 0 {
		c.AntiEntropy.RequestTimeout = DefaultRequestTimeout
	}
	if c.APIPrefix == "" {
		c.APIPrefix = DefaultAPIPrefix
	}
	if !strings.HasPrefix(c.APIPrefix, "/") {
		c.APIPrefix = "/" + c.APIPrefix
	}
	if !strings.HasSuffix(c.APIPrefix, "/") {
		c.APIPrefix += "/"
	}
	if c.DNS.Name != "" {
		if c.DNS.Scheme == "" {
			c.DNS.Scheme = "http"
		}
		if c.DNS.Path == "" {
			c.DNS.Path = "/eureka/"
		}
		if c.DNS.Refresh <= 0 {
			c.DNS.Refresh = c.PeerUpdateInterval
		}
	}
	return c
}

// Validate reports every problem with the configuration, naming the field.
func (c Config) Validate() error {
	var errs []error
	for i, u := range c.Peers {
		if _, err := normalizeURL(u); err != nil {
			errs = append(errs, fmt.Errorf("peers[%d]: %w", i, err))
		}
	}
	if c.SelfURL != "" {
		if _, err := normalizeURL(c.SelfURL); err != nil {
			errs = append(errs, fmt.Errorf("self_url: %w", err))
		}
	}
	if c.ListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w", c.ListenAddr, err))
		}
	}
	if c.DNS.Name != "" {
		if !c.DNS.SRV && (c.DNS.Port <= 0 || c.DNS.Port > 65535) {
			errs = append(errs, fmt.Errorf("dns.port %d: must be 1-65535 for A/AAAA records", c.DNS.Port))
		}
		switch strings.ToLower(c.DNS.Scheme) {
		case "", "http", "https":
		default:
			errs = append(errs, fmt.Errorf("dns.scheme %q: must be http or https", c.DNS.Scheme))
		}
	}
	if c.Sync.Retries < 0 {
		errs = append(errs, fmt.Errorf("sync.retries %d: must not be negative", c.Sync.Retries))
	}
	if c.Sync.RetryWait < 0 {
		errs = append(errs, fmt.Errorf("sync.retry_wait %s: must not be negative", c.Sync.RetryWait))
	}
	if c.Sync.WaitWhenEmpty < 0 {
		errs = append(errs, fmt.Errorf("sync.wait_when_empty %s: must not be negative", c.Sync.WaitWhenEmpty))
	}
	return errors.Join(errs...)
}
