package cluster_test

// Peer discovery against a real DNS server (github.com/miekg/dns on a UDP socket of this test)
// that answers as Kubernetes' DNS answers for the headless Service of a StatefulSet: SRV records
// _eureka._tcp.<service> with one target per pod, A records for each pod's name, and A records of
// every pod for the service name itself. Pods appear (scale up) and disappear (scale down, or a
// pod not ready when the Service does not publish not-ready addresses).

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/heraldhq/herald/core/cluster"
	"github.com/heraldhq/herald/sdk"
)

const (
	svcName = "herald.prod.svc.cluster.local."
	srvName = "_eureka._tcp." + svcName
	podPort = 8761
)

// headlessDNS is a DNS server whose records are the pods of a headless Service.
type headlessDNS struct {
	addr string

	mu   sync.Mutex
	pods map[string]string // pod name (herald-0) -> IP
}

func newHeadlessDNS(t *testing.T) *headlessDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &headlessDNS{addr: pc.LocalAddr().String(), pods: map[string]string{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	return h
}

func (h *headlessDNS) set(pods map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pods = pods
}

func (h *headlessDNS) podFQDN(pod string) string { return pod + "." + svcName }

// ServeDNS answers SRV for the service's named port, A for the service and for each pod, and
// NXDOMAIN for anything else (or for the service when it has no pods).
func (h *headlessDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	known := false
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 5}
		}
		names := make([]string, 0, len(h.pods))
		for pod := range h.pods {
			names = append(names, pod)
		}
		slices.Sort(names)
		switch name {
		case srvName:
			known = len(names) > 0
			if q.Qtype == dns.TypeSRV {
				for _, pod := range names {
					m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 0, Weight: 100 / uint16(len(names)),
						Port: podPort, Target: h.podFQDN(pod)})
					m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: h.podFQDN(pod), Rrtype: dns.TypeA,
						Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(h.pods[pod])})
				}
			}
		case svcName:
			known = len(names) > 0
			if q.Qtype == dns.TypeA {
				for _, pod := range names {
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(h.pods[pod])})
				}
			}
		default:
			for _, pod := range names {
				if name == h.podFQDN(pod) {
					known = true
					if q.Qtype == dns.TypeA {
						m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(h.pods[pod])})
					}
				}
			}
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// resolver is a real Go resolver that sends every query to the test's DNS server.
func (h *headlessDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, h.addr)
	}}
}

type recordingSetter struct {
	mu   sync.Mutex
	sets [][]sdk.Peer
}

func (r *recordingSetter) SetPeers(p []sdk.Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, p)
}

func (r *recordingSetter) last() []sdk.Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

func peerURLs(ps []sdk.Peer) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.URL)
	}
	slices.Sort(out)
	return out
}

// waitPeers polls until both the peer set and what the pipeline was last given are want.
func waitPeers(t *testing.T, p *cluster.Peers, set *recordingSetter, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, given := peerURLs(p.List()), peerURLs(set.last())
		if slices.Equal(got, want) && slices.Equal(given, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers %v (pipeline given %v), want %v", got, given, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDNSPeersFollowAHeadlessService(t *testing.T) {
	for _, mode := range []struct {
		name string
		dns  cluster.DNSConfig
		url  func(pod, ip string) string
	}{
		// SRV: peers are named by the pods' DNS names, which TLS certificates can carry.
		{"SRV records", cluster.DNSConfig{Name: strings.TrimSuffix(srvName, "."), SRV: true, Scheme: "https"},
			func(pod, _ string) string {
				return fmt.Sprintf("https://%s:%d/eureka/", pod+"."+strings.TrimSuffix(svcName, "."), podPort)
			}},
		// A records of the service name: peers are the pods' addresses.
		{"A records", cluster.DNSConfig{Name: strings.TrimSuffix(svcName, "."), Port: podPort},
			func(_, ip string) string { return fmt.Sprintf("http://%s:%d/eureka/", ip, podPort) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHeadlessDNS(t)
			// This node is herald-0 (127.0.0.1); the other pods have loopback addresses of their own.
			h.set(map[string]string{"herald-0": "127.0.0.1", "herald-1": "127.0.0.2", "herald-2": "127.0.0.3"})
			cfg := cluster.DefaultConfig()
			cfg.DNS = mode.dns
			cfg.DNS.Refresh = 50 * time.Millisecond
			cfg.ListenAddr = fmt.Sprintf("127.0.0.1:%d", podPort)
			// As deploy/kubernetes configures it: the pod's name under the Service. It recognises
			// the node's own SRV record even when its name does not resolve.
			cfg.SelfURL = fmt.Sprintf("https://herald-0.%s:%d/eureka/", strings.TrimSuffix(svcName, "."), podPort)
			set := &recordingSetter{}
			p, err := cluster.NewPeers(cfg, set, cluster.WithResolver(h.resolver()))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			// The node finds the other two pods and leaves itself out.
			waitPeers(t, p, set, mode.url("herald-1", "127.0.0.2"), mode.url("herald-2", "127.0.0.3"))

			// Scale up: herald-3 appears.
			h.set(map[string]string{"herald-0": "127.0.0.1", "herald-1": "127.0.0.2", "herald-2": "127.0.0.3", "herald-3": "127.0.0.4"})
			waitPeers(t, p, set, mode.url("herald-1", "127.0.0.2"), mode.url("herald-2", "127.0.0.3"), mode.url("herald-3", "127.0.0.4"))

			// Scale down: herald-2 and herald-3 go.
			h.set(map[string]string{"herald-0": "127.0.0.1", "herald-1": "127.0.0.2"})
			waitPeers(t, p, set, mode.url("herald-1", "127.0.0.2"))

			// The name vanishes altogether (NXDOMAIN): as Eureka does, the node keeps the last peers
			// it found rather than replicating to no one.
			h.set(map[string]string{})
			if err := p.Refresh(context.Background()); err == nil {
				t.Fatal("a refresh while the name does not exist reported no error")
			}
			if got, want := peerURLs(p.List()), []string{mode.url("herald-1", "127.0.0.2")}; !slices.Equal(got, want) {
				t.Fatalf("after NXDOMAIN the peers are %v, want the last ones found, %v", got, want)
			}

			// herald-0 restarts with a new address, and the others come back.
			h.set(map[string]string{"herald-0": "127.0.0.1", "herald-1": "127.0.0.2", "herald-2": "127.0.0.5"})
			waitPeers(t, p, set, mode.url("herald-1", "127.0.0.2"), mode.url("herald-2", "127.0.0.5"))
		})
	}
}
