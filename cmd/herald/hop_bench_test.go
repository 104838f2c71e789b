package main

// The plugin hop alone: batches sent to a stub peer by the http transport in this process, and
// by the same transport in a plugin process (go-plugin, gRPC, mutual TLS) on the batch stream and
// as one unary call per batch.
//
//	go test ./cmd/herald -run '^$' -bench PluginHop -benchtime 20000x

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/pluginhost"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// BenchmarkPluginHop sends b.N batches of 5 tasks (the saturation workload's batch size) from 40
// goroutines (two peers' worth of herald's workers) to a stub peer that answers 200 per item
// without applying anything, so the figures are the transport and the hop only:
//
//   - in-process: the http transport called directly;
//   - out-of-process/stream: through the plugin host, batches on the plugin's SendStream;
//   - out-of-process/unary: the same, one unary gRPC call per batch (what every batch cost
//     before the stream; herald still sends a batch in a sampled trace this way).
//
// It reports batches/s and the CPU time per batch of this process and the plugin process
// (cpu-µs/batch); the stub peer's share is the same in every row.
func BenchmarkPluginHop(b *testing.B) {
	peer := stubPeer(b)
	items := make([]sdk.Item, 5)
	inst := []byte(`{"instanceId":"w-1","hostName":"h","app":"LOAD","ipAddr":"10.0.0.1","status":"UP","port":{"$":8080,"@enabled":"true"},"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":{"zone":"a"},"vipAddress":"load","secureVipAddress":"load"}`)
	for i := range items {
		items[i] = sdk.Item{Action: sdk.ActionRegister, App: "LOAD", ID: "w-" + strconv.Itoa(i), LastDirtyTimestamp: 1000, Status: "UP", Instance: inst}
	}
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true}))
	run := func(b *testing.B, tr sdk.Transport, ctx context.Context) {
		// Warm up: connections to the peer and to the plugin.
		if _, err := tr.Send(ctx, peer, sdk.Batch{ID: "warm", Items: items}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0 := treeCPU()
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		for g := 0; g < 40; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					if rs, err := tr.Send(ctx, peer, sdk.Batch{ID: "b" + strconv.Itoa(i), Items: items}); err != nil || len(rs) != len(items) {
						b.Errorf("batch %d: %d results, %v", i, len(rs), err)
						return
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		cpu := treeCPU() - cpu0
		b.StopTimer()
		b.ReportMetric(float64(b.N)/el.Seconds(), "batches/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/batch")
	}
	b.Run("in-process", func(b *testing.B) {
		t := httptransport.New(httptransport.Options{ConnectTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second})
		defer t.CloseIdleConnections()
		run(b, t, context.Background())
	})
	plugin := func(b *testing.B) sdk.Transport {
		p, err := pluginhost.Start(context.Background(), pluginhost.Spec{Kind: sdk.KindTransport, Name: "http",
			Command: heraldBin, Args: []string{"plugin", "serve", "transport", "http"}, Source: "bench"}, hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Stop)
		return p.Transport()
	}
	b.Run("out-of-process/stream", func(b *testing.B) { run(b, plugin(b), context.Background()) })
	b.Run("out-of-process/unary", func(b *testing.B) { run(b, plugin(b), sampled) })
}

// stubPeer serves Eureka's batch endpoint on 127.0.0.1 and answers 200 for every item.
func stubPeer(b *testing.B) sdk.Peer {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		items, err := eurekawire.DecodeReplicationList(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs := make([]sdk.ItemResult, len(items))
		for i := range rs {
			rs[i].StatusCode = 200
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(eurekawire.AppendReplicationListResponse(nil, rs))
	})}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { _ = srv.Close() })
	return sdk.Peer{Name: "stub", URL: "http://" + lis.Addr().String() + "/eureka/"}
}
