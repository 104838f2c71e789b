package eureka_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dashNode is a registry and its handler behind a real HTTP server, for dashboard tests.
type dashNode struct {
	reg *registry.Registry
	srv *httptest.Server
}

func newDashNode(t testing.TB, clock registry.Clock, rc func(*registry.Config), open bool, opts func(*eureka.Options)) *dashNode {
	t.Helper()
	cfg := registry.DefaultConfig()
	if rc != nil {
		rc(&cfg)
	}
	var ropts []registry.Option
	if clock != nil {
		ropts = append(ropts, registry.WithClock(clock))
	}
	reg := registry.New(cfg, ropts...)
	if open {
		reg.OpenForTraffic(0)
	}
	o := eureka.Options{Registry: reg, Clock: clock}
	if opts != nil {
		opts(&o)
	}
	srv := httptest.NewServer(eureka.NewHandler(o))
	t.Cleanup(srv.Close)
	return &dashNode{reg: reg, srv: srv}
}

// add registers instances directly in the registry.
func (n *dashNode) add(t testing.TB, app string, count int, decorate func(i int, inst *registry.Instance)) {
	t.Helper()
	for i := range count {
		inst := &registry.Instance{
			InstanceID: fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal:%s:8080", i/65536, i/256%256, i%256, strings.ToLower(app)),
			HostName:   fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal", i/65536, i/256%256, i%256),
			App:        app,
			IPAddr:     fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256),
			Status:     registry.StatusUp,
			Port:       registry.Port{Number: 8080, Enabled: true},
			VIPAddress: strings.ToLower(app),
			HomePageURL: fmt.Sprintf("http://ip-10-%d-%d-%d.eu-west-1.compute.internal:8080/",
				i/65536, i/256%256, i%256),
			StatusPageURL:      fmt.Sprintf("http://ip-10-%d-%d-%d.eu-west-1.compute.internal:8080/info", i/65536, i/256%256, i%256),
			DataCenterInfo:     registry.DataCenterInfo{Class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", Name: "MyOwn"},
			HasDataCenterInfo:  true,
			LastDirtyTimestamp: 1000,
		}
		if i%10 == 9 {
			inst.Status = registry.StatusDown
		}
		if decorate != nil {
			decorate(i, inst)
		}
		if err := n.reg.Register(context.Background(), inst, registry.FromClient); err != nil {
			t.Fatalf("register %s/%s: %v", app, inst.InstanceID, err)
		}
	}
}

// get fetches a dashboard page and returns its (uncompressed) body.
func (n *dashNode) get(t testing.TB, query string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.srv.URL+"/"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /%s: %v", query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /%s: %d %s", query, resp.StatusCode, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET /%s: Content-Security-Policy %q", query, csp)
	}
	return string(b)
}

func wantIn(t *testing.T, page, what string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(page, s) {
			t.Errorf("%s lacks %q", what, s)
		}
	}
}

func wantNotIn(t *testing.T, page, what string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(page, s) {
			t.Errorf("%s shows %q", what, s)
		}
	}
}

func TestDashboardPaginationAndSearch(t *testing.T) {
	n := newDashNode(t, nil, nil, true, func(o *eureka.Options) {
		o.Dashboard = eureka.DashboardOptions{NodeName: "node-a", Version: "1.2.3 (commit abc)", MetricsPath: "/metrics"}
	})
	for i := range 120 {
		n.add(t, fmt.Sprintf("APP%03d", i), 1, nil)
	}
	n.add(t, "BIG", 250, func(i int, inst *registry.Instance) { inst.InstanceID = fmt.Sprintf("big-%03d", i) })

	first := n.get(t, "")
	wantIn(t, first, "overview", "node-a", "1.2.3 (commit abc)", `href="/metrics"`, "APP000", "APP048",
		"1–50 of 121", "page 1 of 3", `href="/?page=2"`, `http-equiv="refresh" content="10"`, `href="/?app=APP000"`)
	wantNotIn(t, first, "overview", "APP050", "ip-10-0-0-1.eu-west-1", "Previous")

	third := n.get(t, "?page=3")
	wantIn(t, third, "page 3", "APP100", "APP119", "BIG", "101–121 of 121", `href="/?page=2"`)
	wantNotIn(t, third, "page 3", "APP099", "Next")
	// A page past the end shows the last one.
	wantIn(t, n.get(t, "?page=99"), "page 99", "page 3 of 3")

	search := n.get(t, "?q=app11")
	wantIn(t, search, "search", "APP110", "APP119", "1–10 of 10 matching", `value="app11"`)
	wantNotIn(t, search, "search", "APP011", "APP000", "BIG")
	wantIn(t, n.get(t, "?q=nothing-like-it"), "empty search", "No application matches", "(121 registered)")

	// An application's view lists its instances, 100 a page, with its counts by status.
	big := n.get(t, "?app=big")
	wantIn(t, big, "BIG view", "250 instances", "UP 225", "DOWN 25", ">big-000<", ">big-099<", "1–100 of 250", `href="/?app=BIG&amp;page=2"`)
	wantNotIn(t, big, "BIG view", ">big-100<")
	big3 := n.get(t, "?app=BIG&page=3")
	wantIn(t, big3, "BIG page 3", "201–250 of 250", ">big-200<", ">big-249<")
	wantNotIn(t, big3, "BIG page 3", ">big-199<")
	filtered := n.get(t, "?app=BIG&q=10.0.0.24")
	wantIn(t, filtered, "BIG filtered", "10.0.0.24", "10.0.0.240", "10.0.0.249", "1–11 of 11 matching")
	wantNotIn(t, filtered, "BIG filtered", ">10.0.0.23<")
	wantIn(t, n.get(t, "?app=NOPE"), "unknown app", "No application NOPE")

	// Auto-refresh can be turned off, and stays off while browsing.
	off := n.get(t, "?refresh=0")
	wantNotIn(t, off, "refresh off", `http-equiv="refresh"`)
	wantIn(t, off, "refresh off", `href="/?app=APP000&amp;refresh=0"`, `href="/?page=2&amp;refresh=0"`, "Auto-refresh")
	wantIn(t, n.get(t, "?refresh=30"), "refresh 30", `http-equiv="refresh" content="30"`)
}

