package pluginhost

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descUp       = prometheus.NewDesc("herald_plugin_up", "1 while the plugin process is running, 0 while it restarts.", []string{"kind", "name"}, nil)
	descRestarts = prometheus.NewDesc("herald_plugin_restarts_total", "Times the plugin process was restarted after it exited.", []string{"kind", "name"}, nil)
)

// callSeconds are the latency buckets of a plugin call: a call over gRPC on loopback costs about
// 0.1-0.3 ms, a transport's Send as long as the peer takes.
var callSeconds = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics is a Prometheus collector for plugin processes: up, restarts, and the latency of every
// call through the supervisor, by method.
type Metrics struct {
	procs []*Process
	calls *prometheus.HistogramVec
}

// NewMetrics returns an empty collector; Track adds processes to it.
func NewMetrics() *Metrics {
	return &Metrics{calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_plugin_call_duration_seconds",
		Help:    "Latency of calls into plugin processes, by method; failed calls included.",
		Buckets: callSeconds,
	}, []string{"kind", "name", "method"})}
}

// Track reports p's health and times its calls.
func (m *Metrics) Track(p *Process) {
	m.procs = append(m.procs, p)
	p.observe = func(method string, d time.Duration) {
		m.calls.WithLabelValues(p.spec.Kind, p.spec.Name, method).Observe(d.Seconds())
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	ch <- descRestarts
	m.calls.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, p := range m.procs {
		h := p.Health()
		up := 0.0
		if h.State == StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, h.Kind, h.Name)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(h.Restarts), h.Kind, h.Name)
	}
	m.calls.Collect(ch)
}
