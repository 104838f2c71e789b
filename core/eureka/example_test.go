package eureka_test

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication/receive"
)

// ExampleNewHandler wires the Eureka API of one node: a registry, the batch receiver for peers,
// Eureka's response cache, and the read gate of the startup sync.
func ExampleNewHandler() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	logger := hclog.Default()
	reg := registry.New(registry.DefaultConfig(), registry.WithLogger(logger))
	go reg.Start(ctx)

	// Until the startup sync has copied something, or the wait has passed, Eureka answers the
	// registry-wide reads with 403.
	readsFrom := time.Now().Add(5 * time.Minute)
	h := eureka.NewHandler(eureka.Options{
		Registry:     reg,
		Logger:       logger.Named("eureka"),
		MaxBodyBytes: eureka.DefaultMaxBodyBytes,
		Cache:        eureka.DefaultCacheConfig(),
		ReadGate:     func() bool { return time.Now().After(readsFrom) },
		Batch:        receive.New(reg, receive.WithLogger(logger.Named("receive"))),
	})
	h.Start(ctx) // refreshes the read-only response cache every 30 s
	defer h.Stop()

	srv := &http.Server{Addr: "127.0.0.1:8761", Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Shutdown(context.Background())
}
