package main

// End-to-end tests of replication between real herald processes talking real HTTP on 127.0.0.1.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

var (
	heraldBin string
	// testDir holds the binaries built for this run (herald, the example plugins) and the unix
	// sockets of plugin processes started by in-process nodes; it is removed at the end.
	testDir string
)

func TestMain(m *testing.M) {
	// The multi-process tests spend most of their time waiting for other processes and timers, so
	// more of them than there are cores run at once (-parallel given explicitly wins).
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", strconv.Itoa(max(4, runtime.GOMAXPROCS(0))))
	}
	dir, err := os.MkdirTemp("", "herald-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = dir
	// go-plugin's servers (plugin processes of in-process nodes) put their sockets here; the e2e
	// harness gives each node process a directory of its own.
	os.Setenv("PLUGIN_UNIX_SOCKET_DIR", dir)
	heraldBin, err = e2e.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clusterHCL is a node's configuration: peers are given as the URLs this node uses to reach them.
func clusterHCL(port int, peers []string, extra string) string {
	q := make([]string, len(peers))
	for i, p := range peers {
		q[i] = strconv.Quote(p)
	}
	return fmt.Sprintf(`
node {
  name = "node-%d"
  port = %d
}
log { level = "warn" }
response_cache { use_read_only = false }
cluster {
  peers = [%s]
  startup_sync {
    retries         = 1
    retry_wait      = "200ms"
    wait_when_empty = "0s"
  }
  anti_entropy { interval = "1s" }
}
replication {
  batching_delay              = "2ms"
  network_failure_retry_delay = "50ms"
  congestion_retry_delay      = "200ms"
}
%s`, port, port, strings.Join(q, ", "), extra)
}

func urlOf(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/eureka/", port) }

// startCluster starts n nodes that all know each other directly.
func startCluster(t *testing.T, n int, extra string) []*e2e.Node {
	t.Helper()
	ports := e2e.FreePorts(t, n)
	var urls []string
	for _, p := range ports {
		urls = append(urls, urlOf(p))
	}
	nodes := make([]*e2e.Node, n)
	for i, p := range ports {
		nodes[i] = e2e.NewNode(t, heraldBin, fmt.Sprintf("node%d", i), p, clusterHCL(p, urls, extra))
		nodes[i].Start()
	}
	return nodes
}

var client = e2e.DefaultClient

func do(t *testing.T, method, url string, body []byte, header map[string]string) (int, []byte) {
	t.Helper()
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	c := client
	if header["x-netflix-discovery-replication"] != "" {
		// Nodes honour the replication header only from an authenticated peer.
		c = e2e.PeerClient
	}
	code, b, err := c.Do(context.Background(), method, url, ct, body, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, b
}

func register(t *testing.T, n *e2e.Node, app, id string, ts int64, header map[string]string) {
	t.Helper()
	code, b := do(t, "POST", n.URL()+"apps/"+app, e2e.InstanceJSON(app, id, ts, "UP", map[string]string{"v": strconv.FormatInt(ts, 10)}), header)
	if code != 204 {
		t.Fatalf("register %s at %s: %d %s", id, n.Name, code, b)
	}
}

type instanceDoc struct {
	Instance struct {
		Status             string            `json:"status"`
		OverriddenStatus   string            `json:"overriddenStatus"`
		LastDirtyTimestamp string            `json:"lastDirtyTimestamp"`
		Metadata           map[string]string `json:"metadata"`
	} `json:"instance"`
}

// instance fetches GET apps/{app}/{id} (uncached); ok=false on 404.
func instance(t *testing.T, n *e2e.Node, app, id string) (instanceDoc, bool, error) {
	var doc instanceDoc
	code, b, err := client.Do(context.Background(), "GET", n.URL()+"apps/"+app+"/"+id, "", nil, nil)
	if err != nil {
		return doc, false, err
	}
	if code == 404 {
		return doc, false, nil
	}
	if code != 200 {
		return doc, false, fmt.Errorf("GET %s/%s at %s: %d", app, id, n.Name, code)
	}
	return doc, true, json.Unmarshal(b, &doc)
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	e2e.Eventually(t, 15*time.Second, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

func visibleOn(t *testing.T, app, id string, nodes ...*e2e.Node) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, id+" visible on "+n.Name, func() error {
			_, ok, err := instance(t, n, app, id)
			if err != nil || !ok {
				return fmt.Errorf("not yet (%v)", err)
			}
			return nil
		})
	}
}

func goneFrom(t *testing.T, app, id string, nodes ...*e2e.Node) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, id+" gone from "+n.Name, func() error {
			_, ok, err := instance(t, n, app, id)
			if err != nil || ok {
				return fmt.Errorf("still there (%v)", err)
			}
			return nil
		})
	}
}

