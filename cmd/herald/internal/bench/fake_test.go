package bench

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEureka is a minimal Eureka server: enough of the API for every scenario, strict about the
// things the load generator must get right (bodies, content types, heartbeats of known instances
// only). Several fakes may share one store, with a replication delay, to act as a cluster.
type fakeEureka struct {
	t       *testing.T
	store   *fakeStore
	delay   time.Duration // how long a write at another node takes to show up here
	metrics bool
	allocs  *atomic.Int64 // the process's cumulative allocations: share it to act as one process
	srv     *httptest.Server
}

type fakeStore struct {
	mu        sync.Mutex
	instances map[string]fakeInstance // app/id
}

type fakeInstance struct {
	at     time.Time // when it was written
	origin *fakeEureka
	status string
}

func newFakeStore() *fakeStore { return &fakeStore{instances: map[string]fakeInstance{}} }

func newFake(t *testing.T, store *fakeStore, delay time.Duration, metrics bool) *fakeEureka {
	f := &fakeEureka{t: t, store: store, delay: delay, metrics: metrics, allocs: &atomic.Int64{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEureka) URL() string { return f.srv.URL + "/eureka/v2/" }

func (f *fakeEureka) count() int {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	return len(f.store.instances)
}

func (f *fakeEureka) visible(key string) (fakeInstance, bool) {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	in, ok := f.store.instances[key]
	if ok && in.origin != f && time.Since(in.at) < f.delay {
		return in, false
	}
	return in, ok
}

func (f *fakeEureka) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		if !f.metrics {
			http.NotFound(w, r)
			return
		}
		n := f.count()
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %g\n", float64(10<<20+1000*n))
		fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\nherald_registry_instances %d\nprocess_start_time_seconds 1.7e+09\n", 5<<20+600*n, n)
		fmt.Fprintf(w, "herald_registry_writes_total{origin=\"client\"} %d\n", n)
		fmt.Fprintf(w, "go_memstats_alloc_bytes_total %d\n", f.allocs.Add(4096))
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/eureka/v2/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(p, "/")
	switch {
	case r.Method == http.MethodGet && (p == "apps" || p == "apps/delta"):
		fmt.Fprintf(w, `{"applications":{"versions__delta":"1","apps__hashcode":"UP_%d_","application":[]}}`, f.count())
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "apps":
		f.register(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "apps":
		f.instance(w, r, parts[1]+"/"+parts[2])
	case len(parts) == 4 && parts[0] == "apps" && parts[3] == "status" && r.Method == http.MethodPut:
		f.status(w, r, parts[1]+"/"+parts[2])
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeEureka) register(w http.ResponseWriter, r *http.Request, app string) {
	body, _ := io.ReadAll(r.Body)
	var id, bodyApp string
	switch r.Header.Get("Content-Type") {
	case "application/json":
		var doc struct {
			Instance struct {
				InstanceID string `json:"instanceId"`
				App        string `json:"app"`
				IPAddr     string `json:"ipAddr"`
			} `json:"instance"`
		}
		if err := json.Unmarshal(body, &doc); err != nil || doc.Instance.IPAddr == "" {
			http.Error(w, "cannot parse request body", http.StatusBadRequest)
			return
		}
		id, bodyApp = doc.Instance.InstanceID, doc.Instance.App
	case "application/xml":
		var doc struct {
			XMLName    xml.Name `xml:"instance"`
			InstanceID string   `xml:"instanceId"`
			App        string   `xml:"app"`
			IPAddr     string   `xml:"ipAddr"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil || doc.IPAddr == "" {
			http.Error(w, "cannot parse request body", http.StatusBadRequest)
			return
		}
		id, bodyApp = doc.InstanceID, doc.App
	default:
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if bodyApp != app || id == "" {
		http.Error(w, "Mismatched appName", http.StatusBadRequest)
		return
	}
	f.store.mu.Lock()
	f.store.instances[app+"/"+id] = fakeInstance{at: time.Now(), origin: f, status: "UP"}
	f.store.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeEureka) instance(w http.ResponseWriter, r *http.Request, key string) {
	in, ok := f.visible(key)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"instance":{"status":%q}}`, in.status)
	case http.MethodPut:
		if r.URL.Query().Get("lastDirtyTimestamp") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		f.store.mu.Lock()
		delete(f.store.instances, key)
		f.store.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakeEureka) status(w http.ResponseWriter, r *http.Request, key string) {
	value := r.URL.Query().Get("value")
	if value != "UP" && value != "OUT_OF_SERVICE" {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	in, ok := f.store.instances[key]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	in.status = value
	f.store.instances[key] = in
	w.WriteHeader(http.StatusOK)
}
