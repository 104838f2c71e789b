package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// fakeResolver answers from maps; names it does not know fail like NXDOMAIN.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	srv   map[string][]*net.SRV
	fail  map[string]bool
}

func (r *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ips, ok := r.hosts[host]
	if !ok || r.fail[host] {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, 0, len(ips))
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func (r *fakeResolver) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs, ok := r.srv[name]
	if !ok || r.fail[name] {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return name, slices.Clone(recs), nil
}

func (r *fakeResolver) set(f func(r *fakeResolver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// recordingSetter records every SetPeers call.
type recordingSetter struct {
	mu    sync.Mutex
	calls [][]sdk.Peer
}

func (s *recordingSetter) SetPeers(p []sdk.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, p)
}

func (s *recordingSetter) snapshot() [][]sdk.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func ifaces(cidrs ...string) func() ([]net.Addr, error) {
	return func() ([]net.Addr, error) {
		var out []net.Addr
		for _, c := range cidrs {
			ip, n, err := net.ParseCIDR(c)
			if err != nil {
				return nil, err
			}
			n.IP = ip
			out = append(out, n)
		}
		return out, nil
	}
}

func names(ps []sdk.Peer) []string { return peerNames(ps) }

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		in, url, key string
		port         int
		wantErr      bool
	}{
		{in: "http://127.0.0.1:8761/eureka/", url: "http://127.0.0.1:8761/eureka/", key: "http://127.0.0.1:8761/eureka/", port: 8761},
		{in: "http://127.0.0.1:8761/eureka", url: "http://127.0.0.1:8761/eureka/", key: "http://127.0.0.1:8761/eureka/", port: 8761},
		{in: " HTTP://Node-A.Example:80/eureka ", url: "http://node-a.example/eureka/", key: "http://node-a.example/eureka/", port: 80},
		{in: "https://node:443/eureka/v2", url: "https://node/eureka/v2/", key: "https://node/eureka/v2/", port: 443},
		{in: "http://node", url: "http://node/", key: "http://node/", port: 80},
		{in: "http://user:secret@node:8761/eureka/", url: "http://user:secret@node:8761/eureka/", key: "http://node:8761/eureka/", port: 8761},
		{in: "http://[::1]:8761/eureka/", url: "http://[::1]:8761/eureka/", key: "http://[::1]:8761/eureka/", port: 8761},
		{in: "node:8761", wantErr: true},
		{in: "ftp://node/", wantErr: true},
		{in: "http:///eureka/", wantErr: true},
		{in: "http://node:99999/", wantErr: true},
		{in: "http://node/eureka/?x=1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := normalizeURL(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("normalizeURL(%q) = %+v, want an error", tt.in, u)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalizeURL(%q): %v", tt.in, err)
			}
			if u.url != tt.url || u.key != tt.key || u.port != tt.port {
				t.Errorf("normalizeURL(%q) = url %q key %q port %d, want %q %q %d", tt.in, u.url, u.key, u.port, tt.url, tt.key, tt.port)
			}
		})
	}
}

