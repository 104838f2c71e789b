package main

// TLS benchmarks: what mutual TLS between peers and TLS towards clients cost, each against
// plaintext in the same run.
//
//	go test ./cmd/herald -run '^$' -bench 'PeerTLS|ClientTLS' -benchtime 1x

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// benchTLS, when set, makes benchCluster's nodes serve TLS with certificates from it and
// authenticate each other by mutual TLS.
var benchTLS *pki

// benchTLSSets are the settings of node i under benchTLS.
func benchTLSSets(i int) []string {
	if benchTLS == nil {
		return nil
	}
	cert, key := benchTLS.node("bench-" + strconv.Itoa(i))
	return []string{"tls.cert_file=" + cert, "tls.key_file=" + key, "tls.ca_file=" + benchTLS.caFile(),
		"cluster.peer_auth.mtls=true"}
}

// trustBenchCA makes benchClient trust p's CA for the duration of b.
func trustBenchCA(b *testing.B, p *pki) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.Cert)
	tr := benchClient.Transport.(*http.Transport)
	saved := tr.TLSClientConfig
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	b.Cleanup(func() { tr.TLSClientConfig = saved; tr.CloseIdleConnections() })
}

// BenchmarkPeerTLS is the saturation workload of BenchmarkReplicatedWrites with the cluster
// secret over plain HTTP and with mutual TLS on every hop (clients to nodes and node to node).
func BenchmarkPeerTLS(b *testing.B) {
	b.Run("plaintext", func(b *testing.B) { replicatedWrites(b) })
	b.Run("mtls", func(b *testing.B) {
		benchTLS = newPKI(b, "bench CA")
		defer func() { benchTLS = nil }()
		trustBenchCA(b, benchTLS)
		replicatedWrites(b)
	})
}

// BenchmarkClientTLS measures registrations per second at one node from 16 keep-alive
// connections, over plain HTTP and over TLS.
func BenchmarkClientTLS(b *testing.B) {
	for _, useTLS := range []bool{false, true} {
		name := "plaintext"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			port := e2e.FreePorts(b, 1)[0]
			sets := []string{"node.port=" + strconv.Itoa(port), "node.name=solo", "log.level=error"}
			if useTLS {
				p := newPKI(b, "bench CA")
				cert, key := p.node("solo")
				sets = append(sets, "tls.cert_file="+cert, "tls.key_file="+key, "tls.ca_file="+p.caFile())
				trustBenchCA(b, p)
			}
			cfg, err := loadConfig("", nil, sets)
			if err != nil {
				b.Fatal(err)
			}
			rn, err := startNode(context.Background(), cfg, hclog.NewNullLogger(), true)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = rn.Stop(context.Background()) })
			const total = 20000
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := 0; c < 16; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= total {
							return
						}
						code, err := post(rn.URL()+"apps/LOAD", e2e.InstanceJSON("LOAD", "r-"+strconv.FormatInt(i%2000, 10), 1000, "UP", nil))
						if err != nil || code != 204 {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d registrations failed", failed.Load())
			}
			b.ReportMetric(float64(total)/el.Seconds(), "registers/s")
		})
	}
}
