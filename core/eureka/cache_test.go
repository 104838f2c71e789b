package eureka

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

// cacheNode is a Handler over a registry with apps APP0..APPn-1 of one instance each, whose
// metadata makes each app document a few KiB, served over real HTTP.
func cacheNode(t *testing.T, apps int, cfg CacheConfig) (*Handler, string) {
	t.Helper()
	reg := registry.New(registry.DefaultConfig())
	reg.OpenForTraffic(0)
	for i := 0; i < apps; i++ {
		inst := &registry.Instance{InstanceID: fmt.Sprintf("i%d", i), HostName: "h", App: fmt.Sprintf("APP%d", i),
			IPAddr: "10.0.0.1", Status: registry.StatusUp, DataCenterInfo: registry.DataCenterInfo{Name: "MyOwn"},
			HasDataCenterInfo: true, LastDirtyTimestamp: 1,
			Metadata: map[string]string{"blob": strings.Repeat(fmt.Sprintf("%x", i), 1500)}}
		if err := reg.Register(context.Background(), inst, registry.FromClient); err != nil {
			t.Fatal(err)
		}
	}
	h := NewHandler(Options{Registry: reg, Cache: cfg})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.Start(ctx)
	t.Cleanup(h.Stop)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL + "/eureka/v2/"
}

func getApp(t *testing.T, base string, i int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%sapps/APP%d", base, i), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"i%d"`, i)) {
		t.Fatalf("GET APP%d: %d %.80s", i, resp.StatusCode, body)
	}
}

// TestResponseCacheBoundedInBytes checks that documents past MaxBytes are not kept (older ones
// make room) while every read is still answered, in both modes.
func TestResponseCacheBoundedInBytes(t *testing.T) {
	const budget = 64 << 10
	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprintf("read-only %v", ro), func(t *testing.T) {
			h, base := cacheNode(t, 200, CacheConfig{UseReadOnly: ro, MaxBytes: budget})
			for i := 0; i < 200; i++ {
				getApp(t, base, i)
				_, rwb, _, rob := h.cache.size()
				if rwb > budget || rob > budget {
					t.Fatalf("after %d documents the cache holds %d (rw) and %d (ro) bytes, budget %d", i+1, rwb, rob, budget)
				}
			}
			rwDocs, rwb, roDocs, rob := h.cache.size()
			t.Logf("rw %d docs %d bytes, ro %d docs %d bytes", rwDocs, rwb, roDocs, rob)
			if rwDocs == 0 || rwDocs >= 200 {
				t.Errorf("%d documents kept, want some but not all 200 (each is a few KiB)", rwDocs)
			}
			// A document larger than the whole budget is served and not kept.
			h2, base2 := cacheNode(t, 1, CacheConfig{UseReadOnly: ro, MaxBytes: 1024})
			getApp(t, base2, 0)
			if d, b, _, _ := h2.cache.size(); d != 0 || b != 0 {
				t.Errorf("oversized document kept: %d docs, %d bytes", d, b)
			}
		})
	}
}

// TestResponseCacheSweptWithoutReadOnly checks that expired documents are dropped by the timer when
// the read-only level is off (herald dev), not only when the same key is read again.
func TestResponseCacheSweptWithoutReadOnly(t *testing.T) {
	h, base := cacheNode(t, 20, CacheConfig{UseReadOnly: false, UpdateInterval: 20 * time.Millisecond,
		AutoExpiration: 100 * time.Millisecond})
	for i := 0; i < 20; i++ {
		getApp(t, base, i)
	}
	if d, _, _, _ := h.cache.size(); d == 0 {
		t.Fatal("nothing cached")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, b, _, _ := h.cache.size()
		if d == 0 && b == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired documents (%d bytes) still cached", d, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
