package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/sdk"
)

// Resolver looks names up in DNS. *net.Resolver satisfies it; tests inject a fake.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// PeerSetter receives the peer set whenever it changes. The replication pipeline implements it and
// keeps the queued work of peers present in both the old and the new set, so unchanged peers must be
// passed as equal values, which Peers guarantees.
type PeerSetter interface {
	SetPeers(peers []sdk.Peer)
}

// Peers is the set of this node's peers: the static URLs and the DNS results, without this node.
// It is safe for concurrent use.
type Peers struct {
	cfg      Config
	setter   PeerSetter
	resolver Resolver
	ifaces   func() ([]net.Addr, error)
	logger   hclog.Logger

	// mu serialises recomputations, so a Reload and a periodic refresh cannot interleave their
	// SetPeers calls, and guards the fields below.
	mu      sync.Mutex
	static  []peerURL
	dns     []peerURL // the last non-empty DNS answer
	current []sdk.Peer
	set     bool // SetPeers has been called at least once
}

// NewPeers returns the peer set for cfg. It resolves nothing until Refresh. setter may be nil.
func NewPeers(cfg Config, setter PeerSetter, opts ...Option) (*Peers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	cfg = cfg.withDefaults()
	static, err := parseURLs(cfg.Peers)
	if err != nil {
		return nil, err
	}
	return &Peers{
		cfg:      cfg,
		setter:   setter,
		resolver: o.resolver,
		ifaces:   o.interfaceAddrs,
		logger:   o.logger.Named("peers"),
		static:   static,
	}, nil
}

func parseURLs(raw []string) ([]peerURL, error) {
	out := make([]peerURL, 0, len(raw))
	for _, r := range raw {
		u, err := normalizeURL(r)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// List returns the current peers, static ones first in configured order, then DNS ones sorted.
func (p *Peers) List() []sdk.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.current)
}

// Reload replaces the static URLs (on SIGHUP) and recomputes the set. Peers that are in both the
// old and the new set are passed to SetPeers unchanged, so their queued work survives. An invalid
// URL leaves the set as it was.
func (p *Peers) Reload(ctx context.Context, urls []string) error {
	static, err := parseURLs(urls)
	if err != nil {
		return fmt.Errorf("reload peers: %w", err)
	}
	p.mu.Lock()
	p.static = static
	p.mu.Unlock()
	return p.Refresh(ctx)
}

// Refresh re-resolves DNS and the peers' host names and calls SetPeers if the set changed (and on
// the first call). A DNS failure or an empty answer keeps the previous DNS peers, as Eureka keeps
// its old set; the error is returned after the set was applied.
func (p *Peers) Refresh(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	var errs []error
	if p.cfg.DNS.Name != "" {
		found, err := p.lookupDNS(ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
			p.logger.Warn("DNS lookup failed, keeping the previous DNS peers", "name", p.cfg.DNS.Name, "error", err, "kept", len(p.dns))
		case len(found) == 0:
			p.logger.Warn("DNS answer is empty, keeping the previous DNS peers", "name", p.cfg.DNS.Name, "kept", len(p.dns))
		default:
			p.dns = found
		}
	}

	self := p.selfIdentity(ctx)
	resolved := make(map[string][]netip.Addr)
	seen := make(map[string]bool)
	next := make([]sdk.Peer, 0, len(p.static)+len(p.dns))
	for _, u := range slices.Concat(p.static, p.dns) {
		if seen[u.key] {
			continue
		}
		seen[u.key] = true
		if self.is(ctx, u, p.resolver, resolved) {
			p.logger.Debug("leaving out this node's own URL", "url", u.key)
			continue
		}
		next = append(next, sdk.Peer{Name: u.key, URL: u.url})
	}

	if !p.set || !slices.Equal(next, p.current) {
		p.current = next
		p.set = true
		if p.setter != nil {
			p.setter.SetPeers(slices.Clone(next))
		}
		p.logger.Info("peer set updated", "peers", peerNames(next))
	}
	return errors.Join(errs...)
}

// Run refreshes the set every PeerUpdateInterval (or DNS.Refresh, if shorter) until ctx ends.
func (p *Peers) Run(ctx context.Context) {
	every := p.cfg.PeerUpdateInterval
	if p.cfg.DNS.Name != "" && p.cfg.DNS.Refresh < every {
		every = p.cfg.DNS.Refresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
				p.logger.Warn("peer refresh incomplete", "error", err)
			}
		}
	}
}

