package main

// Replication benchmarks: three nodes in this process, talking real HTTP on 127.0.0.1.
//
//	go test ./cmd/herald -run '^$' -bench 'Propagation|Replicated' -benchtime 1x

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// benchCluster starts n nodes in-process with the given overrides on top of test defaults.
func benchCluster(b *testing.B, n int, sets ...string) []*node.Node {
	b.Helper()
	ports := e2e.FreePorts(b, n)
	var urls []string
	for _, p := range ports {
		u := urlOf(p)
		if benchTLS != nil {
			u = strings.Replace(u, "http://", "https://", 1)
		}
		urls = append(urls, u)
	}
	alt := nextBenchSets(b)
	var nodes []*node.Node
	for i, p := range ports {
		cfg, err := loadConfig("", nil, append([]string{
			"node.port=" + strconv.Itoa(p),
			"node.name=bench-" + strconv.Itoa(i),
			"cluster.peers=" + strings.Join(urls, ","),
			"cluster.peer_auth.secret=" + e2e.ClusterSecret,
			"cluster.startup_sync.retries=0",
			"cluster.startup_sync.wait_when_empty=0s",
			"log.level=error",
		}, append(append(benchTLSSets(i), sets...), alt...)...))
		if err != nil {
			b.Fatal(err)
		}
		var mutate func(*node.Config)
		if withSpanSink {
			mutate = func(c *node.Config) { c.Telemetry.Exporter = discardExporter{} }
		}
		rn, err := startNodeWith(context.Background(), cfg, hclog.NewNullLogger(), true, mutate)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, rn)
	}
	b.Cleanup(func() {
		for _, rn := range nodes {
			_ = rn.Stop(context.Background())
		}
	})
	return nodes
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}, Timeout: 10 * time.Second}

func post(url string, body []byte) (int, error) {
	resp, err := benchClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func put(url string) (int, error) {
	req, _ := http.NewRequest(http.MethodPut, url, nil)
	resp, err := benchClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkPropagation measures the time from the 204 of a register at node A to its apply at
// node B, at a fixed rate of client writes spread over A, for several batching delays of Eureka's
// rule (size-or-age; the adaptive policy is compared with it in BenchmarkFlushPolicies).
func BenchmarkPropagation(b *testing.B) {
	for _, delay := range []string{"0s", "1ms", "5ms", "500ms"} {
		for _, rate := range []int{1000, 4000, 8000} {
			b.Run(fmt.Sprintf("delay=%s/rate=%d", delay, rate), func(b *testing.B) {
				propagation(b, rate, "replication.flush_policy=size-or-age", "replication.batching_delay="+delay)
			})
		}
	}
}

// BenchmarkPlacementPropagation is the light-load side of BenchmarkTransportPlacement: the
// propagation time of BenchmarkPropagation at 1,000 registers/s, default configuration, with the
// http transport in the node and as a plugin process. Out of process it also reports the
// difference of the medians to the in-process run before it (p50-diff-ms).
func BenchmarkPlacementPropagation(b *testing.B) {
	var inP50 []float64
	b.Run("in-process", func(b *testing.B) {
		inP50 = append(inP50, propagation(b, 1000))
	})
	b.Run("out-of-process", func(b *testing.B) {
		p50 := propagation(b, 1000, "plugin.transport.http.command="+heraldBin, "plugin.transport.http.args=plugin,serve,transport,http")
		if len(inP50) > 0 {
			sort.Float64s(inP50)
			b.ReportMetric(p50-inP50[len(inP50)/2], "p50-diff-ms")
		}
	})
}

// propagation sends registers to node A of two at a fixed rate for 2 s and reports the time from
// each 204 at A to the register's apply at B (p50-ms, p99-ms), the share delivered and the tasks
// per batch. It returns the median in ms.
func propagation(b *testing.B, rate int, sets ...string) float64 {
	nodes := benchCluster(b, 2, sets...)
	a, bn := nodes[0], nodes[1]
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	bn.Registry().Subscribe(func(_ context.Context, w registry.Write) {
		if w.Origin == registry.FromPeer && w.Action == registry.ActionRegister {
			now := time.Now()
			mu.Lock()
			arrived[w.ID] = now
			mu.Unlock()
		}
	})
	b.ResetTimer()
	acked := openLoopRegisters(a.URL(), "PROP", "p-", rate, 2*time.Second)
	total := len(acked)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	var lat []time.Duration
	mu.Lock()
	for i, t := range acked {
		if at, ok := arrived["p-"+strconv.Itoa(i)]; ok && !t.IsZero() {
			lat = append(lat, max(0, at.Sub(t)))
		}
	}
	mu.Unlock()
	st := a.Replicator().Stats()
	var batches, items int64
	for _, s := range st {
		batches += s.Batches
		items += s.Items
	}
	p50 := float64(percentile(lat, 0.5).Microseconds()) / 1000
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat))/float64(total), "delivered")
	if batches > 0 {
		b.ReportMetric(float64(items)/float64(batches), "tasks/batch")
	}
	return p50
}