// metric scrapes one sample from a node's /metrics.
func metric(t *testing.T, n *e2e.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.Root() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name+" ")), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found at %s", name, n.Name)
	return 0
}

// metricSum adds up every sample of the metric name (all label sets) at a node; 0 when there is
// none.
func metricSum(n *e2e.Node, name string) (float64, error) {
	code, b, err := client.Do(context.Background(), "GET", n.Root()+"/metrics", "", nil, nil)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics at %s: %d", n.Name, code)
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// drained waits until no node has a replication task queued or in flight: everything accepted
// so far has been sent and answered.
func drained(t *testing.T, nodes ...*e2e.Node) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, "replication queues of "+n.Name+" empty", func() error {
			v, err := metricSum(n, "herald_replication_queue_depth")
			if err == nil && v != 0 {
				err = fmt.Errorf("%v queued or in flight", v)
			}
			return err
		})
	}
}

// accepted is the number of tasks a node has accepted for replication, over all its peers.
func accepted(t *testing.T, n *e2e.Node) float64 {
	t.Helper()
	v, err := metricSum(n, "herald_replication_tasks_accepted_total")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var repl = map[string]string{"x-netflix-discovery-replication": "true"}

// placements are the ways the built-in plugins run: the three-node suite runs once per placement.
var placements = []struct{ name, hcl string }{
	{"in-process", ""},
	{"out-of-process", outOfProcess},
}

func TestThreeNodeReplication(t *testing.T) {
	t.Parallel()
	for _, p := range placements {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			testThreeNodeReplication(t, p.hcl)
		})
	}
}

