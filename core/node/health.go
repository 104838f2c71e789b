package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/heraldhq/herald/core/replication"
)

// Health endpoints, served on the node's own listener next to the Eureka API:
//
//	GET /health/live   200 while the process serves HTTP (liveness)
//	GET /health/ready  200 when the node should get traffic, 503 otherwise (readiness)
//
// Both answer JSON; the readiness body lists every condition with the reason it is not met.
const (
	LivePath  = "/health/live"
	ReadyPath = "/health/ready"
	// ProfilingPath is where Go's runtime profiles are served when Options.Profiling is set.
	ProfilingPath = "/debug/pprof/"
)

// Check is one condition of readiness, as /health/ready reports it.
type Check struct {
	// Name identifies the condition: "shutdown", "startup_sync", "reads", "plugin KIND NAME".
	Name string `json:"name"`
	// OK is true when the condition is met.
	OK bool `json:"ok"`
	// Detail says why, in words for an operator.
	Detail string `json:"detail,omitempty"`
}

// HealthReport is the body of the health endpoints.
type HealthReport struct {
	// Status is "live", "ready", "not ready" or "stopping".
	Status string `json:"status"`
	// Node is the node's name.
	Node string `json:"node"`
	// Checks are readiness's conditions (readiness only).
	Checks []Check `json:"checks,omitempty"`
}

// Ready reports whether the node should get traffic: it is not stopping, its startup sync is
// done, it serves reads, and every condition of Deps.ReadyChecks (plugin processes up) holds.
// The checks say which condition failed and why.
func (n *Node) Ready() (bool, []Check) {
	checks := make([]Check, 0, 4)
	if n.stopping.Load() {
		checks = append(checks, Check{Name: "shutdown", Detail: "the node is stopping"})
	} else {
		checks = append(checks, Check{Name: "shutdown", OK: true, Detail: "running"})
	}
	checks = append(checks, n.syncCheck(), n.readsCheck())
	if n.deps.ReadyChecks != nil {
		checks = append(checks, n.deps.ReadyChecks()...)
	}
	ok := true
	for _, c := range checks {
		ok = ok && c.OK
	}
	return ok, checks
}

// syncCheck is done once the startup sync has finished, whether reads are gated or not (with
// wait_when_empty = 0 reads are served during the sync, but the registry may still lack what
// the peers hold).
func (n *Node) syncCheck() Check {
	select {
	case <-n.cluster.SyncDone():
		st := n.cluster.Stats()
		detail := fmt.Sprintf("done: %d instances copied", st.SyncedInstances)
		if st.SyncSource != "" {
			detail += " from " + st.SyncSource
		}
		return Check{Name: "startup_sync", OK: true, Detail: detail}
	default:
		return Check{Name: "startup_sync", Detail: "copying the registry from a peer"}
	}
}

// readsCheck is the read gate; a cluster that can say why (Ready) is asked.
func (n *Node) readsCheck() Check {
	if r, ok := any(n.cluster).(interface{ Ready() (bool, string) }); ok {
		ready, why := r.Ready()
		return Check{Name: "reads", OK: ready, Detail: why}
	}
	if n.cluster.AllowReads() {
		return Check{Name: "reads", OK: true, Detail: "serving reads"}
	}
	return Check{Name: "reads", Detail: "reads refused (403) until a peer has data or cluster.startup_sync.wait_when_empty has passed"}
}

func (n *Node) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(LivePath, func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, r, http.StatusOK, HealthReport{Status: "live", Node: n.cfg.Name})
	})
	mux.HandleFunc(ReadyPath, func(w http.ResponseWriter, r *http.Request) {
		ok, checks := n.Ready()
		rep := HealthReport{Status: "ready", Node: n.cfg.Name, Checks: checks}
		code := http.StatusOK
		switch {
		case n.stopping.Load():
			rep.Status, code = "stopping", http.StatusServiceUnavailable
		case !ok:
			rep.Status, code = "not ready", http.StatusServiceUnavailable
		}
		writeHealth(w, r, code, rep)
	})
	return mux
}

func writeHealth(w http.ResponseWriter, r *http.Request, code int, rep HealthReport) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"method not allowed"}` + "\n"))
		return
	}
	b, _ := json.Marshal(rep)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		_, _ = w.Write(append(b, '\n'))
	}
}

// drainReplication waits until every peer's queues are empty or ctx ends, logs what was left
// unsent per peer, and closes the pipeline.
func (n *Node) drainReplication(ctx context.Context) error {
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		left := 0
		for _, s := range n.repl.Stats() {
			left += int(unsentTasks(s) + s.BatchQueueDepth + s.InFlight + s.Sending)
		}
		if left == 0 {
			n.log.Info("replication queues drained", "took", time.Since(start).Round(time.Millisecond))
			break
		}
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
		}
		for _, s := range n.repl.Stats() {
			if unsentTasks(s)+s.BatchQueueDepth+s.InFlight+s.Sending == 0 {
				continue
			}
			n.log.Error("shutdown deadline passed: replication tasks not sent to peer",
				"peer", s.Peer, "tasks_queued", unsentTasks(s), "batches_queued", s.BatchQueueDepth,
				"batches_being_sent", max(s.InFlight, s.Sending), "deadline", n.cfg.ShutdownTimeout)
		}
		break
	}
	return n.repl.Close(ctx)
}

// unsentTasks are a peer's tasks not yet in a batch: accepted, pending, or back for a retry.
func unsentTasks(s replication.PeerStats) int64 {
	return s.AcceptorDepth + s.PendingDepth + s.RetryDepth
}