// BenchmarkReplicatedWrites measures client writes per second that are fully replicated to the
// two other nodes: registers and heartbeats spread over three nodes by 64 keep-alive connections.
// The clock stops when every peer has applied every write. It runs Eureka's rule (size-or-age) at
// several batching delays; the adaptive policy (the default) is compared with it in
// BenchmarkFlushPolicies.
func BenchmarkReplicatedWrites(b *testing.B) {
	for _, delay := range []string{"0s", "1ms", "5ms"} {
		b.Run("delay="+delay, func(b *testing.B) {
			replicatedWrites(b, "replication.flush_policy=size-or-age", "replication.batching_delay="+delay)
		})
	}
}

// BenchmarkTransportPlacement compares the http transport in-process with the same transport run
// as a plugin process over go-plugin (gRPC, mutual TLS), and with the example transport written
// against the SDK alone (examples/transport-custom, "jsonline") as a plugin process, whose
// receiving side hands each batch back to its node over go-plugin (sdk.Host.Receive), in one run.
// Besides writes/s it reports the CPU time per replicated write of the whole benchmark process and
// its plugin processes (cpu-µs/write), and, for out-of-process and jsonline, both figures as
// ratios to the median of the in-process runs before them (ratio-writes, ratio-cpu).
func BenchmarkTransportPlacement(b *testing.B) {
	placementBaseline.writes, placementBaseline.cpu = nil, nil
	b.Run("in-process", func(b *testing.B) {
		r := replicatedWrites(b)
		placementBaseline.add(r.writesPerSec, r.cpuPerWrite)
	})
	b.Run("out-of-process", func(b *testing.B) {
		r := replicatedWrites(b, "plugin.transport.http.command="+heraldBin, "plugin.transport.http.args=plugin,serve,transport,http")
		if w, c := placementBaseline.medians(); w > 0 && c > 0 {
			b.ReportMetric(r.writesPerSec/w, "ratio-writes")
			b.ReportMetric(r.cpuPerWrite/c, "ratio-cpu")
		}
	})
	b.Run("jsonline", func(b *testing.B) {
		r := replicatedWrites(b, "replication.transport=jsonline",
			"plugin.transport.jsonline.command="+exampleBinary(b, "transport-custom"),
			// Each node listens on its Eureka port plus port_offset (the example's convention).
			// The nodes' ports are free ports from Linux's ephemeral range (ip_local_port_range,
			// 32768–60999 by default); this offset puts the listeners below it, where no free port
			// the benchmark picks and no outgoing connection's port can be.
			"plugin.transport.jsonline.config.port_offset="+strconv.Itoa(jsonlinePortOffset))
		if w, c := placementBaseline.medians(); w > 0 && c > 0 {
			b.ReportMetric(r.writesPerSec/w, "ratio-writes")
			b.ReportMetric(r.cpuPerWrite/c, "ratio-cpu")
		}
	})
}

// jsonlinePortOffset is the jsonline listeners' offset from their nodes' Eureka ports in the
// benchmarks.
const jsonlinePortOffset = -30000

// BenchmarkTracingOverhead runs the saturation workload with tracing off, at 1% and at 100%
// sampling, in one run. Spans go to an in-memory exporter (no network), so this is the cost of
// creating and recording them.
func BenchmarkTracingOverhead(b *testing.B) {
	for _, c := range []struct {
		name string
		sets []string
	}{
		{"off", nil},
		{"sampled=1%", []string{"telemetry.tracing.enabled=true", "telemetry.tracing.sample_ratio=0.01", "telemetry.tracing.sampling.heartbeat=1"}},
		{"sampled=100%", []string{"telemetry.tracing.enabled=true", "telemetry.tracing.sample_ratio=1", "telemetry.tracing.sampling.heartbeat=1"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			withSpanSink = len(c.sets) > 0
			defer func() { withSpanSink = false }()
			replicatedWrites(b, c.sets...)
		})
	}
}

// withSpanSink makes benchCluster give each node an in-memory span exporter.
var withSpanSink bool

// writesResult is what replicatedWrites measured.
type writesResult struct {
	writesPerSec float64
	cpuPerWrite  float64 // µs of CPU, this process and its plugin processes
}

