package eureka_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
)

// TestMemoryPerInstance registers instances the way clients do (a JSON body through the API: the
// codec decodes it, the registry stores it) and logs the live heap each registered instance holds,
// the figure behind BENCHMARKS.md's "Memory per registered instance" (target: at most 2 KiB of
// RSS per instance). It fails well above today's figures, so that a change that makes every
// instance much larger shows here rather than in a benchmark run. Two populations:
//
//   - same metadata: every instance carries the same metadata, as `herald bench -scenario memory`
//     registers them (and as many Spring Cloud clients of one app do);
//   - own metadata: every instance's metadata also holds values of its own, so that no two maps are
//     equal, and its URLs are built from its host name.
func TestMemoryPerInstance(t *testing.T) {
	if testing.Short() || raceDetector {
		// It measures memory, which the race detector does not check, at 20,000 registrations.
		t.Skip("registers 20,000 instances")
	}
	const n = 20000
	for _, tc := range []struct {
		name string
		own  bool
		max  float64 // bytes per instance
	}{
		{"same metadata", false, 1000},
		{"own metadata", true, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newNode(t, nodeConfig{})
			before := liveHeap()
			for i := range n {
				id := "i-" + strconv.Itoa(1000000+i)
				in := inst("APP-"+strconv.Itoa(i%10), id, ipOf(i), "UP", 1700000000000)
				in.Metadata = map[string]string{"zone": "zone-1", "management.port": "8080", "version": "1.0.0"}
				home := "http://" + in.IP + ":8080/"
				if tc.own {
					in.Metadata["instanceId"] = "host-" + id + ":" + in.App + ":8080"
					in.Metadata["startedAt"] = strconv.Itoa(1700000000 + i)
					home = "http://host-" + id + ":8080/"
				}
				in.Set = map[string]string{"homePageUrl": q(home), "statusPageUrl": q(home + "actuator/info"),
					"healthCheckUrl": q(home + "actuator/health")}
				req := httptest.NewRequest("POST", node.base+"/apps/"+in.App, bytes.NewReader([]byte(in.json())))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				node.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					t.Fatalf("register %s: %d %s", id, rec.Code, rec.Body)
				}
			}
			after := liveHeap()
			if got := node.reg.Stats().Instances; got != n {
				t.Fatalf("%d instances registered, want %d", got, n)
			}
			per := float64(int64(after)-int64(before)) / n
			t.Logf("live heap per registered instance: %.0f bytes (%d instances)", per, n)
			if per > tc.max {
				t.Errorf("live heap per instance %.0f bytes, want at most %.0f", per, tc.max)
			}
			runtime.KeepAlive(node)
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func ipOf(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
}
