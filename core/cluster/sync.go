package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// syncer copies a peer's registry at startup (Eureka's syncUp, as the reference recommends it for
// Go: straight from the peers' GET /apps instead of an embedded client's cache).
type syncer struct {
	reg    Registry
	peers  func() []sdk.Peer
	client *http.Client
	cfg    SyncConfig
	logger hclog.Logger
	// dynamic is set when peers come from DNS and may still appear: an empty set is then retried
	// like an empty registry instead of ending the sync.
	dynamic bool
	// prefix is where peers serve the herald endpoints (Config.APIPrefix).
	prefix string
	// validate, when set, checks the copied instances.
	validate Validator
}

// syncResult is what the sync copied and from where.
type syncResult struct {
	// standalone is set when the node has no peers at all (and no DNS discovery).
	standalone bool
	// coldStart is set when every peer that answered was starting too (see coldstart.go).
	coldStart bool
	count     int
	source    string
}

// run tries the peers in order until one has a non-empty registry and copies it. A round that finds
// none is repeated up to cfg.Retries times, cfg.RetryWait apart; the wait ends early when a peer that
// did not answer answers. A round in which every peer that answered is starting too ends the sync
// at once as a cold start (coldstart.go). With no static peers and no DNS there is nothing to wait
// for and run returns at once. Only ctx ending is an error.
func (s *syncer) run(ctx context.Context) (syncResult, error) {
	if !s.dynamic && len(s.peers()) == 0 {
		// A standalone node has nobody to copy from and nobody whose data it could be missing:
		// gating its reads would only hide what clients registered with it.
		s.logger.Info("no peers, skipping the startup sync")
		return syncResult{standalone: true}, nil
	}
	var silent []sdk.Peer
	for round := 0; round < s.cfg.Retries; round++ {
		if round > 0 {
			if _, err := s.waitOrProbe(ctx, s.cfg.RetryWait, silent); err != nil {
				return syncResult{}, err
			}
		}
		silent = silent[:0]
		peers := s.peers()
		if len(peers) == 0 {
			if !s.dynamic {
				s.logger.Info("no peers, skipping the startup sync")
				return syncResult{}, nil
			}
			s.logger.Info("startup sync: DNS has no peers yet", "round", round+1)
			continue
		}
		answered, starting := 0, 0
		for _, p := range peers {
			st, err := s.state(ctx, p, s.cfg.Timeout)
			if err != nil {
				if ctx.Err() != nil {
					return syncResult{}, ctx.Err()
				}
				s.logger.Warn("startup sync: peer unavailable", "peer", p.Name, "round", round+1, "error", err)
				silent = append(silent, p)
				continue
			}
			answered++
			if st != nil && st.State == stateStarting {
				s.logger.Info("startup sync: peer is starting too", "peer", p.Name, "round", round+1)
				starting++
				continue
			}
			apps, err := s.fetch(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return syncResult{}, ctx.Err()
				}
				s.logger.Warn("startup sync: peer unavailable", "peer", p.Name, "round", round+1, "error", err)
				continue
			}
			if countInstances(apps) == 0 {
				s.logger.Info("startup sync: peer registry is empty", "peer", p.Name, "round", round+1)
				if st != nil && st.ColdStart {
					starting++
				}
				continue
			}
			n, err := s.copy(ctx, apps)
			if err != nil {
				if ctx.Err() != nil {
					return syncResult{count: n, source: p.Name}, err
				}
				// The validators could not run; nothing was copied. Try the next peer.
				s.logger.Warn("startup sync: cannot copy", "peer", p.Name, "round", round+1, "error", err)
				continue
			}
			s.logger.Info("startup sync: copied registry", "peer", p.Name, "instances", n)
			return syncResult{count: n, source: p.Name}, nil
		}
		if answered > 0 && starting == answered {
			s.logger.Info("startup sync: every peer that answers is starting with nothing to copy: cold start",
				"answered", answered, "unreachable", len(silent))
			return syncResult{coldStart: true}, nil
		}
	}
	return syncResult{}, nil
}

func (s *syncer) fetch(ctx context.Context, p sdk.Peer) (*registry.Applications, error) {
	body, err := get(ctx, s.client, p.URL+"apps", s.cfg.Timeout)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusForbidden {
			// The peer is gating its own reads: it is starting up too and has nothing to give.
			return nil, fmt.Errorf("peer %s is still starting: %w", p.Name, err)
		}
		return nil, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	apps, err := codec.DecodeApplications(body, codec.JSON)
	if err != nil {
		return nil, fmt.Errorf("peer %s: GET apps: %w", p.Name, err)
	}
	return apps, nil
}

// copy registers every instance as a replicated write: the registry keeps lastDirtyTimestamp,
// status, overriddenStatus (installed into the override map) and the lease duration from the
// instance, and does not send it on. An instance the registry refuses is logged and skipped, as
// Eureka's syncUp does.
func (s *syncer) copy(ctx context.Context, apps *registry.Applications) (int, error) {
	var all []*registry.Instance
	for _, a := range apps.Applications {
		for _, inst := range a.Instances {
			if inst.App == "" {
				inst.App = a.Name
			}
			all = append(all, inst)
		}
	}
	all, err := checkAll(ctx, s.validate, all, func(inst *registry.Instance, why string) {
		s.logger.Warn("startup sync: instance refused", "app", inst.App, "id", inst.ID(), "reason", why)
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, inst := range all {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := s.reg.Register(ctx, inst, registry.FromPeer); err != nil {
			s.logger.Warn("startup sync: instance refused", "app", inst.App, "id", inst.ID(), "error", err)
			continue
		}
		n++
	}
	return n, nil
}

func countInstances(apps *registry.Applications) int {
	n := 0
	for _, a := range apps.Applications {
		n += len(a.Instances)
	}
	return n
}

// gate is Eureka's shouldAllowAccess: when the startup sync copied nothing, reads are refused until
// WaitWhenEmpty after the registry opened, so clients keep the registry they have instead of
// fetching an empty one from a node that has not heard from its peers yet. Reads are also refused
// while the sync runs, for the same reason. A node that later completes an anti-entropy exchange
// with a peer that has instances is as complete as a sync would have made it, so that lifts the gate
// early (Eureka has no such path and gates for the full five minutes).
type gate struct {
	wait  time.Duration
	clock registry.Clock
	// onOpen, when set, is told once, with the reason, when reads open.
	onOpen func(reason string)

	open   atomic.Bool  // reads allowed for good: the fast path of every read
	synced atomic.Bool  // the sync has finished
	until  atomic.Int64 // unix nanoseconds at which the window ends; set before synced
}

func (g *gate) allow() bool {
	if g.wait <= 0 || g.open.Load() {
		return true
	}
	if !g.synced.Load() {
		return false
	}
	if g.clock.Now().UnixNano() >= g.until.Load() {
		g.lift("startup_sync.wait_when_empty passed since an empty startup sync")
		return true
	}
	return false
}

// opened records the end of the sync.
func (g *gate) opened(count int) {
	if count > 0 {
		g.lift("startup sync copied instances")
	}
	g.until.Store(g.clock.Now().Add(g.wait).UnixNano())
	g.synced.Store(true)
}

// lift allows reads from now on; the first call tells onOpen why.
func (g *gate) lift(reason string) {
	if g.open.CompareAndSwap(false, true) && g.onOpen != nil {
		g.onOpen(reason)
	}
}
