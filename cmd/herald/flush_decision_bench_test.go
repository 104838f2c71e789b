package main

// The cost of one flush decision, in-process and through a plugin process:
//
//	go test ./cmd/herald -run '^$' -bench FlushDecision

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/pluginhost"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/sdk"
)

// benchStates are what the host reports at light load, under load, after failures and with
// every worker busy; the benchmarks cycle through them.
var benchStates = []sdk.PendingState{
	{Count: 1, IdleWorkers: 20, RecentLatency: 300 * time.Microsecond, MaxBatchSize: 250, MaxBufferSize: 10000},
	{Count: 9, OldestAge: 3 * time.Millisecond, IdleWorkers: 19, InFlight: 1, RecentLatency: 8 * time.Millisecond,
		MaxBatchSize: 250, MaxBufferSize: 10000},
	{Count: 40, OldestAge: 20 * time.Millisecond, IdleWorkers: 20, RecentLatency: time.Second, RecentErrors: 1,
		MaxBatchSize: 250, MaxBufferSize: 10000},
	{Count: 3, InFlight: 20, RecentLatency: 2500 * time.Microsecond, MaxBatchSize: 250, MaxBufferSize: 10000},
}

// BenchmarkFlushDecision reports ns/decision for the policy called in-process, and through a
// `herald plugin serve flush_policy adaptive` process started by the plugin host (go-plugin,
// gRPC, mutual TLS), as the host calls it with out_of_process = true.
func BenchmarkFlushDecision(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, pol sdk.FlushPolicy) {
		want := adaptive.DefaultConfig()
		for _, s := range benchStates { // the answers are the rule's, wherever it runs
			d, err := pol.Decide(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			if d != want.Decision(s) {
				b.Fatalf("state %+v: decision %+v, want %+v", s, d, want.Decision(s))
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := pol.Decide(ctx, benchStates[i%len(benchStates)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
	}
	b.Run("in-process", func(b *testing.B) { run(b, adaptive.New(adaptive.DefaultConfig())) })

	var proc *pluginhost.Process
	b.Cleanup(func() {
		if proc != nil {
			proc.Stop()
		}
	})
	b.Run("out-of-process", func(b *testing.B) {
		if proc == nil {
			var err error
			proc, err = pluginhost.Start(ctx, pluginhost.Spec{Kind: sdk.KindFlushPolicy, Name: "adaptive", Command: heraldBin,
				Args: []string{"plugin", "serve", sdk.KindFlushPolicy, "adaptive"}, Source: "BenchmarkFlushDecision"}, nil)
			if err != nil {
				b.Fatal(err)
			}
		}
		run(b, proc.FlushPolicy())
	})
}
