package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are served with Prometheus' client_golang rather than through the OpenTelemetry
// Prometheus exporter: every herald figure already exists as a counter or gauge inside its
// component, so a collector that reads those snapshots at scrape time costs nothing on the write
// path, and client_golang's exposition is the reference one that every scraper parses. The
// OpenTelemetry SDK is used for what it is best at here: traces.

// MetricsCollector is implemented by components that expose metrics (the replication pipeline,
// the plugin host). The node registers each one it is given.
type MetricsCollector = prometheus.Collector

func (n *Node) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&registryCollector{n: n})
	for _, c := range n.deps.Collectors {
		reg.MustRegister(c)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: n.log.Named("metrics").StandardLogger(nil)})
}

var (
	descApps      = prometheus.NewDesc("herald_registry_apps", "Applications with at least one instance.", nil, nil)
	descInstances = prometheus.NewDesc("herald_registry_instances", "Registered instances.", nil, nil)
	descRenews    = prometheus.NewDesc("herald_registry_renews_last_minute", "Renewals (client and replicated) in the last complete minute.", nil, nil)
	descThreshold = prometheus.NewDesc("herald_registry_renews_threshold_per_minute", "Self-preservation threshold: renewals per minute below which leases stop expiring.", nil, nil)
	descExpected  = prometheus.NewDesc("herald_registry_expected_clients_renewing", "Clients expected to renew, as self-preservation counts them.", nil, nil)
	descSPEnabled = prometheus.NewDesc("herald_registry_self_preservation_enabled", "1 when self-preservation is configured on.", nil, nil)
	descSPActive  = prometheus.NewDesc("herald_registry_self_preservation_active", "1 while self-preservation keeps leases from expiring.", nil, nil)
	descEvicted   = prometheus.NewDesc("herald_registry_evicted_total", "Leases evicted.", nil, nil)
	descReplRecv  = prometheus.NewDesc("herald_registry_replications_last_minute", "Replicated writes received in the last minute.", nil, nil)

	descPeers      = prometheus.NewDesc("herald_cluster_peers", "Peers this node replicates to.", nil, nil)
	descAEExchange = prometheus.NewDesc("herald_antientropy_exchanges_total", "Digest comparisons with peers.", nil, nil)
	descAEMismatch = prometheus.NewDesc("herald_antientropy_mismatches_total", "Digest comparisons that found a difference.", nil, nil)
	descAERepairs  = prometheus.NewDesc("herald_antientropy_repairs_total", "Instances repaired by anti-entropy, by kind (pulled, deleted).", []string{"kind"}, nil)
	descAEFailures = prometheus.NewDesc("herald_antientropy_failures_total", "Anti-entropy exchanges that failed.", nil, nil)
	descSyncDone   = prometheus.NewDesc("herald_cluster_startup_sync_done", "1 once the startup sync finished.", nil, nil)
	descSynced     = prometheus.NewDesc("herald_cluster_startup_synced_instances", "Instances copied by the startup sync.", nil, nil)
)

type registryCollector struct{ n *Node }

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApps, descInstances, descRenews, descThreshold, descExpected,
		descSPEnabled, descSPActive, descEvicted, descReplRecv, descPeers, descAEExchange, descAEMismatch,
		descAERepairs, descAEFailures, descSyncDone, descSynced} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.reg.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(descApps, float64(s.Apps))
	gauge(descInstances, float64(s.Instances))
	gauge(descRenews, float64(s.RenewsLastMin))
	gauge(descThreshold, float64(s.RenewsThresholdPerMin))
	gauge(descExpected, float64(s.ExpectedClientsRenewing))
	gauge(descSPEnabled, b2f(s.SelfPreservationEnabled))
	gauge(descSPActive, b2f(s.SelfPreservationActive))
	counter(descEvicted, float64(s.Evicted))
	gauge(descReplRecv, float64(s.ReplicationsLastMin))

	cs := c.n.cluster.Stats()
	gauge(descPeers, float64(cs.Peers))
	counter(descAEExchange, float64(cs.Exchanges))
	counter(descAEMismatch, float64(cs.Mismatches))
	counter(descAERepairs, float64(cs.Pulled), "pulled")
	counter(descAERepairs, float64(cs.Deleted), "deleted")
	counter(descAEFailures, float64(cs.Failures))
	gauge(descSyncDone, b2f(cs.SyncDone))
	gauge(descSynced, float64(cs.SyncedInstances))
}
