package eureka_test

// Run with:
//
//	go test ./core/eureka -run '^$' -bench 'HTTP|BareHandler|GetApps10k' -benchtime 3s
//
// BenchmarkRegisterHTTP and BenchmarkHeartbeatHTTP should stay within 0.75x of the throughput of
// BenchmarkBareHandler (ns/op at most 1/0.75 of it): the same client, connections and body, with
// a handler that only decodes the JSON.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
)

const benchInstances = 1024

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func benchBodies() [][]byte {
	bodies := make([][]byte, benchInstances)
	for i := range bodies {
		bodies[i] = []byte(inst("BENCH", "bench-"+strconv.Itoa(i), "10.0.0.1", "UP", 1000).json())
	}
	return bodies
}

// hammer sends requests from parallel keep-alive clients; next returns the i-th request's method,
// URL and body.
func hammer(b *testing.B, client *http.Client, want int, next func(i int64) (string, string, []byte)) {
	var ctr atomic.Int64
	b.SetParallelism(32) // 64 keep-alive connections on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			method, url, body := next(ctr.Add(1))
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, err := http.NewRequest(method, url, rd)
			if err != nil {
				b.Error(err)
				return
			}
			if body != nil {
				req.Header.Set("Content-Type", jsonCT)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func BenchmarkBareHandler(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	bodies := benchBodies()
	url := srv.URL + "/eureka/v2/apps/BENCH"
	hammer(b, benchClient(b), http.StatusNoContent, func(i int64) (string, string, []byte) {
		return "POST", url, bodies[i%benchInstances]
	})
}

func BenchmarkRegisterHTTP(b *testing.B) {
	n := newNode(b, nodeConfig{opts: func(o *eureka.Options) { o.Cache = eureka.DefaultCacheConfig() }})
	bodies := benchBodies()
	url := n.srv.URL + "/eureka/v2/apps/BENCH"
	hammer(b, benchClient(b), http.StatusNoContent, func(i int64) (string, string, []byte) {
		return "POST", url, bodies[i%benchInstances]
	})
}

func BenchmarkHeartbeatHTTP(b *testing.B) {
	n := newNode(b, nodeConfig{opts: func(o *eureka.Options) { o.Cache = eureka.DefaultCacheConfig() }})
	client := benchClient(b)
	urls := make([]string, benchInstances)
	for i := range urls {
		id := "bench-" + strconv.Itoa(i)
		n.register(b, "BENCH", inst("BENCH", id, "10.0.0.1", "UP", 1000))
		urls[i] = n.srv.URL + "/eureka/v2/apps/BENCH/" + id + "?status=UP&lastDirtyTimestamp=1000"
	}
	hammer(b, client, http.StatusOK, func(i int64) (string, string, []byte) {
		return "PUT", urls[i%benchInstances], nil
	})
}

// BenchmarkGetApps10k serves the full registry of 10,000 instances from the response cache, as
// Eureka clients fetch it: gzip accepted.
func BenchmarkGetApps10k(b *testing.B) {
	n := newNode(b, nodeConfig{opts: func(o *eureka.Options) { o.Cache = eureka.DefaultCacheConfig() }})
	fill(b, n.reg, 10000)
	client := benchClient(b)
	for _, format := range []string{"application/json", "application/xml"} {
		b.Run(format, func(b *testing.B) {
			url := n.srv.URL + "/eureka/v2/apps"
			var ctr atomic.Int64
			b.SetParallelism(32) // 64 keep-alive connections on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctr.Add(1)
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Accept", format)
					req.Header.Set("Accept-Encoding", "gzip")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					nb, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || nb == 0 {
						b.Errorf("GET /apps: %d, %d bytes", resp.StatusCode, nb)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// fill registers count instances over 100 applications straight into the registry.
func fill(b *testing.B, reg *registry.Registry, count int) {
	b.Helper()
	for i := 0; i < count; i++ {
		app := fmt.Sprintf("APP-%03d", i%100)
		id := fmt.Sprintf("host-%05d:%s:8080", i, app)
		err := reg.Register(context.Background(), &registry.Instance{
			InstanceID:         id,
			HostName:           fmt.Sprintf("host-%05d", i),
			App:                app,
			IPAddr:             fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			Status:             registry.StatusUp,
			OverriddenStatus:   registry.StatusUnknown,
			Port:               registry.Port{Number: 8080, Enabled: true},
			SecurePort:         registry.Port{Number: 8443},
			CountryID:          1,
			DataCenterInfo:     registry.DataCenterInfo{Class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", Name: "MyOwn"},
			HasDataCenterInfo:  true,
			LeaseInfo:          registry.LeaseInfo{RenewalIntervalSecs: 30, DurationSecs: 90},
			HasLeaseInfo:       true,
			Metadata:           map[string]string{"zone": "z1", "version": "1.2.3"},
			HomePageURL:        "http://" + id + "/",
			StatusPageURL:      "http://" + id + "/info",
			HealthCheckURL:     "http://" + id + "/health",
			VIPAddress:         app,
			SecureVIPAddress:   app,
			LastDirtyTimestamp: 1700000000000 + int64(i),
		}, registry.FromPeer)
		if err != nil {
			b.Fatal(err)
		}
	}
}
