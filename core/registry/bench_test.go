package registry

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

func BenchmarkRegister(b *testing.B) {
	r := New(DefaultConfig())
	r.Subscribe(func(context.Context, Write) {})
	insts := make([]*Instance, 1000)
	for i := range insts {
		insts[i] = inst("APP", fmt.Sprint(i), StatusUp, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = r.Register(ctx, insts[i%len(insts)], FromClient)
	}
}

func BenchmarkHeartbeatParallel(b *testing.B) {
	r := New(DefaultConfig())
	r.Subscribe(func(context.Context, Write) {})
	for i := 0; i < 1000; i++ {
		_ = r.Register(ctx, inst("APP", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r.Heartbeat(ctx, "APP", ids[i%1000], HeartbeatRequest{LastDirtyTimestamp: 1, HasLastDirty: true})
		}
	})
}

func BenchmarkApplications10k(b *testing.B) {
	r := New(DefaultConfig())
	for i := 0; i < 10000; i++ {
		_ = r.Register(ctx, realistic(fmt.Sprint("APP", i%100), fmt.Sprint(i)), FromClient)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Applications()
	}
}

func realistic(app, id string) *Instance {
	i := inst(app, "host-"+id+":"+app+":8080", StatusUp, 1700000000000)
	i.HostName = "host-" + id + ".prod.example.com"
	i.HomePageURL = "http://" + i.HostName + ":8080/"
	i.StatusPageURL = "http://" + i.HostName + ":8080/actuator/info"
	i.HealthCheckURL = "http://" + i.HostName + ":8080/actuator/health"
	i.SecureVIPAddress = i.VIPAddress
	i.Metadata = map[string]string{"zone": "z1", "version": "1.4.2", "management.port": "8081", "team": "payments"}
	return i
}

// TestMemoryPerInstance logs the heap held per registered realistic instance (issue target: ≤ 2 KiB
// of RSS per instance); it fails only far above the target, since heap figures are noisy.
func TestMemoryPerInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10k instances")
	}
	const n = 10000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(DefaultConfig())
	for i := 0; i < n; i++ {
		// The decoded instance's strings are retained by the registry, so they count.
		_ = r.Register(ctx, realistic(fmt.Sprint("APP", i%100), fmt.Sprint(i)), FromClient)
	}
	r.Prune()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per instance: %.0f bytes (%d instances)", per, n)
	if per > 4096 {
		t.Fatalf("heap per instance %.0f bytes, far above the 2 KiB target", per)
	}
	runtime.KeepAlive(r)
}