func testThreeNodeReplication(t *testing.T, extra string) {
	nodes := startCluster(t, 3, extra)
	a, b, c := nodes[0], nodes[1], nodes[2]

	t.Run("register at A is visible at B and C", func(t *testing.T) {
		register(t, a, "DEMO", "n1", 1000, nil)
		visibleOn(t, "DEMO", "n1", b, c)
		d, _, _ := instance(t, b, "DEMO", "n1")
		if d.Instance.LastDirtyTimestamp != "1000" {
			t.Fatalf("lastDirtyTimestamp %q", d.Instance.LastDirtyTimestamp)
		}
	})
	t.Run("a replicated write is applied once and not sent on", func(t *testing.T) {
		// One client write at A: B and C each apply exactly one replicated write for it, and A,
		// which only ever hears it from the client, applies none. If B or C forwarded it, the
		// others would count two, and B or C would have accepted a task.
		drained(t, nodes...)
		before := []float64{metric(t, a, `herald_registry_writes_total{origin="peer"}`),
			metric(t, b, `herald_registry_writes_total{origin="peer"}`), metric(t, c, `herald_registry_writes_total{origin="peer"}`)}
		acceptedBefore := []float64{accepted(t, b), accepted(t, c)}
		register(t, a, "ONCE", "o1", 1000, nil)
		visibleOn(t, "ONCE", "o1", b, c)
		// Once A's tasks are answered, B and C have applied them, and would have accepted a
		// forwarded copy in the same step; once their queues are empty too, a forwarded copy
		// would have been applied.
		drained(t, a)
		drained(t, nodes...)
		for i, n := range []*e2e.Node{b, c} {
			if got := accepted(t, n) - acceptedBefore[i]; got != 0 {
				t.Errorf("%s accepted %v tasks for a replicated write, want 0", n.Name, got)
			}
		}
		for i, n := range nodes {
			want := 1.0
			if n == a {
				want = 0
			}
			if got := metric(t, n, `herald_registry_writes_total{origin="peer"}`) - before[i]; got != want {
				t.Errorf("%s applied %v replicated writes, want %v", n.Name, got, want)
			}
		}
	})
	t.Run("metrics move under a small load", func(t *testing.T) {
		peerB := fmt.Sprintf(`peer="%s"`, b.URL())
		sent := func() float64 {
			return metric(t, a, `herald_replication_batches_total{`+peerB+`,result="success"}`)
		}
		before, acceptedBefore := sent(), metric(t, a, `herald_replication_tasks_accepted_total{`+peerB+`}`)
		for i := 0; i < 20; i++ {
			register(t, a, "METRICS", fmt.Sprint("m", i), 1000, nil)
		}
		visibleOn(t, "METRICS", "m19", b, c)
		eventually(t, "batch counters", func() error {
			if sent() <= before {
				return fmt.Errorf("no successful batch to B counted")
			}
			return nil
		})
		if got := metric(t, a, `herald_replication_tasks_accepted_total{`+peerB+`}`) - acceptedBefore; got != 20 {
			t.Errorf("accepted %v tasks for B, want 20", got)
		}
		if metric(t, a, `herald_replication_batch_size_count{`+peerB+`}`) < 1 || metric(t, a, `herald_replication_send_seconds_count{`+peerB+`}`) < 1 {
			t.Error("batch size and send latency histograms must count the sends")
		}
		if metric(t, b, "herald_registry_instances") < 20 || metric(t, b, "herald_registry_apps") < 1 {
			t.Error("registry size on B")
		}
		if v := metric(t, a, `herald_replication_queue_depth{`+peerB+`,stage="pending"}`); v < 0 {
			t.Error("queue depth")
		}
	})
	t.Run("cancel at B is gone at A and C", func(t *testing.T) {
		if code, _ := do(t, "DELETE", b.URL()+"apps/DEMO/n1", nil, nil); code != 200 {
			t.Fatalf("cancel: %d", code)
		}
		goneFrom(t, "DEMO", "n1", a, c)
		if code, _ := do(t, "DELETE", a.URL()+"apps/DEMO/n1", nil, nil); code != 404 {
			t.Fatalf("second cancel at A: %d", code)
		}
	})
	t.Run("status override and metadata propagate", func(t *testing.T) {
		register(t, a, "DEMO", "n2", 1000, nil)
		visibleOn(t, "DEMO", "n2", b, c)
		if code, _ := do(t, "PUT", c.URL()+"apps/DEMO/n2/status?value=OUT_OF_SERVICE", nil, nil); code != 200 {
			t.Fatalf("override: %d", code)
		}
		for _, n := range []*e2e.Node{a, b} {
			eventually(t, "override on "+n.Name, func() error {
				d, ok, err := instance(t, n, "DEMO", "n2")
				if err != nil || !ok || d.Instance.Status != "OUT_OF_SERVICE" {
					return fmt.Errorf("status %q (%v)", d.Instance.Status, err)
				}
				return nil
			})
		}
		if code, _ := do(t, "PUT", b.URL()+"apps/DEMO/n2/metadata?k=v", nil, nil); code != 200 {
			t.Fatalf("metadata: %d", code)
		}
		for _, n := range []*e2e.Node{a, c} {
			eventually(t, "metadata on "+n.Name, func() error {
				d, _, err := instance(t, n, "DEMO", "n2")
				if err != nil || d.Instance.Metadata["k"] != "v" {
					return fmt.Errorf("metadata %v (%v)", d.Instance.Metadata, err)
				}
				return nil
			})
		}
		if code, _ := do(t, "DELETE", a.URL()+"apps/DEMO/n2/status?value=UP", nil, nil); code != 200 {
			t.Fatalf("delete override: %d", code)
		}
		for _, n := range []*e2e.Node{b, c} {
			eventually(t, "override removed on "+n.Name, func() error {
				d, _, err := instance(t, n, "DEMO", "n2")
				if err != nil || d.Instance.Status != "UP" || d.Instance.OverriddenStatus != "UNKNOWN" {
					return fmt.Errorf("status %q overridden %q (%v)", d.Instance.Status, d.Instance.OverriddenStatus, err)
				}
				return nil
			})
		}
	})
	t.Run("heartbeat for an instance a peer lacks makes the sender register it", func(t *testing.T) {
		before := accepted(t, a)
		register(t, a, "DEMO", "n4", 1000, repl) // only A knows it
		if got := accepted(t, a) - before; got != 0 {
			t.Fatalf("A accepted %v tasks for a replicated register, want 0", got)
		}
		for _, n := range []*e2e.Node{b, c} {
			if _, ok, _ := instance(t, n, "DEMO", "n4"); ok {
				t.Fatalf("a replicated register must not be sent on, but %s has n4", n.Name)
			}
		}
		if code, _ := do(t, "PUT", a.URL()+"apps/DEMO/n4?status=UP&lastDirtyTimestamp=1000", nil, nil); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
		visibleOn(t, "DEMO", "n4", b, c)
	})
	t.Run("conflicting copies converge to the newer lastDirtyTimestamp", func(t *testing.T) {
		register(t, a, "DEMO", "n5", 1000, repl)
		register(t, b, "DEMO", "n5", 2000, repl)
		if code, _ := do(t, "PUT", a.URL()+"apps/DEMO/n5?status=UP&lastDirtyTimestamp=1000", nil, nil); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
		for _, n := range nodes {
			eventually(t, "newest copy on "+n.Name, func() error {
				d, ok, err := instance(t, n, "DEMO", "n5")
				if err != nil || !ok || d.Instance.LastDirtyTimestamp != "2000" || d.Instance.Metadata["v"] != "2000" {
					return fmt.Errorf("ts %q v %q (%v)", d.Instance.LastDirtyTimestamp, d.Instance.Metadata["v"], err)
				}
				return nil
			})
		}
		code, body := do(t, "PUT", b.URL()+"apps/DEMO/n5?status=UP&lastDirtyTimestamp=1000", nil, repl)
		if code != 409 || !strings.Contains(string(body), `"lastDirtyTimestamp":"2000"`) {
			t.Fatalf("stale replicated heartbeat: %d %s", code, body)
		}
	})
}

