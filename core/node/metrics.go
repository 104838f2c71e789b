package node

import (
	"net/http"

	"github.com/heraldhq/herald/core/replication"

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
	if n.repl != nil {
		reg.MustRegister(&replicationCollector{stats: n.repl.Stats, peerName: n.names.Name})
	}
	for _, c := range n.deps.Collectors {
		reg.MustRegister(c)
	}
	// OpenMetrics (on request, by Accept) carries the latency histograms' exemplars.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: n.log.Named("metrics").StandardLogger(nil), EnableOpenMetrics: true})
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
	descWrites    = prometheus.NewDesc("herald_registry_writes_total", "Writes applied, by origin (client, peer).", []string{"origin"}, nil)
	descReplRecv  = prometheus.NewDesc("herald_registry_replications_last_minute", "Replicated writes received in the last minute.", nil, nil)

	descPeers      = prometheus.NewDesc("herald_cluster_peers", "Peers this node replicates to.", nil, nil)
	descAEExchange = prometheus.NewDesc("herald_antientropy_exchanges_total", "Digest comparisons with peers.", nil, nil)
	descAEMismatch = prometheus.NewDesc("herald_antientropy_mismatches_total", "Digest comparisons that found a difference.", nil, nil)
	descAERepairs  = prometheus.NewDesc("herald_antientropy_repairs_total", "Instances repaired by anti-entropy, by kind (pulled, deleted).", []string{"kind"}, nil)
	descAEFailures = prometheus.NewDesc("herald_antientropy_failures_total", "Anti-entropy exchanges that failed.", nil, nil)
	descSyncDone   = prometheus.NewDesc("herald_cluster_startup_sync_done", "1 once the startup sync finished.", nil, nil)
	descSynced     = prometheus.NewDesc("herald_cluster_startup_synced_instances", "Instances copied by the startup sync.", nil, nil)
	descReadsOpen  = prometheus.NewDesc("herald_cluster_reads_open", "1 while full reads are served (startup sync done, or cold start, or the empty-sync window over).", nil, nil)
	descColdStart  = prometheus.NewDesc("herald_cluster_cold_start", "1 when the startup sync ended as a cold start (every peer that answered was starting too).", nil, nil)
	descAETies     = prometheus.NewDesc("herald_antientropy_ties_total", "Instances whose copies had equal lastDirtyTimestamps and different content.", nil, nil)
	descCacheDocs  = prometheus.NewDesc("herald_response_cache_documents", "Documents held by the response cache, by level (rw, ro).", []string{"level"}, nil)
	descCacheBytes = prometheus.NewDesc("herald_response_cache_bytes", "Bytes held by the response cache, by level (rw, ro); bounded by response_cache.max_bytes per level.", []string{"level"}, nil)
)

type registryCollector struct{ n *Node }

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApps, descInstances, descRenews, descThreshold, descExpected,
		descSPEnabled, descSPActive, descEvicted, descWrites, descReplRecv, descPeers, descAEExchange, descAEMismatch,
		descAERepairs, descAEFailures, descSyncDone, descSynced, descReadsOpen, descColdStart, descAETies,
		descCacheDocs, descCacheBytes} {
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
	counter(descWrites, float64(s.ClientWrites), "client")
	counter(descWrites, float64(s.ReplicatedWrites), "peer")

	cs := c.n.cluster.Stats()
	gauge(descPeers, float64(cs.Peers))
	counter(descAEExchange, float64(cs.Exchanges))
	counter(descAEMismatch, float64(cs.Mismatches))
	counter(descAERepairs, float64(cs.Pulled), "pulled")
	counter(descAERepairs, float64(cs.Deleted), "deleted")
	counter(descAEFailures, float64(cs.Failures))
	gauge(descSyncDone, b2f(cs.SyncDone))
	gauge(descSynced, float64(cs.SyncedInstances))
	gauge(descReadsOpen, b2f(c.n.cluster.AllowReads()))
	gauge(descColdStart, b2f(cs.ColdStart))
	counter(descAETies, float64(cs.Ties))
	rc := c.n.api.CacheStats()
	gauge(descCacheDocs, float64(rc.ReadWriteDocs), "rw")
	gauge(descCacheDocs, float64(rc.ReadOnlyDocs), "ro")
	gauge(descCacheBytes, float64(rc.ReadWriteBytes), "rw")
	gauge(descCacheBytes, float64(rc.ReadOnlyBytes), "ro")
}

