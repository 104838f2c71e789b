package registry

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryReturnsAfterAppsGo checks that a registry that saw 3,000 long app names come and go
// gives the memory back: empty apps are dropped, the recently-changed queue and the tombstones
// are released once past their retention, and the maps are rebuilt. The heap is measured after GC
// against a registry holding a steady set of instances, and must come back within 10%.
func TestMemoryReturnsAfterAppsGo(t *testing.T) {
	r, clock := newReg(t, nil)
	for i := 0; i < 500; i++ {
		in := inst("STEADY", fmt.Sprintf("s%d", i), StatusUp, 1)
		in.Metadata = map[string]string{"k": strings.Repeat("v", 200)}
		mustRegister(t, r, in, FromClient)
	}
	r.Prune()
	before := heapAfterGC()

	const apps = 3000
	long := strings.Repeat("A", 1000)
	names := make([]string, apps)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", long, i)
		mustRegister(t, r, inst(names[i], "i1", StatusUp, 1), FromClient)
	}
	during := heapAfterGC()
	for _, n := range names {
		if !r.Cancel(ctx, n, "i1", FromClient) {
			t.Fatalf("cancel %s refused", n[len(long):])
		}
	}
	names = nil
	if got := r.Stats().Apps; got != 1 {
		t.Errorf("%d apps after the cancels, want 1", got)
	}
	// Past the delta retention and the tombstone TTL, Prune lets everything go.
	clock.Advance(r.cfg.DeltaRetention + r.cfg.TombstoneTTL + time.Minute)
	r.Prune()
	after := heapAfterGC()
	t.Logf("heap: %d KiB with 500 instances, %d KiB with 3,000 more apps, %d KiB after they left",
		before>>10, during>>10, after>>10)
	if float64(after) > 1.1*float64(before) {
		t.Errorf("heap %d KiB after the apps left, want within 10%% of %d KiB", after>>10, before>>10)
	}
	if got := r.Stats().Instances; got != 500 {
		t.Errorf("%d instances, want the 500 steady ones", got)
	}
	runtime.KeepAlive(r)
}