func TestPeersSelfRecognition(t *testing.T) {
	resolver := &fakeResolver{hosts: map[string][]string{
		"localhost":      {"127.0.0.1", "::1"},
		"node-a.example": {"10.0.0.1"},
		"node-b.example": {"10.0.0.2"},
		"myhost":         {"192.168.1.10"},
	}}
	tests := []struct {
		name   string
		listen string
		self   string
		ifaces []string
		peers  []string
		want   []string
	}{
		{
			name:   "same host different ports are peers",
			listen: "127.0.0.1:8761",
			peers:  []string{"http://127.0.0.1:8761/eureka/", "http://127.0.0.1:8762/eureka/", "http://127.0.0.1:8763/eureka"},
			want:   []string{"http://127.0.0.1:8762/eureka/", "http://127.0.0.1:8763/eureka/"},
		},
		{
			name:   "host name resolving to our address with our port is us",
			listen: "127.0.0.1:8761",
			peers:  []string{"http://localhost:8761/eureka/", "http://localhost:8762/eureka/"},
			want:   []string{"http://localhost:8762/eureka/"},
		},
		{
			name:   "explicit self URL",
			listen: "0.0.0.0:9999",
			self:   "http://node-a.example:8761/eureka/",
			ifaces: []string{"127.0.0.1/8"},
			peers:  []string{"http://NODE-A.example:8761/eureka", "http://node-b.example:8761/eureka/"},
			want:   []string{"http://node-b.example:8761/eureka/"},
		},
		{
			name:  "self URL host resolved: an IP spelling of it is us",
			self:  "http://node-a.example:8761/eureka/",
			peers: []string{"http://10.0.0.1:8761/eureka/", "http://10.0.0.1:8762/eureka/"},
			want:  []string{"http://10.0.0.1:8762/eureka/"},
		},
		{
			name:   "listening on all interfaces",
			listen: ":8761",
			ifaces: []string{"127.0.0.1/8", "192.168.1.10/24"},
			peers:  []string{"http://192.168.1.10:8761/eureka/", "http://myhost:8761/eureka/", "http://192.168.1.11:8761/eureka/", "http://127.0.0.1:8762/eureka/"},
			want:   []string{"http://192.168.1.11:8761/eureka/", "http://127.0.0.1:8762/eureka/"},
		},
		{
			name:   "bound to one address: another local address on our port is someone else",
			listen: "127.0.0.1:8761",
			ifaces: []string{"127.0.0.1/8", "192.168.1.10/24"},
			peers:  []string{"http://192.168.1.10:8761/eureka/"},
			want:   []string{"http://192.168.1.10:8761/eureka/"},
		},
		{
			name:   "default port",
			listen: "127.0.0.1:80",
			peers:  []string{"http://127.0.0.1/eureka/", "https://127.0.0.1/eureka/"},
			want:   []string{"https://127.0.0.1/eureka/"},
		},
		{
			name:   "unresolvable host stays a peer",
			listen: "127.0.0.1:8761",
			peers:  []string{"http://nowhere.invalid:8761/eureka/"},
			want:   []string{"http://nowhere.invalid:8761/eureka/"},
		},
		{
			name:   "spellings of one peer are one peer",
			listen: "127.0.0.1:8761",
			peers:  []string{"http://127.0.0.1:8762/eureka", "HTTP://127.0.0.1:8762/eureka/", "http://u:p@127.0.0.1:8762/eureka/"},
			want:   []string{"http://127.0.0.1:8762/eureka/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Peers: tt.peers, SelfURL: tt.self, ListenAddr: tt.listen}
			p, err := NewPeers(cfg, nil, WithResolver(resolver), WithInterfaceAddrs(ifaces(tt.ifaces...)))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := names(p.List()); !slices.Equal(got, tt.want) {
				t.Errorf("peers = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPeersDNS(t *testing.T) {
	tests := []struct {
		name string
		dns  DNSConfig
		want []string
	}{
		{
			name: "A records with a port",
			dns:  DNSConfig{Name: "eureka.example", Port: 8761},
			want: []string{"http://127.0.0.2:8761/eureka/", "http://127.0.0.3:8761/eureka/"},
		},
		{
			name: "SRV records",
			dns:  DNSConfig{Name: "_eureka._tcp.example", SRV: true, Path: "/eureka/v2/"},
			want: []string{"http://node-b.example:8762/eureka/v2/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeResolver{
				hosts: map[string][]string{
					"eureka.example": {"127.0.0.3", "127.0.0.1", "127.0.0.2"},
					"node-a.example": {"127.0.0.1"},
					"node-b.example": {"127.0.0.1"},
				},
				srv: map[string][]*net.SRV{"_eureka._tcp.example": {
					{Target: "node-a.example.", Port: 8761},
					{Target: "node-b.example.", Port: 8762},
				}},
			}
			p, err := NewPeers(Config{DNS: tt.dns, ListenAddr: "127.0.0.1:8761"}, nil, WithResolver(r))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := names(p.List()); !slices.Equal(got, tt.want) {
				t.Errorf("peers = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPeersDNSFailureKeepsOldSet(t *testing.T) {
	r := &fakeResolver{hosts: map[string][]string{"eureka.example": {"127.0.0.2"}}}
	setter := &recordingSetter{}
	p, err := NewPeers(Config{DNS: DNSConfig{Name: "eureka.example", Port: 8761}, ListenAddr: "127.0.0.1:8761"}, setter, WithResolver(r))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"http://127.0.0.2:8761/eureka/"}

	r.set(func(r *fakeResolver) { r.hosts["eureka.example"] = nil })
	if err := p.Refresh(ctx); err != nil {
		t.Fatalf("empty answer: %v", err)
	}
	if got := names(p.List()); !slices.Equal(got, want) {
		t.Errorf("after an empty answer peers = %q, want %q", got, want)
	}

	r.set(func(r *fakeResolver) { r.fail = map[string]bool{"eureka.example": true} })
	var dnsErr *net.DNSError
	if err := p.Refresh(ctx); !errors.As(err, &dnsErr) {
		t.Errorf("failed lookup: err = %v, want a *net.DNSError", err)
	}
	if got := names(p.List()); !slices.Equal(got, want) {
		t.Errorf("after a failed lookup peers = %q, want %q", got, want)
	}
	if n := len(setter.snapshot()); n != 1 {
		t.Errorf("SetPeers called %d times, want 1 (the set never changed)", n)
	}
}

func TestPeersRunPicksUpDNSChanges(t *testing.T) {
	r := &fakeResolver{hosts: map[string][]string{"eureka.example": {"127.0.0.2"}}}
	setter := &recordingSetter{}
	cfg := Config{DNS: DNSConfig{Name: "eureka.example", Port: 8761, Refresh: 5 * time.Millisecond}, ListenAddr: "127.0.0.1:8761"}
	p, err := NewPeers(cfg, setter, WithResolver(r))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	r.set(func(r *fakeResolver) { r.hosts["eureka.example"] = []string{"127.0.0.2", "127.0.0.4"} })
	want := []string{"http://127.0.0.2:8761/eureka/", "http://127.0.0.4:8761/eureka/"}
	waitFor(t, 2*time.Second, func() bool { return slices.Equal(names(p.List()), want) })
	calls := setter.snapshot()
	if last := names(calls[len(calls)-1]); !slices.Equal(last, want) {
		t.Errorf("last SetPeers = %q, want %q", last, want)
	}
}

func TestPeersReload(t *testing.T) {
	setter := &recordingSetter{}
	cfg := Config{
		Peers:      []string{"http://127.0.0.1:8761/eureka/", "http://127.0.0.1:8762/eureka/", "http://127.0.0.1:8763/eureka/"},
		ListenAddr: "127.0.0.1:8761",
	}
	p, err := NewPeers(cfg, setter, WithResolver(&fakeResolver{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := p.List()

	// 8762 stays (spelled differently), 8763 goes, 8764 comes.
	if err := p.Reload(ctx, []string{"http://127.0.0.1:8761/eureka/", "http://127.0.0.1:8764/eureka/", "HTTP://127.0.0.1:8762/eureka"}); err != nil {
		t.Fatal(err)
	}
	calls := setter.snapshot()
	if len(calls) != 2 {
		t.Fatalf("SetPeers called %d times, want 2", len(calls))
	}
	got := calls[1]
	if want := []string{"http://127.0.0.1:8764/eureka/", "http://127.0.0.1:8762/eureka/"}; !slices.Equal(names(got), want) {
		t.Fatalf("reloaded peers = %q, want %q", names(got), want)
	}
	if got[1] != before[0] {
		t.Errorf("unchanged peer changed value: %+v, was %+v", got[1], before[0])
	}

	// The same set again: the pipeline is not disturbed.
	if err := p.Reload(ctx, []string{"http://127.0.0.1:8764/eureka/", "http://127.0.0.1:8762/eureka/"}); err != nil {
		t.Fatal(err)
	}
	if n := len(setter.snapshot()); n != 2 {
		t.Errorf("SetPeers called %d times after an identical reload, want 2", n)
	}

	// A bad URL changes nothing.
	if err := p.Reload(ctx, []string{"ftp://x/"}); err == nil {
		t.Error("Reload with a bad URL succeeded")
	}
	if n := len(setter.snapshot()); n != 2 {
		t.Errorf("SetPeers called after a failed reload")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