var (
	descDepth     = prometheus.NewDesc("herald_replication_queue_depth", "Tasks or batches waiting in each stage of a peer's pipeline (acceptor, pending, batch), and batches in flight.", []string{"peer", "stage"}, nil)
	descQBytes    = prometheus.NewDesc("herald_replication_queue_bytes", "Encoded bytes of the tasks in the acceptor queue, in the pending stage (bounded by replication.max_buffer_bytes) and in batches in flight, per peer.", []string{"peer", "stage"}, nil)
	descAccepted  = prometheus.NewDesc("herald_replication_tasks_accepted_total", "Tasks accepted for a peer.", []string{"peer"}, nil)
	descResults   = prometheus.NewDesc("herald_replication_batches_total", "Batch sends by result class (success, congestion, transient, permanent).", []string{"peer", "result"}, nil)
	descDropped   = prometheus.NewDesc("herald_replication_tasks_dropped_total", "Tasks dropped without an acknowledgement, by reason (superseded, expired, overflow, permanent).", []string{"peer", "reason"}, nil)
	descItemsSent = prometheus.NewDesc("herald_replication_items_sent_total", "Items sent to a peer (each attempt counts).", []string{"peer"}, nil)
	descRetries   = prometheus.NewDesc("herald_replication_tasks_retried_total", "Tasks put back after a congestion or transient failure.", []string{"peer"}, nil)
	descItemFail  = prometheus.NewDesc("herald_replication_item_failures_total", "Items a peer answered with a non-2xx status.", []string{"peer"}, nil)
	descBatchSize = prometheus.NewDesc("herald_replication_batch_size", "Tasks per batch sent.", []string{"peer"}, nil)
	descLatency   = prometheus.NewDesc("herald_replication_send_seconds", "Batch send latency.", []string{"peer"}, nil)
	descPropag    = prometheus.NewDesc("herald_replication_propagation_seconds", "Time from a task's acceptance to the peer's answer for it (queueing, batching, retries and the send).", []string{"peer"}, nil)
	// The per-peer series are labelled with the peer's URL, its identity, and never with its
	// learned node name, so learning or changing a name does not start new series; this info
	// metric carries the name for a join: ... * on(peer) group_left(peer_name) herald_replication_peer_info.
	descPeerInfo = prometheus.NewDesc("herald_replication_peer_info", "1 for each peer whose node name is known (from its answers): peer is its URL, as on the other per-peer metrics, peer_name its node name.", []string{"peer", "peer_name"}, nil)
)

type replicationCollector struct {
	stats func() []replication.PeerStats
	// peerName returns a peer's learned node name, "" when none.
	peerName func(peerURL string) string
}

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descQBytes, descAccepted, descResults, descDropped, descItemsSent,
		descRetries, descItemFail, descBatchSize, descLatency, descPropag, descPeerInfo} {
		ch <- d
	}
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		p := s.Peer
		g := func(d *prometheus.Desc, v int64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{p}, l...)...)
		}
		cnt := func(d *prometheus.Desc, v int64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{p}, l...)...)
		}
		g(descDepth, s.AcceptorDepth, "acceptor")
		g(descDepth, s.PendingDepth, "pending")
		g(descDepth, s.BatchQueueDepth, "batch")
		g(descDepth, s.InFlight, "in_flight")
		g(descQBytes, s.AcceptorBytes, "acceptor")
		g(descQBytes, s.PendingBytes, "pending")
		g(descQBytes, s.InFlightBytes, "in_flight")
		cnt(descAccepted, s.Accepted)
		cnt(descResults, s.Success, "success")
		cnt(descResults, s.Congestion, "congestion")
		cnt(descResults, s.Transient, "transient")
		cnt(descResults, s.Permanent, "permanent")
		cnt(descDropped, s.Superseded, "superseded")
		cnt(descDropped, s.Expired, "expired")
		cnt(descDropped, s.Overflow, "overflow")
		cnt(descDropped, s.PermanentDropped, "permanent")
		cnt(descItemsSent, s.Items)
		cnt(descRetries, s.Retries)
		cnt(descItemFail, s.ItemFailures)
		ch <- histogram(descBatchSize, s.BatchSize, p)
		ch <- histogram(descLatency, s.Latency, p)
		ch <- histogram(descPropag, s.Propagation, p)
		if name := c.peerName(p); name != "" {
			ch <- prometheus.MustNewConstMetric(descPeerInfo, prometheus.GaugeValue, 1, p, name)
		}
	}
}

func histogram(d *prometheus.Desc, h replication.Histogram, peer string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	m := prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, peer)
	if len(h.Exemplars) == 0 {
		return m
	}
	// Exemplars carry the trace id of a traced observation in each bucket (OpenMetrics only):
	// a dashboard jumps from a slow bucket to the trace.
	ex := make([]prometheus.Exemplar, 0, len(h.Exemplars))
	for _, e := range h.Exemplars {
		ex = append(ex, prometheus.Exemplar{Value: e.Value, Labels: prometheus.Labels{"trace_id": e.TraceID}, Timestamp: e.At})
	}
	if mx, err := prometheus.NewMetricWithExemplars(m, ex...); err == nil {
		return mx
	}
	return m
}
