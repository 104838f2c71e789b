package main

// Flush policies compared on one workload: three nodes in this process, real HTTP on 127.0.0.1.
//
//	go test ./cmd/herald -run '^$' -bench FlushPolicies -benchtime 1x

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/registry"
)

// BenchmarkFlushPolicies runs, per flush policy and in one 3-node cluster, a light-load phase
// (open loop at 500 registers/s at node A: propagation p50/p99 to B and C, tasks per batch) and
// then the saturation workload of BenchmarkReplicatedWrites (fully replicated writes/s, tasks per
// batch of the timed writes only).
//
// size-or-age runs with herald's default batching_delay (1ms) and with 5ms. adaptive takes
// batching_delay as its max_delay, so it runs with 5ms (the policy's own default) and with the
// 1ms default; and as a plugin process (max_delay 5ms from the plugin's defaults), where every
// decision is a gRPC call.
func BenchmarkFlushPolicies(b *testing.B) {
	for _, c := range []struct {
		name string
		sets []string
	}{
		{"size-or-age/delay=1ms", []string{"replication.flush_policy=size-or-age", "replication.batching_delay=1ms"}},
		{"size-or-age/delay=5ms", []string{"replication.flush_policy=size-or-age", "replication.batching_delay=5ms"}},
		{"adaptive/max_delay=5ms", []string{"replication.flush_policy=adaptive", "replication.batching_delay=5ms"}},
		{"adaptive/max_delay=1ms", []string{"replication.flush_policy=adaptive", "replication.batching_delay=1ms"}},
		{"adaptive/out-of-process", []string{"replication.flush_policy=adaptive",
			"plugin.flush_policy.adaptive.command=" + heraldBin, "plugin.flush_policy.adaptive.args=plugin,serve,flush_policy,adaptive"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			nodes := benchCluster(b, 3, c.sets...)
			light := lightPropagation(b, nodes, 500, 2*time.Second)
			sat := saturate(b, nodes)
			// Reported last: replicatedWrites-style timing resets the benchmark's metrics.
			b.ReportMetric(light.p50, "light-p50-ms")
			b.ReportMetric(light.p99, "light-p99-ms")
			b.ReportMetric(light.tasksPerBatch, "light-tasks/batch")
			b.ReportMetric(light.delivered, "light-delivered")
			b.ReportMetric(sat.writesPerSec, "replicated-writes/s")
			b.ReportMetric(sat.tasksPerBatch, "sat-tasks/batch")
			b.ReportMetric(sat.delivered, "sat-delivered")
		})
	}
}

// openLoopRegisters registers instances prefix0, prefix1, ... of app at a node's Eureka base URL
// at a fixed rate for dur (open loop: a slow answer does not delay the next request; at most 64
// in flight) and returns, per register, when its 204 arrived (zero for a failure).
func openLoopRegisters(url, app, prefix string, rate int, dur time.Duration) []time.Time {
	total := int(float64(rate) * dur.Seconds())
	acked := make([]time.Time, total)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if code, err := post(url+"apps/"+app, e2e.InstanceJSON(app, prefix+strconv.Itoa(i), 1000, "UP", nil)); err == nil && code == 204 {
				acked[i] = time.Now()
			}
		}(i)
	}
	wg.Wait()
	return acked
}

// batchCounts sums batches and items sent by every node's pipelines.
func batchCounts(nodes []*node.Node) (batches, items int64) {
	for _, n := range nodes {
		for _, s := range n.Replicator().Stats() {
			batches += s.Batches
			items += s.Items
		}
	}
	return batches, items
}

func perBatch(b0, i0, b1, i1 int64) float64 {
	if b1 == b0 {
		return 0
	}
	return float64(i1-i0) / float64(b1-b0)
}

type lightResult struct{ p50, p99, tasksPerBatch, delivered float64 }

