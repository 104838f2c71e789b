package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/core/cluster"
	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/sdk"
)

// What the dashboard shows about the node and its peers beyond the replication statistics: the
// node's readiness conditions, and each peer's own name and readiness, asked from the peer's
// /health/ready (with the node's peer credentials) at most every peerProbeInterval, when the
// dashboard or the status page is looked at.
const (
	peerProbeInterval = 5 * time.Second
	// peerProbeTimeout bounds one probe; peerProbeWait is how long a page waits for a probe it
	// started before it shows what was known before.
	peerProbeTimeout = 2 * time.Second
	peerProbeWait    = time.Second
)

// dashboardOptions is what the Eureka handler's dashboard is told about this node.
func (n *Node) dashboardOptions() eureka.DashboardOptions {
	return eureka.DashboardOptions{
		NodeName:              n.cfg.Name,
		Version:               n.cfg.Version,
		URL:                   n.url,
		MetricsPath:           n.cfg.MetricsPath,
		HealthPath:            ReadyPath,
		TraceURL:              n.cfg.TraceURL,
		Health:                n.dashboardHealth,
		SelfPreservationGrace: n.cfg.Registry.RenewalThresholdUpdateInterval,
	}
}

// dashboardHealth is the node's readiness as the dashboard lists it.
func (n *Node) dashboardHealth() []eureka.HealthCheck {
	_, checks := n.Ready()
	out := make([]eureka.HealthCheck, len(checks))
	for i, c := range checks {
		out[i] = eureka.HealthCheck{Name: c.Name, OK: c.OK, Detail: c.Detail}
	}
	return out
}

// probeClient is the HTTP client of the peer probes: the node's peer credentials, and idle
// connections closed soon after the dashboard is no longer looked at.
func (n *Node) probeClient() *http.Client {
	t := cluster.DefaultTransport()
	t.IdleConnTimeout = 2 * peerProbeInterval
	return n.peerClient(t)
}

// fillPeerStatus adds a peer's replication figures and what its last probe found to ps.
func fillPeerStatus(ps *eureka.PeerStatus, s *replication.PeerStats, pr *probeResult) {
	if s != nil {
		ps.Queue = s.AcceptorDepth + s.PendingDepth + s.BatchQueueDepth + s.InFlight
		ps.Dropped = s.Expired + s.Overflow + s.PermanentDropped
		ps.SendP99 = time.Duration(quantile(s.Latency, 0.99) * float64(time.Second))
	}
	if pr != nil {
		ps.NodeName, ps.Health, ps.LastError = pr.node, pr.health, pr.err
		if pr.err != "" {
			ps.Up = false
		}
	}
}

// quantile estimates the q-quantile of a histogram as Prometheus's histogram_quantile does:
// linear within the bucket that holds it, the highest finite bound when it lies beyond. 0 for
// an empty histogram.
func quantile(h replication.Histogram, q float64) float64 {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.Bounds {
		c := h.Cumulative[i]
		if float64(c) >= rank {
			in := c - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, c
	}
	return h.Bounds[len(h.Bounds)-1]
}

// probeResult is what a peer's /health/ready said.
type probeResult struct {
	node, health, err string
}

// peerProbe asks the peers for their readiness, at most every peerProbeInterval.
type peerProbe struct {
	mu      sync.Mutex
	client  *http.Client
	results map[string]probeResult // by peer URL
	last    time.Time
	running chan struct{} // closed when the probe in flight ends; nil when none
}

// results returns what the peers said last, first probing them if that is older than
// peerProbeInterval (waiting up to peerProbeWait for the answers).
func (p *peerProbe) get(ctx context.Context, peers []sdk.Peer, newClient func() *http.Client) map[string]probeResult {
	p.mu.Lock()
	if p.client == nil {
		p.client = newClient()
	}
	if p.running == nil && time.Since(p.last) >= peerProbeInterval && len(peers) > 0 {
		done := make(chan struct{})
		p.running, p.last = done, time.Now()
		go p.probeAll(ctx, peers, done)
	}
	wait := p.running
	p.mu.Unlock()
	if wait != nil {
		t := time.NewTimer(peerProbeWait)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]probeResult, len(p.results))
	for k, v := range p.results {
		out[k] = v
	}
	return out
}

func (p *peerProbe) probeAll(ctx context.Context, peers []sdk.Peer, done chan struct{}) {
	results := make(map[string]probeResult, len(peers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, peer := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.probe(ctx, peer)
			mu.Lock()
			results[peer.URL] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.mu.Lock()
	for k, v := range p.results {
		// A peer that did not answer keeps the name it gave before.
		if r, ok := results[k]; ok && r.node == "" {
			r.node = v.node
			results[k] = r
		}
	}
	p.results, p.running = results, nil
	p.mu.Unlock()
	close(done)
}

// probe asks one peer's readiness endpoint, next to its Eureka base URL.
func (p *peerProbe) probe(ctx context.Context, peer sdk.Peer) probeResult {
	ctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
	defer cancel()
	base := peer.URL
	if i := strings.Index(base, "://"); i >= 0 {
		if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
			base = base[:i+3+j]
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+ReadyPath, nil)
	if err != nil {
		return probeResult{health: "unreachable", err: err.Error()}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the method and URL: the table shows the peer's URL
		}
		return probeResult{health: "unreachable", err: err.Error()}
	}
	defer resp.Body.Close()
	var rep HealthReport
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&rep); err != nil {
		return probeResult{health: "unknown", err: "health answer " + resp.Status + ": not a health report"}
	}
	r := probeResult{node: rep.Node, health: rep.Status}
	if resp.StatusCode != http.StatusOK {
		var failing []string
		for _, c := range rep.Checks {
			if !c.OK {
				failing = append(failing, c.Name+": "+c.Detail)
			}
		}
		if len(failing) > 0 {
			r.health += " (" + strings.Join(failing, "; ") + ")"
		}
	}
	return r
}

func statsOrNil(s replication.PeerStats, ok bool) *replication.PeerStats {
	if !ok {
		return nil
	}
	return &s
}

func probeOrNil(r probeResult, ok bool) *probeResult {
	if !ok {
		return nil
	}
	return &r
}
