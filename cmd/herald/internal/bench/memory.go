package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric names read from a node's Prometheus /metrics (all optional).
const (
	metricRSS       = "process_resident_memory_bytes"
	metricHeap      = "go_memstats_heap_inuse_bytes"
	metricInstances = "herald_registry_instances"
	metricStart     = "process_start_time_seconds"
	metricAllocated = "go_memstats_alloc_bytes_total"
)

// afterScrapeGap spaces the five scrapes that follow the settling time.
var afterScrapeGap = 500 * time.Millisecond

// NodeMemory is one node's memory before and after the memory scenario's registrations.
type NodeMemory struct {
	Target           string  `json:"target"`
	MetricsURL       string  `json:"metrics_url"`
	MetricsAvailable bool    `json:"metrics_available"`
	RSSBefore        int64   `json:"rss_before_bytes,omitempty"`
	RSSAfter         int64   `json:"rss_after_bytes,omitempty"`
	HeapBefore       int64   `json:"heap_inuse_before_bytes,omitempty"`
	HeapAfter        int64   `json:"heap_inuse_after_bytes,omitempty"`
	InstancesBefore  int64   `json:"instances_before"` // -1 when the node does not export the count
	InstancesAfter   int64   `json:"instances_after"`
	RSSPerInstance   float64 `json:"rss_per_instance_bytes,omitempty"`
	HeapPerInstance  float64 `json:"heap_inuse_per_instance_bytes,omitempty"`
	Note             string  `json:"note,omitempty"`

	startTime float64
	sameAs    *NodeMemory // an earlier node served by the same process
}

