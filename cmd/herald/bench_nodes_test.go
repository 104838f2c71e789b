package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// BenchmarkTransportPlacementNodes is BenchmarkTransportPlacement with every node its own herald
// process, as a cluster is deployed: replication between nodes crosses processes in-process too,
// as it crosses machines in production, instead of staying inside one Go runtime. Out of process,
// each node runs its http transport as a plugin process: three node processes, three plugin
// processes and the benchmark's clients on one machine. cpu-µs/write sums every process of the
// cluster; out of process also reports both figures as ratios to the in-process runs before it.
func BenchmarkTransportPlacementNodes(b *testing.B) {
	var base baseline
	b.Run("in-process", func(b *testing.B) {
		r := runWrites(b, processCluster(b, ""))
		base.add(r.writesPerSec, r.cpuPerWrite)
	})
	b.Run("out-of-process", func(b *testing.B) {
		r := runWrites(b, processCluster(b, "plugin \"transport\" \"http\" {\n  out_of_process = true\n}\n"))
		if w, c := base.medians(); w > 0 && c > 0 {
			b.ReportMetric(r.writesPerSec/w, "ratio-writes")
			b.ReportMetric(r.cpuPerWrite/c, "ratio-cpu")
		}
	})
}

// processCluster starts three herald processes with the default configuration (what
// benchCluster sets besides: peers, log level, no startup sync wait), plus extra HCL and the
// -bench.sets alternatives as environment variables.
func processCluster(b *testing.B, extra string) writesCluster {
	ports := e2e.FreePorts(b, 3)
	var urls, quoted []string
	for _, p := range ports {
		urls = append(urls, urlOf(p))
		quoted = append(quoted, strconv.Quote(urlOf(p)))
	}
	var env []string
	for _, kv := range nextBenchSets(b) {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, "HERALD_"+strings.ToUpper(strings.ReplaceAll(k, ".", "__"))+"="+v)
	}
	nodes := make([]*e2e.Node, len(ports))
	for i, p := range ports {
		nodes[i] = e2e.NewNode(b, heraldBin, "bench-"+strconv.Itoa(i), p, fmt.Sprintf(`
node {
  name = "bench-%d"
  port = %d
}
log { level = "error" }
cluster {
  peers = [%s]
  startup_sync {
    retries         = 0
    wait_when_empty = "0s"
  }
}
%s`, i, p, strings.Join(quoted, ", "), extra))
		nodes[i].Env = env
		nodes[i].Start()
	}
	sum := func(name string) int64 {
		var total float64
		for _, n := range nodes {
			v, err := metricSum(n, name)
			if err != nil {
				b.Fatal(err)
			}
			total += v
		}
		return int64(total)
	}
	return writesCluster{
		urls:       urls,
		peerWrites: func() int64 { return sum(`herald_registry_writes_total{origin="peer"}`) },
		batches: func() (int64, int64) {
			return sum("herald_replication_batch_size_count"), sum("herald_replication_batch_size_sum")
		},
	}
}
