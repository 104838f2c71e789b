package main

import (
	"fmt"
	"sort"
	"strings"
)

// column is one figure of a table: a benchmark unit and its heading.
type column struct{ unit, head string }

// table renders every benchmark whose name starts with prefix as a row, with the given columns and
// the ratio of the first column to the baseline row's (a name suffix after the prefix; "" = none).
func table(r results, prefix, rowHead, baseline string, cols ...column) string {
	var names []string
	for n := range r {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| " + rowHead)
	for _, c := range cols {
		b.WriteString(" | " + c.head)
	}
	if baseline != "" {
		b.WriteString(" | ratio to " + baseline)
	}
	b.WriteString(" |\n|---")
	for range cols {
		b.WriteString("|---")
	}
	if baseline != "" {
		b.WriteString("|---")
	}
	b.WriteString("|\n")
	base := r.get(prefix+baseline, cols[0].unit)
	for _, n := range names {
		row := strings.TrimPrefix(strings.TrimPrefix(n, prefix), "/")
		if row == "" {
			row = strings.TrimPrefix(n, "Benchmark")
		}
		b.WriteString("| " + row)
		for _, c := range cols {
			b.WriteString(" | " + num(r.get(n, c.unit)))
		}
		if baseline != "" {
			b.WriteString(" | " + ratio(r.get(n, cols[0].unit), base))
		}
		b.WriteString(" |\n")
	}
	return b.String() + "\n"
}

var sections = []section{
	{"node", func() (string, error) {
		r, cmd, err := goBench("./core/eureka", "HTTP|BareHandler|GetApps10k", "3s")
		if err != nil {
			return "", err
		}
		bare := r.get("BenchmarkBareHandler", "req/s")
		var b strings.Builder
		b.WriteString("## Single node: the Eureka API over HTTP\n\n")
		b.WriteString("64 keep-alive connections from the benchmark process, real loopback HTTP, a real registry\n" +
			"behind the real handler. The baseline is a bare `net/http` handler that decodes the same register\n" +
			"body into `map[string]any`, measured in the same run.\n\n")
		b.WriteString(codeBlock(cmd))
		b.WriteString("| request | req/s | ratio to the bare handler | target |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| bare handler | %s | 1.00× | baseline |\n", num(bare))
		fmt.Fprintf(&b, "| register `POST /eureka/v2/apps/{app}` (204) | %s | %s | ≥ 0.75× |\n",
			num(r.get("BenchmarkRegisterHTTP", "req/s")), ratio(r.get("BenchmarkRegisterHTTP", "req/s"), bare))
		fmt.Fprintf(&b, "| heartbeat `PUT /eureka/v2/apps/{app}/{id}` (200) | %s | %s | ≥ 0.75× |\n",
			num(r.get("BenchmarkHeartbeatHTTP", "req/s")), ratio(r.get("BenchmarkHeartbeatHTTP", "req/s"), bare))
		fmt.Fprintf(&b, "| full `GET /eureka/v2/apps`, 10,000 instances, cached, gzip, JSON | %s | — | ≥ 1,000 |\n",
			num(r.get("BenchmarkGetApps10k/application/json", "req/s")))
		fmt.Fprintf(&b, "| same, XML | %s | — | ≥ 1,000 |\n\n", num(r.get("BenchmarkGetApps10k/application/xml", "req/s")))
		return b.String(), nil
	}},
	{"replication", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "ReplicatedWrites", "1x")
		if err != nil {
			return "", err
		}
		return "## Three nodes: fully replicated writes per second\n\n" +
			"Three nodes in one process replicate over real HTTP with the `http` transport (as processes of\n" +
			"their own they reach far fewer writes/s on the same cores: see \"The http transport in-process\n" +
			"and as a plugin process\"). 30,000 client writes (half registers, half heartbeats of 3,000\n" +
			"instances) over 64 keep-alive connections spread over the three nodes; the clock stops when both\n" +
			"other nodes applied every write, with Eureka's rule (`size-or-age`) at each `batching_delay`\n" +
			"(the default `adaptive` policy is in \"Flush policies\" below). Target: ≥ 10,000/s at 1 ms.\n\n" +
			codeBlock(cmd) +
			table(r, "BenchmarkReplicatedWrites/", "batching_delay", "delay=1ms",
				column{"replicated-writes/s", "replicated writes/s"}, column{"acked-writes/s", "acked writes/s"},
				column{"tasks/batch", "tasks per batch"}, column{"wire-bytes/task", "wire bytes per task"}), nil
	}},
	{"propagation", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "Propagation", "1x")
		if err != nil {
			return "", err
		}
		return "## Propagation: from the client's 204 at A to the apply at B\n\n" +
			"Open loop at a fixed rate of registers at A for 2 s; `size-or-age` per `replication.batching_delay`\n" +
			"(500ms is Eureka's). 8,000/s is near the pair's saturation. Targets at 1,000/s: p50 ≤ 5 ms, p99 ≤ 25 ms.\n\n" +
			codeBlock(cmd) +
			table(r, "BenchmarkPropagation/", "delay / rate", "",
				column{"p50-ms", "p50 ms"}, column{"p99-ms", "p99 ms"}, column{"tasks/batch", "tasks per batch"},
				column{"delivered", "delivered"}), nil
	}},
	{"placement", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "TransportPlacement|PlacementPropagation", "1x")
		if err != nil {
			return "", err
		}
		return "## The http transport in-process and as a plugin process\n\n" +
			"The saturation workload above, with the `http` transport in the node and as its own process\n" +
			"(go-plugin, gRPC, mutual TLS; batches on one long-lived stream per plugin; `GOMAXPROCS=1` in the\n" +
			"plugin process), with the default flush policy (`adaptive`, 5 ms) in both. CPU per write is the\n" +
			"benchmark process's and its plugin processes'. Targets: out of process ≥ 0.9× in writes/s, ≤ 1.15×\n" +
			"in CPU per write.\n\n" + codeBlock(cmd) +
			"Three nodes in the benchmark process (`TransportPlacement`): replication between them never\n" +
			"leaves one Go runtime in-process, so the in-process row pays no process wakeups at all.\n\n" +
			table(r, "BenchmarkTransportPlacement/", "transport", "in-process",
				column{"replicated-writes/s", "replicated writes/s"}, column{"cpu-µs/write", "CPU µs per write"},
				column{"tasks/batch", "tasks per batch"}) +
			"Each node its own herald process, as deployed (`TransportPlacementNodes`); CPU per write sums\n" +
			"every process of the cluster:\n\n" +
			table(r, "BenchmarkTransportPlacementNodes/", "transport", "in-process",
				column{"replicated-writes/s", "replicated writes/s"}, column{"cpu-µs/write", "CPU µs per write"},
				column{"tasks/batch", "tasks per batch"}) +
			"Light load, 1,000 registers/s at A, from the client's 204 to the apply at B\n" +
			"(`PlacementPropagation`). Targets out of process: p99 ≤ 5 ms, p50 within 0.5 ms of in-process.\n\n" +
			table(r, "BenchmarkPlacementPropagation/", "transport", "",
				column{"p50-ms", "p50 ms"}, column{"p99-ms", "p99 ms"}, column{"tasks/batch", "tasks per batch"},
				column{"delivered", "delivered"}), nil
	}},
	{"hop", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "PluginHop", "20000x")
		if err != nil {
			return "", err
		}
		return "## The plugin hop alone\n\n" +
			"Batches of 5 tasks from 40 goroutines to a stub peer that answers 200 per item, through the\n" +
			"`http` transport in-process, and in a plugin process on the batch stream and by one unary\n" +
			"gRPC call per batch (how every batch went before the stream; a batch in a sampled trace still\n" +
			"does). CPU per batch is the benchmark process's (stub peer included) and the plugin's.\n\n" + codeBlock(cmd) +
			table(r, "BenchmarkPluginHop/", "placement", "in-process",
				column{"batches/s", "batches/s"}, column{"cpu-µs/batch", "CPU µs per batch"}), nil
	}},
	{"transports", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "^BenchmarkTransports$", "1x")
		if err != nil {
			return "", err
		}
		return "## grpc and http transports\n\n" +
			"Replicated writes with each first-party transport, with and without compression, same run.\n\n" +
			codeBlock(cmd) +
			table(r, "BenchmarkTransports/", "transport", "http",
				column{"replicated-writes/s", "replicated writes/s"}, column{"cpu-µs/write", "CPU µs per write"},
				column{"wire-bytes/task", "wire bytes per task"}), nil
	}},
	{"flush", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "FlushPolicies", "1x")
		if err != nil {
			return "", err
		}
		d, cmd2, err := goBench("./cmd/herald", "FlushDecision", "2000x")
		if err != nil {
			return "", err
		}
		return "## Flush policies: adaptive and size-or-age\n\n" +
			"Light load: 500 registers/s open loop, propagation p50/p99. Saturation: fully replicated\n" +
			"writes/s. Same run, three nodes. `adaptive` with `batching_delay` 5 ms is the default.\n\n" + codeBlock(cmd) +
			table(r, "BenchmarkFlushPolicies/", "policy", "size-or-age/delay=1ms",
				column{"replicated-writes/s", "writes/s at saturation"}, column{"light-p50-ms", "light p50 ms"},
				column{"light-p99-ms", "light p99 ms"}, column{"light-tasks/batch", "light tasks/batch"},
				column{"sat-tasks/batch", "saturated tasks/batch"}) +
			"The cost of one flush-policy decision (the host asks per decision, never per task):\n\n" +
			codeBlock(cmd2) +
			table(d, "BenchmarkFlushDecision/", "placement", "in-process", column{"ns/decision", "ns per decision"}), nil
	}},
	{"tracing", func() (string, error) {
		r, cmd, err := goBench("./cmd/herald", "TracingOverhead", "1x")
		if err != nil {
			return "", err
		}
		return "## Tracing overhead\n\n" +
			"The saturation workload with tracing off, at 1% and at 100% parent-based sampling; spans are\n" +
			"recorded and handed to an exporter that drops them. Target: 1% ≥ 0.95× of off. Sub-benchmarks\n" +
			"run one after the other on a shared machine: read a difference of a few percent as noise.\n\n" +
			codeBlock(cmd) +
			table(r, "BenchmarkTracingOverhead/", "tracing", "off", column{"replicated-writes/s", "replicated writes/s"}), nil
	}},
	{"memory", memorySection},
	{"bench", benchToolSection},
}

const anchors = `## Published figures for context

- **Eureka**: replication batches are cut at 250 tasks or after 500 ms (` + "`PeerEurekaNode`" + `, server
  defaults), which is the 500ms row of the propagation table: about 130 ms p50 at light load. Its
  read-only response cache refreshes every 30 s, so a change reaches a client fetching ` + "`/apps`" + ` up to
  ~30 s later by default (herald keeps both settings; see ` + "`config.hcl`" + `).
- **Nacos 2.0**: 26.8k register TPS on a three-node cluster of 8-core machines (Nacos 2.0 performance
  report, nacos.io). herald's 3-node replicated-writes figure above is on 2 cores in total, with all
  three nodes on them; per core it is the comparable figure.
`