// registries returns app/id -> lastDirtyTimestamp as a node's /apps shows it.
func registryOf(n *e2e.Node) (map[string]string, error) {
	code, b, err := client.Do(context.Background(), "GET", n.URL()+"apps", "", nil, nil)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET apps at %s: %d", n.Name, code)
	}
	var doc struct {
		Applications struct {
			Application []struct {
				Name     string `json:"name"`
				Instance []struct {
					InstanceID         string `json:"instanceId"`
					LastDirtyTimestamp string `json:"lastDirtyTimestamp"`
					Status             string `json:"status"`
				} `json:"instance"`
			} `json:"application"`
		} `json:"applications"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range doc.Applications.Application {
		for _, i := range a.Instance {
			out[a.Name+"/"+i.InstanceID] = i.LastDirtyTimestamp + "/" + i.Status
		}
	}
	return out, nil
}

func sameRegistries(nodes []*e2e.Node, acked map[string]bool) error {
	var first map[string]string
	for i, n := range nodes {
		r, err := registryOf(n)
		if err != nil {
			return err
		}
		for k := range acked {
			if _, ok := r[k]; !ok {
				return fmt.Errorf("%s lacks acknowledged %s (has %d)", n.Name, k, len(r))
			}
		}
		if i == 0 {
			first = r
			continue
		}
		if len(r) != len(first) {
			return fmt.Errorf("%s has %d instances, %s %d", n.Name, len(r), nodes[0].Name, len(first))
		}
		for k, v := range first {
			if r[k] != v {
				return fmt.Errorf("%s: %s is %q, on %s %q", n.Name, k, r[k], nodes[0].Name, v)
			}
		}
	}
	return nil
}

// load registers instances at the given nodes in turn until stop is closed, recording every write
// the cluster acknowledged with 204.
type load struct {
	mu      sync.Mutex
	acked   map[string]bool
	targets []*e2e.Node
	n       int
}

// waitMore waits until k more writes have been acknowledged (the load makes progress, however
// slow the machine).
func (l *load) waitMore(t *testing.T, k int) {
	t.Helper()
	l.mu.Lock()
	want := len(l.acked) + k
	l.mu.Unlock()
	e2e.Eventually(t, 60*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.acked) < want {
			return fmt.Errorf("%d writes acknowledged, waiting for %d", len(l.acked), want)
		}
		return nil
	})
}

func (l *load) setTargets(ns ...*e2e.Node) { l.mu.Lock(); l.targets = ns; l.mu.Unlock() }

func (l *load) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.mu.Lock()
		n := l.targets[l.n%len(l.targets)]
		l.n++
		id := fmt.Sprintf("load-%d", l.n)
		l.mu.Unlock()
		code, _, err := client.Do(context.Background(), "POST", n.URL()+"apps/LOAD", "application/json",
			e2e.InstanceJSON("LOAD", id, 1000, "UP", nil), nil)
		if err == nil && code == 204 {
			l.mu.Lock()
			l.acked["LOAD/"+id] = true
			l.mu.Unlock()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestKillAndRestartConverges(t *testing.T) {
	t.Parallel()
	for _, p := range placements {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			testKillAndRestartConverges(t, p.hcl)
		})
	}
}

func testKillAndRestartConverges(t *testing.T, extra string) {
	nodes := startCluster(t, 3, extra)
	a, b, c := nodes[0], nodes[1], nodes[2]
	l := &load{acked: map[string]bool{}, targets: nodes}
	stop, done := make(chan struct{}), make(chan struct{})
	go l.run(stop, done)
	l.waitMore(t, 60)
	// Writes stop going to C; then C is killed while A and B keep taking writes, and restarted
	// (Start waits until its startup sync is done) while they still do.
	l.setTargets(a, b)
	l.waitMore(t, 20)
	c.Kill()
	l.waitMore(t, 40)
	c.Start()
	l.waitMore(t, 20)
	close(stop)
	<-done
	l.mu.Lock()
	acked := l.acked
	l.mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged under load", len(acked))
	}
	e2e.Eventually(t, 30*time.Second, func() error { return sameRegistries(nodes, acked) })
	t.Logf("%d acknowledged writes present on all three nodes after kill -9 and restart", len(acked))
}

func TestPartitionHeals(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 7)
	pa, pb, pc := ports[0], ports[1], ports[2]
	// C is reached by A and B only through proxies, and reaches them through proxies, so cutting
	// the four proxies partitions C away.
	acProxy := e2e.NewProxy(t, ports[3], fmt.Sprintf("127.0.0.1:%d", pc))
	bcProxy := e2e.NewProxy(t, ports[4], fmt.Sprintf("127.0.0.1:%d", pc))
	caProxy := e2e.NewProxy(t, ports[5], fmt.Sprintf("127.0.0.1:%d", pa))
	cbProxy := e2e.NewProxy(t, ports[6], fmt.Sprintf("127.0.0.1:%d", pb))
	a := e2e.NewNode(t, heraldBin, "a", pa, clusterHCL(pa, []string{urlOf(pa), urlOf(pb), urlOf(ports[3])}, ""))
	b := e2e.NewNode(t, heraldBin, "b", pb, clusterHCL(pb, []string{urlOf(pa), urlOf(pb), urlOf(ports[4])}, ""))
	c := e2e.NewNode(t, heraldBin, "c", pc, clusterHCL(pc, []string{urlOf(ports[5]), urlOf(ports[6]), urlOf(pc)}, ""))
	for _, n := range []*e2e.Node{a, b, c} {
		n.Start()
	}
	register(t, a, "P", "before", 1000, nil)
	visibleOn(t, "P", "before", b, c)

	for _, p := range []*e2e.Proxy{acProxy, bcProxy, caProxy, cbProxy} {
		p.Cut()
	}
	register(t, a, "P", "during-a", 1000, nil)
	register(t, c, "P", "during-c", 1000, nil)
	if code, _ := do(t, "DELETE", b.URL()+"apps/P/before", nil, nil); code != 200 {
		t.Fatal("cancel during partition")
	}
	// A has tried to send its write to C and failed: the partition held for it.
	eventually(t, "A's send to C fails", func() error {
		v, err := metricSum(a, fmt.Sprintf(`herald_replication_tasks_retried_total{peer="%s"}`, urlOf(ports[3])))
		if err == nil && v < 1 {
			err = fmt.Errorf("no retried task yet")
		}
		return err
	})
	if _, ok, _ := instance(t, c, "P", "during-a"); ok {
		t.Fatal("the partition does not hold: C saw a write made at A")
	}
	for _, p := range []*e2e.Proxy{acProxy, bcProxy, caProxy, cbProxy} {
		p.Heal()
	}
	visibleOn(t, "P", "during-a", c)
	visibleOn(t, "P", "during-c", a, b)
	goneFrom(t, "P", "before", c)
	e2e.Eventually(t, 20*time.Second, func() error {
		return sameRegistries([]*e2e.Node{a, b, c}, map[string]bool{"P/during-a": true, "P/during-c": true})
	})
}

func TestSIGHUPReloadsPeers(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 3)
	all := []string{urlOf(ports[0]), urlOf(ports[1]), urlOf(ports[2])}
	noAE := "cluster {\n  anti_entropy { enabled = false }\n}\n"
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], all[:2], noAE))
	b := e2e.NewNode(t, heraldBin, "b", ports[1], clusterHCL(ports[1], all, noAE))
	c := e2e.NewNode(t, heraldBin, "c", ports[2], clusterHCL(ports[2], all, noAE))
	// Start returns once a node is ready, its startup sync done: from then on only replication
	// (anti-entropy is off) can bring C a write made at A.
	for _, n := range []*e2e.Node{a, b, c} {
		n.Start()
	}
	register(t, a, "HUP", "before", 1000, nil)
	visibleOn(t, "HUP", "before", b)
	drained(t, a) // everything A sends has arrived
	if _, ok, _ := instance(t, c, "HUP", "before"); ok {
		t.Fatal("A does not list C yet, so C must not get A's writes")
	}
	if v, err := metricSum(a, fmt.Sprintf(`herald_replication_tasks_accepted_total{peer="%s"}`, all[2])); err != nil || v != 0 {
		t.Fatalf("A accepted %v tasks for C before the reload (%v)", v, err)
	}
	a.Rewrite(clusterHCL(ports[0], all, noAE))
	a.Signal(syscall.SIGHUP)
	eventually(t, "A replicates to C after SIGHUP", func() error {
		register(t, a, "HUP", "after", 1000, nil)
		if _, ok, err := instance(t, c, "HUP", "after"); err != nil || !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	visibleOn(t, "HUP", "after", b)
	// A bad file on SIGHUP is refused and the node keeps running with its peers.
	a.Rewrite("node {\n  port = \"x\"\n}\n")
	a.Signal(syscall.SIGHUP)
	register(t, a, "HUP", "still", 1000, nil)
	visibleOn(t, "HUP", "still", b, c)
	eventually(t, "the refusal is logged with file and key", func() error {
		if !strings.Contains(a.Logs(), "node.port") {
			return fmt.Errorf("logs: %s", a.Logs())
		}
		return nil
	})
}
