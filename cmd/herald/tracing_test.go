package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/node"
)

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range s.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// tracedPair starts two in-process nodes, each exporting its spans to its own in-memory exporter.
func tracedPair(t *testing.T, sets ...string) ([]*node.Node, []*tracetest.InMemoryExporter) {
	t.Helper()
	ports := e2e.FreePorts(t, 2)
	urls := []string{urlOf(ports[0]), urlOf(ports[1])}
	var nodes []*node.Node
	var exps []*tracetest.InMemoryExporter
	for i, p := range ports {
		cfg, err := loadConfig("", nil, append([]string{
			"node.port=" + strconv.Itoa(p), "node.name=node-" + strconv.Itoa(i),
			"cluster.peers=" + strings.Join(urls, ","), "cluster.startup_sync.retries=0",
			"cluster.peer_auth.secret=" + e2e.ClusterSecret,
			"cluster.startup_sync.wait_when_empty=0s", "response_cache.use_read_only=false",
			"telemetry.tracing.enabled=true", "log.level=error",
		}, sets...))
		if err != nil {
			t.Fatal(err)
		}
		exp := tracetest.NewInMemoryExporter()
		rn, err := startNodeWith(context.Background(), cfg, hclog.NewNullLogger(), true, func(c *node.Config) {
			c.Telemetry.Exporter = exp
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rn.Stop(context.Background()) })
		nodes = append(nodes, rn)
		exps = append(exps, exp)
	}
	return nodes, exps
}

func spansOf(t *testing.T, n *node.Node, exp *tracetest.InMemoryExporter) []sdktrace.ReadOnlySpan {
	t.Helper()
	if err := n.Telemetry().ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans().Snapshots()
}

// pluginsOutOfProcess runs the http transport, and with handler also the eureka action handler,
// as plugin processes that export their spans over OTLP/HTTP to endpoint, as they would to Jaeger;
// the nodes keep theirs in memory. Anti-entropy runs often: an out-of-process transport does not
// hand the peer's node name back to the node, which learns it from its own calls to the peer.
func pluginsOutOfProcess(endpoint string, handler bool) []string {
	sets := []string{"plugin.transport.http.command=" + heraldBin, "plugin.transport.http.args=plugin,serve,transport,http",
		"telemetry.tracing.exporter=otlp-http", "telemetry.tracing.endpoint=" + endpoint,
		"cluster.anti_entropy.interval=200ms"}
	if handler {
		sets = append(sets, "plugin.action_handler.eureka.command="+heraldBin,
			"plugin.action_handler.eureka.args=plugin,serve,action_handler,eureka")
	}
	return sets
}

// A registration at A produces one trace: A's HTTP server span, under it A's task span for peer B
// (enqueued, batched, acked), a batch span linked to that task span, and on B the apply span as a
// child of A's task span. The spans about the peer name it by URL and by node name.
func TestTraceFollowsARegistrationToThePeer(t *testing.T) {
	t.Run("transport in-process", func(t *testing.T) {
		// No exchange before the registration: A learns B's name from B's answer to the batch.
		r := traceFollowsRegistration(t, false)
		urlB := urlOf(portOf(r.b))
		if attr(r.batch, "url.full") != urlB+"peerreplication/batch/" || attr(r.batch, "http.response.status_code") != "200" {
			t.Errorf("the batch span of the in-process http transport is its HTTP client span: %v", r.batch.Attributes())
		}
		e2e.Eventually(t, 10*time.Second, func() error {
			code, body, err := client.Do(t.Context(), "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", portOf(r.a)), "", nil, nil)
			if err != nil || code != 200 {
				return fmt.Errorf("%d %v", code, err)
			}
			if want := fmt.Sprintf(`herald_replication_peer_info{peer=%q,peer_name="node-1"} 1`, urlB); !strings.Contains(string(body), want) {
				return fmt.Errorf("no %s in /metrics", want)
			}
			return nil
		})
	})
	t.Run("transport as a plugin process", func(t *testing.T) {
		rcv := newOTLPReceiver(t)
		r := traceFollowsRegistration(t, true, pluginsOutOfProcess(rcv.URL, false)...)
		// In the batch's trace: A's client span of the gRPC call into the plugin, a child of the batch
		// span; the plugin process's server span under it; and the SDK's span around Send under that.
		trace := r.batch.SpanContext().TraceID().String()
		e2e.Eventually(t, 10*time.Second, func() error {
			var client sdktrace.ReadOnlySpan
			for _, s := range spansOf(t, r.a, r.expA) {
				if s.Name() == "herald.plugin.v1.Transport/Send" && s.Parent().SpanID() == r.batch.SpanContext().SpanID() {
					client = s
				}
			}
			if client == nil {
				return fmt.Errorf("A has no client span of the plugin call under the batch span")
			}
			var server, send *otlpSpan
			got := rcv.Spans()
			for i, s := range got {
				switch {
				case s.TraceID != trace:
				case s.Name == "herald.plugin.v1.Transport/Send" && s.Parent == client.SpanContext().SpanID().String():
					server = &got[i]
				case s.Name == "plugin.transport.Send":
					send = &got[i]
				}
			}
			if server == nil || send == nil {
				return fmt.Errorf("plugin spans in the batch's trace: server %v, send %v (%d spans received)", server != nil, send != nil, len(got))
			}
			if send.Parent != server.SpanID {
				return fmt.Errorf("the SDK's Send span must be a child of the plugin's server span")
			}
			if send.Service != "herald-plugins" {
				return fmt.Errorf("plugin span service.name = %q", send.Service)
			}
			if send.Instance != "node-0" || send.Node != "node-0" {
				return fmt.Errorf("plugin span service.instance.id = %q, herald.node = %q, want the node's name", send.Instance, send.Node)
			}
			urlB := urlOf(portOf(r.b))
			if send.Attrs["herald.peer.url"] != urlB || send.Attrs["herald.peer.name"] != "node-1" ||
				send.Attrs["url.full"] != urlB+"peerreplication/batch/" {
				return fmt.Errorf("the plugin's Send span must name the peer by URL and node name, and the URL it posted to: %v", send.Attrs)
			}
			return nil
		})
	})
	// Both the transport and B's action handler in plugin processes: B's handling of the batch,
	// including the handler process's spans, is in the batch trace under B's batch request span;
	// the task trace is unchanged (checked by traceFollowsRegistration).
	t.Run("transport and action handler as plugin processes", func(t *testing.T) {
		rcv := newOTLPReceiver(t)
		r := traceFollowsRegistration(t, true, pluginsOutOfProcess(rcv.URL, true)...)
		trace := r.batch.SpanContext().TraceID().String()
		received := r.received.SpanContext().SpanID().String()
		e2e.Eventually(t, 10*time.Second, func() error {
			// Parent of every span of the batch trace, from both nodes and every plugin process.
			parent := map[string]string{}
			for _, s := range append(spansOf(t, r.a, r.expA), spansOf(t, r.b, r.expB)...) {
				if s.SpanContext().TraceID().String() == trace {
					parent[s.SpanContext().SpanID().String()] = s.Parent().SpanID().String()
				}
			}
			var handler []otlpSpan
			for _, s := range rcv.Spans() {
				if s.TraceID != trace {
					continue
				}
				parent[s.SpanID] = s.Parent
				if s.Instance == "node-1" && (s.Name == "herald.plugin.v1.ActionHandler/Receive" || s.Name == "plugin.action_handler.Receive") {
					handler = append(handler, s)
				}
			}
			names := map[string]bool{}
			for _, s := range handler {
				names[s.Name] = true
				if s.Service != "herald-plugins" || s.Node != "node-1" {
					return fmt.Errorf("handler span %s: service.name %q, herald.node %q", s.Name, s.Service, s.Node)
				}
				under := false
				for id, i := s.SpanID, 0; id != "" && i < 32 && !under; id, i = parent[id], i+1 {
					under = id == received
				}
				if !under {
					return fmt.Errorf("handler span %s (parent %s) is not under B's batch request span %s", s.Name, s.Parent, received)
				}
			}
			if !names["herald.plugin.v1.ActionHandler/Receive"] || !names["plugin.action_handler.Receive"] {
				return fmt.Errorf("B's handler process spans in the batch trace: %v (%d spans received)", names, len(rcv.Spans()))
			}
			return nil
		})
	})
}

// registrationTrace is what one registration at A (node-0) left in the spans of A and B (node-1).
type registrationTrace struct {
	a, b       *node.Node
	expA, expB *tracetest.InMemoryExporter
	// task is A's task span for B, batch A's batch span that carried it, apply B's apply span,
	// received B's server span of the batch request.
	task, batch, apply, received sdktrace.ReadOnlySpan
}

// traceFollowsRegistration registers one instance at A and checks the task trace and the batch
// trace's link to B. learnFirst waits until A knew B's node name before registering.
func traceFollowsRegistration(t *testing.T, learnFirst bool, sets ...string) registrationTrace {
	nodes, exps := tracedPair(t, sets...)
	a, b := nodes[0], nodes[1]
	urlB := urlOf(portOf(b))
	if learnFirst {
		e2e.Eventually(t, 20*time.Second, func() error {
			if n := a.PeerNames().Name(urlB); n != "node-1" {
				return fmt.Errorf("A knows B as %q", n)
			}
			return nil
		})
	}
	register(t, &e2e.Node{Name: "a", Port: portOf(a)}, "TRACED", "t1", 1000, nil)
	e2e.Eventually(t, 10*time.Second, func() error {
		if _, ok := b.Registry().Instance("TRACED", "t1"); !ok {
			return fmt.Errorf("not replicated yet")
		}
		return nil
	})
	var task, batch, server, apply sdktrace.ReadOnlySpan
	e2e.Eventually(t, 10*time.Second, func() error {
		for _, s := range spansOf(t, a, exps[0]) {
			switch {
			case s.Name() == "replicate Register" && attr(s, "herald.instance.id") == "t1":
				task = s
			case s.Name() == "send batch":
				batch = s
			case strings.HasPrefix(s.Name(), "POST ") && strings.Contains(s.Name(), "/apps/{app}"):
				server = s
			}
		}
		for _, s := range spansOf(t, b, exps[1]) {
			if s.Name() == "replication.apply Register" && attr(s, "herald.instance.id") == "t1" {
				apply = s
			}
		}
		if task == nil || batch == nil || server == nil || apply == nil || !hasEvent(task, "acked") {
			return fmt.Errorf("task=%v batch=%v server=%v apply=%v", task != nil, batch != nil, server != nil, apply != nil)
		}
		return nil
	})
	if task.Parent().SpanID() != server.SpanContext().SpanID() || task.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Fatal("the task span must be a child of the client request's server span")
	}
	for _, ev := range []string{"enqueued", "batched", "acked"} {
		if !hasEvent(task, ev) {
			t.Errorf("task span lacks the %q event", ev)
		}
	}
	if attr(task, "herald.node") != "node-0" || attr(apply, "herald.node") != "node-1" {
		t.Errorf("spans must name their node: task on %q, apply on %q", attr(task, "herald.node"), attr(apply, "herald.node"))
	}
	if attr(task, "herald.action") != "Register" || attr(task, "herald.app") != "TRACED" || attr(task, "herald.task.id") != "register#TRACED/t1" {
		t.Errorf("task span attributes: %v", task.Attributes())
	}
	// The peer by URL (its identity) and by the node name it gave.
	for _, s := range []sdktrace.ReadOnlySpan{task, batch} {
		if attr(s, "herald.peer.url") != urlB || attr(s, "herald.peer.name") != "node-1" {
			t.Errorf("%s span must name the peer %s (node-1): herald.peer.url %q, herald.peer.name %q", s.Name(), urlB,
				attr(s, "herald.peer.url"), attr(s, "herald.peer.name"))
		}
	}
	if attr(batch, "server.address") != "127.0.0.1" || attr(batch, "server.port") != strconv.Itoa(portOf(b)) {
		t.Errorf("the batch span must carry server.address and server.port: %v", batch.Attributes())
	}
	linked := false
	for _, l := range batch.Links() {
		linked = linked || l.SpanContext.SpanID() == task.SpanContext().SpanID()
	}
	if !linked || attr(batch, "herald.batch.size") == "" {
		t.Error("the batch span must link to the task span it carried")
	}
	if apply.SpanContext().TraceID() != task.SpanContext().TraceID() || apply.Parent().SpanID() != task.SpanContext().SpanID() {
		t.Fatalf("the apply span on B must be a child of A's task span: trace %s parent %s, task %s/%s",
			apply.SpanContext().TraceID(), apply.Parent().SpanID(), task.SpanContext().TraceID(), task.SpanContext().SpanID())
	}
	// The batch POST carries the batch span's context: on B its server span is in the batch's
	// trace (the batch span's child in-process; under the plugin's Send span out of process), and
	// names the sender.
	var received sdktrace.ReadOnlySpan
	e2e.Eventually(t, 10*time.Second, func() error {
		for _, s := range spansOf(t, b, exps[1]) {
			if strings.Contains(s.Name(), "peerreplication/batch") && s.SpanContext().TraceID() == batch.SpanContext().TraceID() &&
				s.Parent().IsValid() {
				received = s
				return nil
			}
		}
		return fmt.Errorf("B has no batch request span under A's batch span")
	})
	if attr(received, "herald.peer.name") != "node-0" {
		t.Errorf("B's batch request span must name the sending node: herald.peer.name %q", attr(received, "herald.peer.name"))
	}
	return registrationTrace{a: a, b: b, expA: exps[0], expB: exps[1], task: task, batch: batch, apply: apply, received: received}
}

// A heartbeat superseded by a newer one for the same instance ends its task span with the
// superseded event.
func TestSupersededTaskSpan(t *testing.T) {
	// size-or-age holds every task for batching_delay, so the heartbeats meet in the pending stage.
	nodes, exps := tracedPair(t, "replication.flush_policy=size-or-age", "replication.workers=1",
		"replication.batching_delay=300ms", "replication.max_batch_size=1000", "telemetry.tracing.sampling.heartbeat=1")
	a := nodes[0]
	an := &e2e.Node{Name: "a", Port: portOf(a)}
	register(t, an, "SUP", "s1", 1000, nil)
	for i := 0; i < 3; i++ {
		if code, _ := do(t, "PUT", an.URL()+"apps/SUP/s1?status=UP", nil, nil); code != 200 {
			t.Fatalf("heartbeat %d", code)
		}
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		n := 0
		for _, s := range spansOf(t, a, exps[0]) {
			if s.Name() == "replicate Heartbeat" && hasEvent(s, "superseded") && attr(s, "herald.outcome") == "superseded" {
				n++
			}
		}
		if n < 2 {
			return fmt.Errorf("%d superseded heartbeat spans", n)
		}
		return nil
	})
}

func portOf(n *node.Node) int {
	_, p, _ := strings.Cut(n.Addr(), ":")
	v, _ := strconv.Atoi(p)
	return v
}

// With the default sampling, under a steady heartbeat load: every registration is traced, about
// 1% of heartbeats are, and anti-entropy digest checks are not.
func TestDefaultSamplingPerKind(t *testing.T) {
	nodes, exps := tracedPair(t, "cluster.anti_entropy.interval=200ms")
	a := &e2e.Node{Name: "a", Port: portOf(nodes[0])}
	const regs, beats = 20, 400
	for i := 0; i < regs; i++ {
		register(t, a, "SAMPLED", fmt.Sprintf("s%d", i), 1000, nil)
	}
	for i := 0; i < beats; i++ {
		if code, _ := do(t, "PUT", a.URL()+fmt.Sprintf("apps/SAMPLED/s%d?status=UP", i%regs), nil, nil); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	// Wait for several anti-entropy rounds to have run.
	e2e.Eventually(t, 20*time.Second, func() error {
		if n := nodes[0].Cluster().Stats().Exchanges; n < 5 {
			return fmt.Errorf("%d exchanges", n)
		}
		return nil
	})
	count := func(name string) int {
		n := 0
		for _, s := range spansOf(t, nodes[0], exps[0]) {
			if s.Name() == name {
				n++
			}
		}
		for _, s := range spansOf(t, nodes[1], exps[1]) {
			if s.Name() == name {
				n++
			}
		}
		return n
	}
	e2e.Eventually(t, 10*time.Second, func() error { // every registration starts a sampled trace
		if n := count("POST /eureka/apps/{app}"); n != regs {
			return fmt.Errorf("%d registration request spans, want %d", n, regs)
		}
		return nil
	})
	if n := count("PUT /eureka/apps/{app}/{id}"); n > beats/10 {
		t.Errorf("%d of %d heartbeat requests traced, want about 1%%", n, beats)
	}
	if n := count("replicate Heartbeat"); n > beats/10 {
		t.Errorf("%d of %d heartbeats traced, want about 1%%", n, beats)
	}
	if n := count("GET /herald/v1/digest"); n != 0 {
		t.Errorf("%d digest checks traced, want none", n)
	}
}

// /metrics in the OpenMetrics format carries exemplars with trace ids on the replication latency
// histograms (send and propagation), so a dashboard jumps from a slow bucket to its trace.
func TestMetricsExemplars(t *testing.T) {
	nodes, _ := tracedPair(t)
	a := &e2e.Node{Name: "a", Port: portOf(nodes[0])}
	register(t, a, "EXEMPLAR", "e1", 1000, nil)
	e2e.Eventually(t, 10*time.Second, func() error {
		code, body, err := client.Do(t.Context(), "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", portOf(nodes[0])), "", nil,
			map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"})
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		for _, name := range []string{"herald_replication_propagation_seconds_bucket", "herald_replication_send_seconds_bucket"} {
			found := false
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, name) && strings.Contains(line, `# {trace_id="`) {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("no exemplar with a trace id on %s", name)
			}
		}
		return nil
	})
}

// Every metric the example Grafana dashboard queries is served by a node (one that runs a plugin
// process, so the plugin metrics are there too).
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "grafana", "herald-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	nodes, _ := tracedPair(t, "plugin.transport.http.command="+heraldBin, "plugin.transport.http.args=plugin,serve,transport,http")
	code, body, err := client.Do(t.Context(), "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", portOf(nodes[0])), "", nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("metrics: %d %v", code, err)
	}
	served := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			served[f[2]] = true
		}
	}
	name := regexp.MustCompile(`herald_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suf); ok && served[b] {
						base = b
					}
				}
				if !served[base] {
					t.Errorf("panel %q queries %s, which no node serves", p.Title, m)
				}
			}
		}
	}
	if queried < 10 {
		t.Fatalf("only %d metric references found in the dashboard", queried)
	}
}
