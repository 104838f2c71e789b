package cluster

// Cold start. Eureka's startup sync copies the registry of the first peer that has one; a node that
// copies nothing refuses full reads for waitTimeInMsWhenSyncEmpty (5 min), because it cannot tell
// "the cluster is empty" from "I could not reach the nodes that know it". Nodes started together
// make that worse: each one's GET /apps is refused by the others (they gate their own reads while
// they sync), round after round.
//
// herald nodes tell each other where they are: GET {prefix}sync answers syncState. When every peer
// that answers is itself starting (its own sync not finished), or opened by a cold start and still
// empty, nobody in the cluster has a registry to give: the cluster is cold-starting, and the node
// opens reads at once with what clients register. A starting peer only holds what clients
// registered with it since it started, which the replication pipeline delivers here anyway. A node
// that reaches a running peer (synced, or a plain Eureka server) still syncs and gates as Eureka
// does. Peers that do not answer at all are not counted: a node that reaches nobody keeps Eureka's
// rules, since it may be cut off from a running cluster.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// pathSyncState answers syncState: where this node's startup is.
const pathSyncState = "sync"

// probeInterval is how often, between two sync rounds, the peers that did not answer are asked
// again: the next round starts as soon as one answers, so nodes started a few seconds apart find
// each other without waiting a whole retry_wait.
const probeInterval = time.Second

// The states a node reports on the sync endpoint.
const (
	// stateStarting: the startup sync has not finished; reads are refused meanwhile.
	stateStarting = "starting"
	// stateSynced: the startup sync has finished (copied, found nothing, or cold-started).
	stateSynced = "synced"
)

// syncState is the answer of GET {prefix}sync.
type syncState struct {
	// State is stateStarting or stateSynced.
	State string `json:"state"`
	// ColdStart is set when the node opened because the whole cluster was starting.
	ColdStart bool `json:"coldStart,omitempty"`
	// Instances is the number of live instances.
	Instances int `json:"instances"`
	// ReadsOpen tells whether the node serves full reads.
	ReadsOpen bool `json:"readsOpen"`
}

// Validator checks instances that arrive from a peer without a replicated write (startup sync,
// anti-entropy pulls), as replicated writes are checked. It returns, for each instance, why it is
// refused ("" to accept it); an error means the check could not run, and nothing is applied.
// The registry's own checks (registry.ValidateInstance) run in any case.
type Validator func(ctx context.Context, insts []*registry.Instance) ([]string, error)

// validateChunk bounds how many instances one Validator call gets.
const validateChunk = 500

// WithInstanceValidator sets the Validator of instances copied from peers; a refused instance is
// skipped and logged.
func WithInstanceValidator(v Validator) Option {
	return func(o *options) { o.validate = v }
}

// checkAll runs v over insts in chunks and returns the accepted ones; refused ones go to refuse.
// Without v every instance is accepted.
func checkAll(ctx context.Context, v Validator, insts []*registry.Instance, refuse func(*registry.Instance, string)) ([]*registry.Instance, error) {
	if v == nil {
		return insts, nil
	}
	kept := make([]*registry.Instance, 0, len(insts))
	for chunk := range slices.Chunk(insts, validateChunk) {
		why, err := v(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("validating instances from a peer: %w", err)
		}
		for i, inst := range chunk {
			if i < len(why) && why[i] != "" {
				refuse(inst, why[i])
				continue
			}
			kept = append(kept, inst)
		}
	}
	return kept, nil
}

// serveSyncState answers GET {prefix}sync.
func (c *Cluster) serveSyncState(w http.ResponseWriter, r *http.Request) {
	st := syncState{State: stateStarting, Instances: c.reg.Stats().Instances, ReadsOpen: c.gate.allow()}
	c.mu.Lock()
	if c.syncOver {
		st.State = stateSynced
		st.ColdStart = c.syncRes.coldStart
	}
	c.mu.Unlock()
	writeJSON(w, r, st)
}

// Ready reports whether the node serves full reads (GET /apps and the other gated reads), and why
// or why not, in a few words: for a readiness endpoint.
func (c *Cluster) Ready() (bool, string) {
	if c.gate.allow() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.openReason != "" {
			return true, c.openReason
		}
		return true, "reads open"
	}
	c.mu.Lock()
	over := c.syncOver
	c.mu.Unlock()
	if !over {
		return false, "startup sync in progress"
	}
	until := time.Unix(0, c.gate.until.Load()).UTC().Format(time.RFC3339)
	return false, "startup sync copied nothing: reads refused until " + until +
		" or until anti-entropy reaches a peer that has instances"
}

// readsOpened records and logs, once, that reads are open and why.
func (c *Cluster) readsOpened(reason string) {
	c.mu.Lock()
	first := c.openReason == ""
	if first {
		c.openReason = reason
	}
	c.mu.Unlock()
	if first {
		c.logger.Info("reads open", "reason", reason)
	}
}

// state asks a peer where its startup is. It returns nil, nil for a peer that does not serve the
// endpoint (an Eureka server, an older herald), and an error when the peer did not answer.
func (s *syncer) state(ctx context.Context, p sdk.Peer, timeout time.Duration) (*syncState, error) {
	pu, err := normalizeURL(p.URL)
	if err != nil {
		return nil, err
	}
	var st syncState
	body, err := get(ctx, s.client, pu.base+s.prefix+pathSyncState, timeout)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			// Any HTTP answer means the peer is up; only herald nodes serve the endpoint.
			return nil, nil
		}
		return nil, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, nil
	}
	return &st, nil
}

// waitOrProbe waits d, ending early (true) when one of the peers that did not answer answers now.
func (s *syncer) waitOrProbe(ctx context.Context, d time.Duration, silent []sdk.Peer) (bool, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(min(probeInterval, max(d, time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, nil
		case <-tick.C:
			for _, p := range silent {
				if _, err := s.state(ctx, p, probeInterval); err == nil {
					s.logger.Info("startup sync: peer answers now, starting the next round", "peer", p.Name)
					return true, nil
				}
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
			}
		}
	}
}
