package main

// The fault-schedule checker: real herald processes, a seeded schedule of kill -9, SIGSTOP,
// partitions and slow links, clients recording every acknowledged write, then a check that nothing
// acknowledged was lost and the registries converged. See internal/faultcheck and RELIABILITY.md.
//
// Reproduce a run with the command it prints, e.g.
//
//	go test ./cmd/herald -run TestFaultSchedule -v -faultcheck.seed=7 -faultcheck.duration=5m

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/faultcheck"
)

var (
	fcSeed     = flag.Int64("faultcheck.seed", 1, "fault schedule seed (0: a new one from the clock)")
	fcDuration = flag.Duration("faultcheck.duration", 35*time.Second, "length of the fault phase")
	fcNodes    = flag.Int("faultcheck.nodes", 3, "cluster size (3-5)")
	fcWriters  = flag.Int("faultcheck.writers", 6, "client goroutines")
	fcFaults   = flag.String("faultcheck.faults", "all", "fault kinds, comma-separated: kill,restart,pause,partition,link,slow")
	fcRoam     = flag.Float64("faultcheck.roam", 0, "fraction of a writer's operations sent to a random node instead of its home node")
	fcMaxRSS   = flag.Int64("faultcheck.maxrss", 256, "bound on every node's resident memory, MiB")
	fcSettle   = flag.Duration("faultcheck.settle", 40*time.Second, "bound on the wait for convergence after healing")
	fcRuns     = flag.Int("faultcheck.runs", 1, "schedules to run, with seeds seed, seed+1, ...")
	fcEnv      = flag.String("faultcheck.env", "", "extra environment for every node, comma-separated HERALD_KEY=value")
	fcLogs     = flag.String("faultcheck.logs", "", "directory that receives every node's log at the end of a run")
)

func TestFaultSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault schedule; not in -short")
	}
	spec := *fcFaults
	faults, err := faultcheck.ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	seed := *fcSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	for r := 0; r < *fcRuns; r++ {
		s := seed + int64(r)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			cfg := faultcheck.Config{
				Bin: heraldBin, Nodes: *fcNodes, Seed: s, Duration: *fcDuration, Faults: faults,
				Writers: *fcWriters, Roam: *fcRoam, Settle: *fcSettle, MaxRSS: *fcMaxRSS << 20,
				LogDir: *fcLogs, Logf: t.Logf,
			}
			if *fcEnv != "" {
				cfg.Env = strings.Split(*fcEnv, ",")
			}
			repro := fmt.Sprintf("go test ./cmd/herald -run TestFaultSchedule -v -timeout 30m -faultcheck.seed=%d -faultcheck.duration=%v "+
				"-faultcheck.nodes=%d -faultcheck.writers=%d -faultcheck.faults=%s -faultcheck.roam=%v -faultcheck.settle=%v",
				s, *fcDuration, *fcNodes, *fcWriters, spec, *fcRoam, *fcSettle)
			if *fcEnv != "" {
				repro += " -faultcheck.env=" + *fcEnv
			}
			res := faultcheck.Run(t, cfg)
			t.Log(res.Summary())
			if !res.Passed() {
				t.Errorf("fault schedule failed; reproduce with:\n\t%s\n%s", repro, strings.Join(res.Errors, "\n"))
			}
		})
	}
}