// parseMetrics returns the unlabelled samples of a Prometheus text exposition.
func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || strings.ContainsRune(f[0], '{') {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// scrape reads one node's metrics; ok is false when /metrics is absent or not Prometheus text.
func (r *runner) scrape(ctx context.Context, metricsURL string) (map[string]float64, bool) {
	status, body, err := r.c.get(ctx, metricsURL)
	if err != nil || status != http.StatusOK {
		return nil, false
	}
	m := parseMetrics(bytes.NewReader(body))
	_, ok := m[metricRSS]
	return m, ok
}

// scrapeMin scrapes every node n times, spaced by gap, and keeps the lowest RSS and heap seen (the
// Go runtime returns freed pages gradually, so the minimum is the closest to the live size).
func (r *runner) scrapeMin(ctx context.Context, nodes []*NodeMemory, n int, gap time.Duration) {
	for _, nm := range nodes {
		nm.RSSAfter, nm.HeapAfter = math.MaxInt64, math.MaxInt64
	}
	for i := range n {
		if i > 0 && sleepCtx(ctx, gap) != nil {
			break
		}
		if i == 1 && !slices.ContainsFunc(nodes, func(nm *NodeMemory) bool { return nm.MetricsAvailable }) {
			break // nobody exports metrics: no point asking again
		}
		for _, nm := range nodes {
			if m, ok := r.scrape(ctx, nm.MetricsURL); ok {
				nm.MetricsAvailable = true
				nm.RSSAfter = min(nm.RSSAfter, int64(m[metricRSS]))
				if h, ok := m[metricHeap]; ok {
					nm.HeapAfter = min(nm.HeapAfter, int64(h))
				}
				nm.InstancesAfter = countOf(m)
				nm.startTime = m[metricStart]
			}
		}
	}
	for _, nm := range nodes {
		if nm.RSSAfter == math.MaxInt64 {
			nm.RSSAfter = 0
		}
		if nm.HeapAfter == math.MaxInt64 {
			nm.HeapAfter = 0
		}
	}
}

func countOf(m map[string]float64) int64 {
	if v, ok := m[metricInstances]; ok {
		return int64(v)
	}
	return -1
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// memoryBefore takes each node's baseline (lowest of three scrapes).
func (r *runner) memoryBefore(ctx context.Context) []*NodeMemory {
	var nodes []*NodeMemory
	for i, base := range r.bases {
		nodes = append(nodes, &NodeMemory{Target: base, MetricsURL: r.origins[i] + "/metrics", InstancesBefore: -1, InstancesAfter: -1})
	}
	r.scrapeMin(ctx, nodes, 3, 200*time.Millisecond)
	for _, nm := range nodes {
		nm.RSSBefore, nm.HeapBefore, nm.InstancesBefore = nm.RSSAfter, nm.HeapAfter, nm.InstancesAfter
		nm.RSSAfter, nm.HeapAfter, nm.InstancesAfter = 0, 0, -1
	}
	return nodes
}

// memoryAfter waits until every node that exports its instance count holds the new instances
// (replication), lets the node settle, scrapes again and computes the per-instance figures.
func (r *runner) memoryAfter(ctx context.Context, nodes []*NodeMemory, added int64) {
	timeout := 30*time.Second + time.Duration(added)*200*time.Microsecond
	for _, nm := range nodes {
		if !nm.MetricsAvailable || nm.InstancesBefore < 0 {
			continue
		}
		want := nm.InstancesBefore + added
		deadline := time.Now().Add(timeout)
		for {
			m, ok := r.scrape(ctx, nm.MetricsURL)
			if ok && countOf(m) >= want {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				got := int64(-1)
				if ok {
					got = countOf(m)
				}
				nm.Note = fmt.Sprintf("holds %d instances, %d expected after waiting %v", got, want, timeout)
				fmt.Fprintf(r.stderr, "memory: %s %s\n", nm.Target, nm.Note)
				break
			}
			_ = sleepCtx(ctx, 100*time.Millisecond)
		}
	}
	fmt.Fprintf(r.stderr, "memory: letting the nodes settle for %v, then keeping the lowest of 5 scrapes\n", r.cfg.Settle)
	_ = sleepCtx(ctx, r.cfg.Settle)
	r.scrapeMin(ctx, nodes, 5, afterScrapeGap)
	for _, nm := range nodes {
		if !nm.MetricsAvailable {
			nm.Note = "no Prometheus " + metricRSS + " at " + nm.MetricsURL + ": throughput only"
			continue
		}
		n := added
		if nm.InstancesBefore >= 0 && nm.InstancesAfter > nm.InstancesBefore {
			n = nm.InstancesAfter - nm.InstancesBefore
		}
		nm.RSSPerInstance = float64(nm.RSSAfter-nm.RSSBefore) / float64(n)
		if nm.HeapAfter > 0 && nm.HeapBefore > 0 {
			nm.HeapPerInstance = float64(nm.HeapAfter-nm.HeapBefore) / float64(n)
		}
	}
	// Several URLs answered by one process (herald dev runs its nodes in one process): the RSS is
	// then the whole process's, holding one copy of each instance per node. Say so, and give the
	// figure per copy.
	for i, nm := range nodes {
		for _, o := range nodes[:i] {
			if r.sameProcess(ctx, o, nm) {
				copies := 0
				var added int64
				for _, x := range nodes {
					if x == o || x == nm || x.sameAs == o {
						copies++
						added += max(0, x.InstancesAfter-x.InstancesBefore)
					}
				}
				nm.Note = "same process as " + o.Target + ": the RSS covers every node in it"
				if added > 0 {
					o.Note = fmt.Sprintf("one process serves %d of these nodes: %.0f bytes of RSS per instance copy",
						copies, float64(o.RSSAfter-o.RSSBefore)/float64(added))
				}
				nm.sameAs = o
				break
			}
		}
	}
}

// sameProcess tells whether two URLs are served by one process: the same start time (10 ms
// resolution) and a process-wide allocation counter that, scraped at a, b, a, strictly increases
// (every scrape allocates in the process that serves it).
func (r *runner) sameProcess(ctx context.Context, a, b *NodeMemory) bool {
	if !a.MetricsAvailable || !b.MetricsAvailable || a.startTime == 0 || a.startTime != b.startTime {
		return false
	}
	var v [3]float64
	for i, nm := range []*NodeMemory{a, b, a} {
		m, ok := r.scrape(ctx, nm.MetricsURL)
		if !ok {
			return false
		}
		if v[i], ok = m[metricAllocated]; !ok {
			return false
		}
	}
	return v[0] < v[1] && v[1] < v[2]
}