// TestDashboardEscapes registers markup and a script link, which the page must show as text.
func TestDashboardEscapes(t *testing.T) {
	n := newDashNode(t, nil, nil, true, func(o *eureka.Options) {
		o.Dashboard.NodeName = `<i>node</i>`
		o.Warnings = []string{"cluster.insecure_peers is set: <peers> are not authenticated"}
		o.Peers = func() []eureka.PeerStatus {
			return []eureka.PeerStatus{{Name: "p", URL: "http://10.0.0.2:8761/eureka/", LastError: `<img src=x onerror=alert(1)>`}}
		}
	})
	n.add(t, "EVIL", 1, func(_ int, inst *registry.Instance) {
		inst.InstanceID = `<img src=x onerror=alert(1)>`
		inst.HomePageURL = "javascript:alert(1)"
	})
	for _, q := range []string{"", "?app=EVIL", "?q=%3Cimg"} {
		page := n.get(t, q)
		wantNotIn(t, page, "page "+q, "<img", "<i>", "javascript:")
		wantIn(t, page, "page "+q, "&lt;i&gt;node&lt;/i&gt;", "insecure_peers is set: &lt;peers&gt; are not authenticated")
	}
	wantIn(t, n.get(t, "?app=EVIL"), "app view", "&lt;img src=x onerror=alert(1)&gt;")
}

// TestDashboardBoundedAt100kInstances: however large the registry, no page of the dashboard
// exceeds 200 KB.
func TestDashboardBoundedAt100kInstances(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("registers 100,000 instances: not with -short or -race")
	}
	const limit = 200 << 10
	n := newDashNode(t, nil, nil, true, func(o *eureka.Options) {
		o.Dashboard = eureka.DashboardOptions{NodeName: "node-a", Version: "1.0.0", MetricsPath: "/metrics",
			Health: func() []eureka.HealthCheck {
				return []eureka.HealthCheck{{Name: "startup_sync", OK: true, Detail: "done"}, {Name: "plugin transport grpc", OK: true, Detail: "running, pid 42, 0 restarts"}}
			}}
		o.Peers = func() []eureka.PeerStatus {
			return []eureka.PeerStatus{{Name: "b", URL: "http://10.0.0.2:8761/eureka/", Up: true, NodeName: "node-b", Health: "ready", SendP99: 3 * time.Millisecond}}
		}
	})
	// 80,000 instances in 2,000 applications with long names, and one application of 20,000.
	for a := range 2000 {
		n.add(t, fmt.Sprintf("PAYMENTS-SETTLEMENT-RECONCILIATION-SERVICE-%04d", a), 40, nil)
	}
	n.add(t, "CHECKOUT", 20000, nil)
	if got := n.reg.Stats().Instances; got != 100000 {
		t.Fatalf("registry holds %d instances, want 100000", got)
	}
	pages := map[string]string{
		"overview":         "",
		"overview page 20": "?page=20",
		"search":           "?q=SERVICE-1",
		"app view":         "?app=CHECKOUT",
		"app view page 50": "?app=CHECKOUT&page=50",
		"app view filter":  "?app=CHECKOUT&q=10.0",
	}
	for name, q := range pages {
		body := n.get(t, q)
		t.Logf("%-17s %6d bytes", name, len(body))
		if len(body) > limit {
			t.Errorf("%s is %d bytes, more than %d", name, len(body), limit)
		}
		if !strings.Contains(body, "100000") {
			t.Errorf("%s does not show the instance count", name)
		}
	}
}

// TestDashboardEmergencyBanner: Eureka's banner is held back while a started node learns its
// renewal threshold, and shows once that period has passed with renewals below the threshold.
func TestDashboardEmergencyBanner(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	n := newDashNode(t, clock, nil, true, nil)
	n.add(t, "DEMO", 3, nil)
	if !n.reg.Stats().SelfPreservationActive {
		t.Fatal("self-preservation is not active on a node without renewals")
	}
	page := n.get(t, "")
	wantNotIn(t, page, "fresh node", eureka.EmergencyBanner[:30])
	wantIn(t, page, "fresh node", `id="self-preservation">learning<`, "no emergency is declared before 12:15:00 UTC")

	clock.advance(eureka.DefaultSelfPreservationGrace - time.Second)
	wantNotIn(t, n.get(t, ""), "before the grace ends", eureka.EmergencyBanner[:30])
	clock.advance(2 * time.Second)
	page = htmlUnescape(n.get(t, ""))
	wantIn(t, page, "after the grace", eureka.EmergencyBanner, `id="self-preservation">active<`)

	// A node that never opened for traffic expects no client: no emergency, however long it runs.
	closed := newDashNode(t, clock, nil, false, nil)
	clock.advance(time.Hour)
	wantNotIn(t, closed.get(t, ""), "node expecting no client", eureka.EmergencyBanner[:30])

	// Self-preservation off: Eureka's notice instead, from the start.
	off := newDashNode(t, clock, func(c *registry.Config) { c.EnableSelfPreservation = false }, true, nil)
	wantIn(t, htmlUnescape(off.get(t, "")), "self-preservation off", eureka.SelfPreservationOffBanner, `id="self-preservation">off<`)
}