func (p *Peers) lookupDNS(ctx context.Context) ([]peerURL, error) {
	d := p.cfg.DNS
	var hostports []string
	if d.SRV {
		_, srvs, err := p.resolver.LookupSRV(ctx, "", "", d.Name)
		if err != nil {
			return nil, fmt.Errorf("DNS SRV lookup of %s: %w", d.Name, err)
		}
		for _, s := range srvs {
			target := strings.TrimSuffix(s.Target, ".")
			if target == "" {
				continue
			}
			hostports = append(hostports, net.JoinHostPort(target, strconv.Itoa(int(s.Port))))
		}
	} else {
		addrs, err := p.resolver.LookupIPAddr(ctx, d.Name)
		if err != nil {
			return nil, fmt.Errorf("DNS lookup of %s: %w", d.Name, err)
		}
		for _, a := range addrs {
			hostports = append(hostports, net.JoinHostPort(a.IP.String(), strconv.Itoa(d.Port)))
		}
	}
	path := d.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	out := make([]peerURL, 0, len(hostports))
	for _, hp := range hostports {
		u, err := normalizeURL(strings.ToLower(d.Scheme) + "://" + hp + path)
		if err != nil {
			return nil, fmt.Errorf("DNS record of %s: %w", d.Name, err)
		}
		out = append(out, u)
	}
	// Resolvers shuffle records; a stable order keeps the set equal between refreshes.
	slices.SortFunc(out, func(a, b peerURL) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

// selfIdentity is what this node is known by, computed once per refresh.
type selfIdentity struct {
	urlKey  string
	urlHost string
	ports   map[int]bool
	addrs   map[netip.Addr]bool
}

// selfIdentity collects this node's ports and addresses: the listen port and SelfURL's port; the
// bound IP, or every interface address when the node listens on all of them; and SelfURL's host
// resolved. Failures only shrink the set, so the worst case is replicating to ourselves (which the
// no-re-replication rule makes harmless), never losing a real peer.
func (p *Peers) selfIdentity(ctx context.Context) selfIdentity {
	s := selfIdentity{ports: map[int]bool{}, addrs: map[netip.Addr]bool{}}
	resolved := map[string][]netip.Addr{}
	if p.cfg.SelfURL != "" {
		if u, err := normalizeURL(p.cfg.SelfURL); err == nil {
			s.urlKey, s.urlHost = u.key, u.host
			s.ports[u.port] = true
			for _, a := range resolveHost(ctx, p.resolver, u.host, resolved) {
				s.addrs[a] = true
			}
		}
	}
	if p.cfg.ListenAddr == "" {
		return s
	}
	host, port, err := splitListen(p.cfg.ListenAddr)
	if err != nil {
		return s
	}
	if port > 0 {
		s.ports[port] = true
	}
	if host != "" {
		if a, err := netip.ParseAddr(host); err != nil || !a.IsUnspecified() {
			for _, a := range resolveHost(ctx, p.resolver, host, resolved) {
				s.addrs[a] = true
			}
			return s
		}
	}
	ifaddrs, err := p.ifaces()
	if err != nil {
		p.logger.Warn("cannot list interface addresses for self-recognition", "error", err)
		return s
	}
	for _, ia := range ifaddrs {
		var ip net.IP
		switch v := ia.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			s.addrs[a.Unmap()] = true
		}
	}
	return s
}

// is reports whether u names this node: equal to SelfURL, or on one of our ports with a host that
// is SelfURL's host or resolves to one of our addresses.
func (s selfIdentity) is(ctx context.Context, u peerURL, r Resolver, cache map[string][]netip.Addr) bool {
	if s.urlKey != "" && u.key == s.urlKey {
		return true
	}
	if !s.ports[u.port] {
		return false
	}
	if s.urlHost != "" && u.host == s.urlHost {
		return true
	}
	for _, a := range resolveHost(ctx, r, u.host, cache) {
		if s.addrs[a] {
			return true
		}
	}
	return false
}

// resolveHost returns the addresses of host (itself when it is a literal), memoised in cache. A
// failed lookup yields none: the URL is then not recognised as this node and stays a peer.
func resolveHost(ctx context.Context, r Resolver, host string, cache map[string][]netip.Addr) []netip.Addr {
	if a, ok := cache[host]; ok {
		return a
	}
	var out []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		out = []netip.Addr{a.Unmap()}
	} else if ips, err := r.LookupIPAddr(ctx, host); err == nil {
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	cache[host] = out
	return out
}

func peerNames(ps []sdk.Peer) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}
