package main

// Tests of `herald bench`: flag errors, and a smoke run of every scenario against real herald
// processes (built once by TestMain in cluster_test.go).
//
//	go test -run Bench ./cmd/herald/

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/cmd/herald/internal/bench"
	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

func runBench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cmdBench(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestBenchCommandFlagErrors(t *testing.T) {
	const u = "http://127.0.0.1:8761/eureka/"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "explode", u}, "unknown scenario"},
		{[]string{"-rate", "-5", u}, "-rate"},
		{[]string{"-rate", "fast", u}, "invalid value"},
		{[]string{}, "no URL"},
		{[]string{"-scenario", "heartbeat"}, "no URL"},
		{[]string{"not a url"}, "bad URL"},
		{[]string{"ftp://127.0.0.1/eureka/"}, "bad URL"},
		{[]string{"http://"}, "bad URL"},
		{[]string{"-connections", "0", u}, "-connections"},
		{[]string{"-format", "yaml", u}, "-format"},
		{[]string{"-scenario", "propagation", u}, "two URLs"},
		{[]string{"-no-such-flag", u}, "flag provided but not defined"},
		{[]string{u, "-duration", "-1s"}, "-duration"}, // flags after the URL are parsed too
	} {
		code, stdout, stderr := runBench(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("herald bench %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if code, _, stderr := runBench(t, "-h"); code != 0 || !strings.Contains(stderr, "-scenario") {
		t.Errorf("-h: exit %d\n%s", code, stderr)
	}
	// Through the top-level command switch too.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "-rate", "-1", u}, &stdout, &stderr); code != 2 {
		t.Errorf("herald bench -rate -1: exit %d", code)
	}
	if code, _, stderr := runBench(t, "-quiet", "-duration", "1s", "http://127.0.0.1:1/eureka/"); code != 1 || !strings.Contains(stderr, "cannot reach") {
		t.Errorf("unreachable server: exit %d, %q", code, stderr)
	}
}

// benchJSON runs herald bench with -json and decodes the summary.
func benchJSON(t *testing.T, args ...string) *bench.Result {
	t.Helper()
	code, stdout, stderr := runBench(t, append([]string{"-json", "-quiet"}, args...)...)
	if code != 0 {
		t.Fatalf("herald bench %q: exit %d\n%s", args, code, stderr)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("herald bench %q: %v\n%s", args, err, stdout)
	}
	if res.Requests == 0 || res.Throughput <= 0 || res.Latency.P50 <= 0 || res.ErrorCount != 0 {
		t.Fatalf("herald bench %q: %d requests, %.1f req/s, p50 %.3fms, errors %v\n%s",
			args, res.Requests, res.Throughput, res.Latency.P50, res.Errors, stderr)
	}
	t.Logf("%d requests, %.0f req/s, p50 %.3fms, p99 %.3fms, by kind %v", res.Requests, res.Throughput, res.Latency.P50, res.Latency.P99, res.ByKind)
	if p := res.Propagation; p != nil {
		t.Logf("propagation p50 %.3fms, p99 %.3fms over %d samples", p.P50, p.P99, p.Count)
	}
	for _, m := range res.Memory {
		t.Logf("%s: %.0f bytes of RSS, %.0f of heap per instance", m.Target, m.RSSPerInstance, m.HeapPerInstance)
	}
	return &res
}

