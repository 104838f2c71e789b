package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchPerf, when set, makes the saturation benchmarks record the whole machine with Linux perf
// (call graphs, every process: the nodes, their plugin processes, the kernel) during their timed
// window only, one file per benchmark in that directory:
//
//	go test -run '^$' -bench TransportPlacement -benchtime 1x ./cmd/herald -bench.perf=/tmp/prof
//	perf report -i /tmp/prof/TransportPlacement_out-of-process.perf --no-children --sort comm,dso
var benchPerf = flag.String("bench.perf", "", "directory for a perf recording of each saturation benchmark's timed window")

// benchSets adds -set overrides to every node the benchmarks start: space-separated key=value
// pairs. Alternatives separated by "|" take turns, one per cluster the benchmark starts, so that
// with -count 2N the two configurations run N times each, interleaved, in one invocation (on a
// shared machine, figures compare only within one run):
//
//	go test -run '^$' -bench 'TransportPlacement/out-of-process' -benchtime 1x -count 10 ./cmd/herald \
//	  -bench.sets='plugin.transport.http.max_procs=1|plugin.transport.http.max_procs=0'
var benchSets = flag.String("bench.sets", "", `extra -set overrides for the benchmarks' nodes ("k=v k=v"; alternatives separated by "|" take turns)`)

// benchAltN counts the clusters started with -bench.sets.
var benchAltN int

// nextBenchSets is the -bench.sets alternative for the next cluster b starts (nil without the
// flag); it logs it beside the benchmark's figures.
func nextBenchSets(b testing.TB) []string {
	if *benchSets == "" {
		return nil
	}
	alts := strings.Split(*benchSets, "|")
	sets := strings.Fields(alts[benchAltN%len(alts)])
	benchAltN++
	b.Logf("bench.sets: %q", sets)
	return sets
}

// startPerf starts the recording for b and returns the function that ends it (a no-op without
// -bench.perf or without perf).
func startPerf(b *testing.B) func() {
	if *benchPerf == "" {
		return func() {}
	}
	if err := os.MkdirAll(*benchPerf, 0o755); err != nil {
		b.Logf("bench.perf: %v", err)
		return func() {}
	}
	out := filepath.Join(*benchPerf, strings.NewReplacer("/", "_", "Benchmark", "").Replace(b.Name())+".perf")
	cmd := exec.Command("perf", "record", "-a", "-g", "-F", "499", "-o", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Logf("bench.perf: %v", err)
		return func() {}
	}
	time.Sleep(300 * time.Millisecond) // perf's own start-up, before the window it records
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		b.Logf("bench.perf: %s", out)
	}
}
