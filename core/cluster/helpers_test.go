package cluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

func newRegistry(t testing.TB, clock registry.Clock) *registry.Registry {
	t.Helper()
	return registry.New(registry.DefaultConfig(), registry.WithClock(clock))
}

func testInstance(app, id string, lastDirty int64, status registry.Status) *registry.Instance {
	return &registry.Instance{
		InstanceID:         id,
		HostName:           id,
		App:                app,
		IPAddr:             "127.0.0.1",
		Status:             status,
		OverriddenStatus:   registry.StatusUnknown,
		Port:               registry.Port{Number: 8080, Enabled: true},
		SecurePort:         registry.Port{Number: 8443},
		CountryID:          1,
		DataCenterInfo:     registry.DataCenterInfo{Class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", Name: "MyOwn"},
		HasDataCenterInfo:  true,
		LeaseInfo:          registry.LeaseInfo{RenewalIntervalSecs: 30, DurationSecs: 90},
		HasLeaseInfo:       true,
		VIPAddress:         strings.ToLower(app),
		LastDirtyTimestamp: lastDirty,
	}
}

func mustRegister(t testing.TB, reg *registry.Registry, inst *registry.Instance) {
	t.Helper()
	if err := reg.Register(context.Background(), inst, registry.FromClient); err != nil {
		t.Fatalf("register %s/%s: %v", inst.App, inst.ID(), err)
	}
}

// mustRenew renews a lease as a client heartbeat does.
func mustRenew(t testing.TB, reg *registry.Registry, app, id string) {
	t.Helper()
	if !reg.Renew(context.Background(), app, id, registry.FromClient) {
		t.Fatalf("renew %s/%s refused", app, id)
	}
}

// hits counts requests per path.
type hits struct {
	mu sync.Mutex
	m  map[string]int
}

func (h *hits) add(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]int{}
	}
	h.m[path]++
}

func (h *hits) get(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[path]
}

func (h *hits) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.m {
		n += v
	}
	return n
}

func (h *hits) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m = nil
}

// eurekaApps serves GET /eureka/apps from reg as a Eureka node does (no cache, no gate).
func eurekaApps(reg *registry.Registry) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(codec.AppendApplications(nil, codec.JSON, reg.Applications(), codec.Options{}))
	}
}

// testNode is one herald node: a registry, the cluster, and an HTTP server on 127.0.0.1 that serves
// the cluster's endpoints and GET /eureka/apps, counting requests.
type testNode struct {
	reg    *registry.Registry
	srv    *httptest.Server
	c      *Cluster
	hits   hits
	hookMu sync.Mutex
	hook   func(r *http.Request)
}

func (n *testNode) setHook(f func(r *http.Request)) {
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	n.hook = f
}

func (n *testNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.hits.add(r.URL.Path)
	n.hookMu.Lock()
	hook := n.hook
	n.hookMu.Unlock()
	if hook != nil {
		hook(r)
	}
	switch {
	case strings.HasPrefix(r.URL.Path, DefaultAPIPrefix):
		n.c.Handler().ServeHTTP(w, r)
	case r.URL.Path == "/eureka/apps" || r.URL.Path == "/eureka/apps/":
		eurekaApps(n.reg)(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (n *testNode) url() string { return n.srv.URL + "/eureka/" }

// startNodes starts count nodes that list each other (themselves included: self-recognition by
// host and port leaves each node out of its own set). The clusters are built but not started;
// tests drive rounds themselves.
func startNodes(t testing.TB, count int, clock registry.Clock, mutate func(*Config)) []*testNode {
	t.Helper()
	return startNodesWith(t, count, clock, registry.DefaultConfig(), mutate)
}

// startNodesWith is startNodes with the nodes' registry settings.
func startNodesWith(t testing.TB, count int, clock registry.Clock, regCfg registry.Config, mutate func(*Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, count)
	urls := make([]string, count)
	for i := range nodes {
		n := &testNode{reg: registry.New(regCfg, registry.WithClock(clock))}
		n.srv = httptest.NewServer(n)
		t.Cleanup(n.srv.Close)
		nodes[i] = n
		urls[i] = n.url()
	}
	for _, n := range nodes {
		cfg := DefaultConfig()
		cfg.Peers = urls
		cfg.ListenAddr = n.srv.Listener.Addr().String()
		cfg.AntiEntropy.Grace = -1
		if mutate != nil {
			mutate(&cfg)
		}
		c, err := New(cfg, n.reg, nil, WithResolver(&fakeResolver{}), WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		n.c = c
		if err := c.peers.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := len(c.peers.List()); got != count-1 {
			t.Fatalf("node %s has %d peers, want %d", n.url(), got, count-1)
		}
	}
	return nodes
}