// TestBenchSmoke runs every scenario for about a second against real herald nodes. It checks that
// runs complete without errors and report figures; it does not judge speed.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes")
	}
	common := []string{"-connections", "8", "-duration", "1s", "-warmup", "200ms", "-instances", "300"}

	t.Run("one-node", func(t *testing.T) {
		n := startCluster(t, 1, "")[0]
		v2 := strings.Replace(n.URL(), "/eureka/", "/eureka/v2/", 1)
		for _, c := range []struct {
			name string
			args []string
			kind string
		}{
			{"register", []string{"-scenario", "register"}, "register"},
			{"register-xml", []string{"-scenario", "register", "-format", "xml", "-payload", "2048"}, "register"},
			{"heartbeat-open-loop", []string{"-scenario", "heartbeat", "-rate", "1000"}, "heartbeat"},
			{"mixed", []string{"-scenario", "mixed", "-heartbeat-interval", "300ms"}, "heartbeat"},
			{"fetch", []string{"-scenario", "fetch", "-fetch", "both"}, "fetch-delta"},
			{"fetch-xml", []string{"-scenario", "fetch", "-fetch", "full", "-format", "xml"}, "fetch-full"},
		} {
			t.Run(c.name, func(t *testing.T) {
				args := append(append(append([]string{}, common...), c.args...), v2)
				res := benchJSON(t, args...)
				if res.ByKind[c.kind] == 0 {
					t.Errorf("no %s requests: %v", c.kind, res.ByKind)
				}
			})
		}
	})

	t.Run("cluster", func(t *testing.T) {
		nodes := startCluster(t, 2, "")
		a, b := nodes[0], nodes[1]
		t.Run("propagation", func(t *testing.T) {
			res := benchJSON(t, append(common, "-scenario", "propagation", "-rate", "500", a.URL(), b.URL())...)
			p := res.Propagation
			if p == nil || p.Count == 0 || p.P50 <= 0 || p.P99 < p.P50 || len(p.PerTarget) != 1 || p.Timeouts != 0 || p.PollErrors != 0 {
				t.Fatalf("propagation figures: %+v", p)
			}
		})
		t.Run("memory", func(t *testing.T) {
			res := benchJSON(t, "-scenario", "memory", "-instances", "2000", "-connections", "8", "-settle", "500ms", a.URL(), b.URL())
			if res.Requests != 2000 || len(res.Memory) != 2 {
				t.Fatalf("%d requests, %d memory rows", res.Requests, len(res.Memory))
			}
			for _, m := range res.Memory {
				if !m.MetricsAvailable || m.RSSAfter == 0 || m.InstancesAfter-m.InstancesBefore != 2000 || m.Note != "" {
					t.Errorf("%s: %+v", m.Target, m)
				}
			}
		})
	})
}

// TestBenchHeapProfile explains a node's memory per instance: it fills an in-process node with
// `herald bench -scenario memory` and writes the heap profile after a GC, e.g.
//
//	HERALD_BENCH_HEAP_PROFILE="$PWD"/heap.pb.gz HERALD_BENCH_INSTANCES=100000 go test -run BenchHeapProfile -v ./cmd/herald/
//	go tool pprof -sample_index=inuse_space -top "$PWD"/heap.pb.gz
//
// The run leaves its instances registered (-keep), so the profile shows what they hold. The load
// generator shares the process, but holds nothing once the run is over. A running node serves the
// same profile at /debug/pprof/heap when telemetry.profiling.enabled is true.
func TestBenchHeapProfile(t *testing.T) {
	path := os.Getenv("HERALD_BENCH_HEAP_PROFILE")
	if path == "" {
		t.Skip("set HERALD_BENCH_HEAP_PROFILE to a file to write the profile to")
	}
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_INSTANCES")); err == nil && v > 0 {
		n = v
	}
	port := e2e.FreePorts(t, 1)[0]
	cfg, err := loadConfig("", nil, []string{"node.port=" + strconv.Itoa(port), "node.name=heap", "log.level=error",
		"cluster.startup_sync.retries=0", "cluster.startup_sync.wait_when_empty=0s"})
	if err != nil {
		t.Fatal(err)
	}
	rn, err := startNode(context.Background(), cfg, hclog.NewNullLogger(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rn.Stop(context.Background()) }()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	code, stdout, stderr := runBench(t, "-scenario", "memory", "-instances", strconv.Itoa(n), "-quiet", "-keep", "-settle", "0s", urlOf(port))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	after := heap()
	t.Logf("live heap after GC: %.0f bytes per instance (%d instances)\n%s", float64(after-before)/float64(n), n, stdout)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