// lightPropagation registers at node A at a fixed rate (open loop) and measures the time from
// each 204 to the apply of the replicated register at every other node.
func lightPropagation(b *testing.B, nodes []*node.Node, rate int, dur time.Duration) lightResult {
	a, peers := nodes[0], nodes[1:]
	const app = "LIGHT"
	var mu sync.Mutex
	arrived := make([]map[string]time.Time, len(peers))
	for i, n := range peers {
		arrived[i] = map[string]time.Time{}
		n.Registry().Subscribe(func(_ context.Context, w registry.Write) {
			if w.App != app || w.Origin != registry.FromPeer || w.Action != registry.ActionRegister {
				return
			}
			now := time.Now()
			mu.Lock()
			arrived[i][w.ID] = now
			mu.Unlock()
		})
	}
	b0, i0 := batchCounts(nodes)
	acked := openLoopRegisters(a.URL(), app, "l-", rate, dur)
	total := len(acked)
	want := total * len(peers)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := 0
		for _, m := range arrived {
			n += len(m)
		}
		mu.Unlock()
		if n >= want {
			break
		}
	}
	b1, i1 := batchCounts(nodes)
	var lat []time.Duration
	mu.Lock()
	for i, t := range acked {
		if t.IsZero() {
			continue
		}
		for _, m := range arrived {
			if at, ok := m["l-"+strconv.Itoa(i)]; ok {
				lat = append(lat, max(0, at.Sub(t)))
			}
		}
	}
	mu.Unlock()
	return lightResult{
		p50:           float64(percentile(lat, 0.5).Microseconds()) / 1000,
		p99:           float64(percentile(lat, 0.99).Microseconds()) / 1000,
		tasksPerBatch: perBatch(b0, i0, b1, i1),
		delivered:     float64(len(lat)) / float64(want),
	}
}

type satResult struct{ writesPerSec, tasksPerBatch, delivered float64 }

// saturate is the workload of replicatedWrites on a running cluster: 30,000 client writes (half
// registers, half heartbeats of 3,000 instances registered beforehand) over 64 keep-alive
// connections spread over the nodes; the clock stops when every other node has applied every
// write. Tasks per batch count only the batches sent after the untimed registrations drained.
func saturate(b *testing.B, nodes []*node.Node) satResult {
	const instances, total, conns = 3000, 30000, 64
	for i := 0; i < instances; i++ {
		n := nodes[i%len(nodes)]
		if code, err := post(n.URL()+"apps/LOAD", e2e.InstanceJSON("LOAD", "h-"+strconv.Itoa(i), 1000, "UP", nil)); err != nil || code != 204 {
			b.Fatalf("register: %d %v", code, err)
		}
	}
	peerWrites := func() int64 {
		var sum int64
		for _, n := range nodes {
			sum += n.Registry().Stats().ReplicatedWrites
		}
		return sum
	}
	// Let the registrations replicate, so that neither they nor their batches count.
	for want, deadline := int64(instances*(len(nodes)-1)), time.Now().Add(30*time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if peerWrites() >= want {
			break
		}
	}
	base := peerWrites()
	b0, i0 := batchCounts(nodes)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				n := nodes[i%len(nodes)]
				var code int
				var err error
				if i%2 == 0 {
					code, err = post(n.URL()+"apps/LOAD", e2e.InstanceJSON("LOAD", "w-"+strconv.Itoa(i), 1000, "UP", nil))
				} else {
					code, err = put(n.URL() + "apps/LOAD/h-" + strconv.Itoa(i%instances) + "?status=UP&lastDirtyTimestamp=1000")
				}
				if err != nil || (code != 204 && code != 200) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	want := base + int64((len(nodes)-1)*(total-int(failed.Load())))
	for deadline := time.Now().Add(60 * time.Second); peerWrites() < want && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b1, i1 := batchCounts(nodes)
	return satResult{
		writesPerSec:  float64(total) / el.Seconds(),
		tasksPerBatch: perBatch(b0, i0, b1, i1),
		delivered:     float64(peerWrites()-base) / float64((len(nodes)-1)*total),
	}
}