// writesCluster is what the saturation workload needs of a three-node cluster, whether its nodes
// run in the benchmark process (benchCluster) or as processes of their own (processCluster).
type writesCluster struct {
	urls []string // the nodes' Eureka base URLs
	// peerWrites is the number of replicated writes the nodes have applied, summed.
	peerWrites func() int64
	// batches is the number of batches the nodes have sent and the tasks in them, summed.
	batches func() (batches, items int64)
}

// replicatedWrites runs the saturation workload on three nodes in the benchmark process.
func replicatedWrites(b *testing.B, sets ...string) writesResult {
	nodes := benchCluster(b, 3, sets...)
	c := writesCluster{
		peerWrites: func() int64 {
			var sum int64
			for _, n := range nodes {
				sum += n.Registry().Stats().ReplicatedWrites
			}
			return sum
		},
		batches: func() (batches, items int64) {
			for _, n := range nodes {
				for _, s := range n.Replicator().Stats() {
					batches += s.Batches
					items += s.Items
				}
			}
			return batches, items
		},
	}
	for _, n := range nodes {
		c.urls = append(c.urls, n.URL())
	}
	return runWrites(b, c)
}

// runWrites is the saturation workload: 30,000 client writes (registers and heartbeats, half
// each) spread over the three nodes by 64 keep-alive connections; the clock stops when every peer
// has applied every write.
func runWrites(b *testing.B, c writesCluster) writesResult {
	const instances = 3000
	// Register the instances heartbeats will renew (not timed).
	for i := 0; i < instances; i++ {
		u := c.urls[i%3]
		if code, err := post(u+"apps/LOAD", e2e.InstanceJSON("LOAD", "h-"+strconv.Itoa(i), 1000, "UP", nil)); err != nil || code != 204 {
			b.Fatalf("register: %d %v", code, err)
		}
	}
	peerWrites := c.peerWrites
	base := peerWrites()
	total := 30000
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	stopPerf := startPerf(b)
	b.ResetTimer()
	cpu0 := treeCPU()
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				u := c.urls[i%3]
				var code int
				var err error
				if i%2 == 0 {
					code, err = post(u+"apps/LOAD", e2e.InstanceJSON("LOAD", "w-"+strconv.Itoa(i), 1000, "UP", nil))
				} else {
					code, err = put(u + "apps/LOAD/h-" + strconv.Itoa(i%instances) + "?status=UP&lastDirtyTimestamp=1000")
				}
				if err != nil || (code != 204 && code != 200) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	clientDone := time.Since(start)
	want := base + int64(2*(total-int(failed.Load())))
	deadline := time.Now().Add(60 * time.Second)
	for peerWrites() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	cpu := treeCPU() - cpu0
	b.StopTimer()
	stopPerf()
	got := peerWrites() - base
	batches, items := c.batches()
	b.ReportMetric(float64(total)/el.Seconds(), "replicated-writes/s")
	b.ReportMetric(float64(total)/clientDone.Seconds(), "acked-writes/s")
	b.ReportMetric(float64(got)/float64(2*total), "delivered")
	b.ReportMetric(float64(failed.Load()), "failed")
	// Wire bytes per task: the replication batch body divided by its items, for a batch of the
	// registers and heartbeats this benchmark sends, as the http transport encodes it.
	b.ReportMetric(bytesPerTask(b), "wire-bytes/task")
	if batches > 0 {
		b.ReportMetric(float64(items)/float64(batches), "tasks/batch")
	}
	r := writesResult{writesPerSec: float64(total) / el.Seconds(), cpuPerWrite: float64(cpu.Microseconds()) / float64(total)}
	b.ReportMetric(r.cpuPerWrite, "cpu-µs/write")
	return r
}

func bytesPerTask(b *testing.B) float64 {
	inst, err := codec.DecodeInstance(e2e.InstanceJSON("LOAD", "w-1", 1000, "UP", nil), codec.JSON)
	if err != nil {
		b.Fatal(err)
	}
	bare := codec.AppendInstanceBare(nil, inst)
	items := []sdk.Item{
		{Action: sdk.ActionRegister, App: "LOAD", ID: "w-1", LastDirtyTimestamp: 1000, Status: "UP", Instance: bare},
		{Action: sdk.ActionHeartbeat, App: "LOAD", ID: "h-1", LastDirtyTimestamp: 1000, Status: "UP"},
	}
	return float64(len(eurekawire.AppendReplicationList(nil, items))) / float64(len(items))
}

// discardExporter accepts spans and drops them, so the benchmark measures recording, not memory
// growth.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }
