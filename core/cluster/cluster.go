package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// initialRefreshTimeout bounds the first peer computation in Start. It runs before the node serves
// so that the first writes are replicated to the right peers, but a slow resolver must not hold the
// node back: whatever it misses, the periodic refresh and anti-entropy make up for.
const initialRefreshTimeout = 5 * time.Second

// Cluster ties the peer set, the startup sync, the read gate and anti-entropy together for one node.
//
// Start computes the peer set and hands it to the replication pipeline, then, in the background,
// runs the startup sync, opens the registry for traffic and runs anti-entropy rounds until Stop.
// The node's HTTP server should start right after Start: writes are accepted during the sync, reads
// are gated by AllowReads.
type Cluster struct {
	cfg    Config
	reg    Registry
	peers  *Peers
	syncer *syncer
	ae     *antiEntropy
	gate   gate
	stats  counters
	jitter func(time.Duration) time.Duration
	logger hclog.Logger

	handler  http.Handler
	syncDone chan struct{}

	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	syncRes  syncResult
	syncOver bool
	// openReason says why reads opened; empty while they are refused (see readsOpened).
	openReason string
}

// Stats are the cluster's counters for metrics and status pages.
type Stats struct {
	// Peers is the number of peers.
	Peers int
	// SyncDone is set once the startup sync finished; SyncedInstances were copied from SyncSource.
	SyncDone        bool
	SyncedInstances int
	SyncSource      string
	// Exchanges counts root digests compared with a peer, Mismatches those that differed.
	Exchanges  uint64
	Mismatches uint64
	// Pulled counts instances fetched from peers and registered, Deleted local copies cancelled
	// because a peer had cancelled them.
	Pulled  uint64
	Deleted uint64
	// ColdStart is set when the sync ended because every peer that answered was starting too.
	ColdStart bool
	// Ties counts instances whose copies had the same lastDirtyTimestamp but different content;
	// the node with the copy that loses in the order of registry.Version pulls the other.
	Ties uint64
	// Failures counts exchanges that failed (peer unreachable, bad answer, not a herald node).
	Failures uint64
}

// New returns a cluster for reg. setter receives the peer set (the replication pipeline); it may be
// nil.
func New(cfg Config, reg Registry, setter PeerSetter, opts ...Option) (*Cluster, error) {
	if reg == nil {
		return nil, errors.New("cluster: nil registry")
	}
	peers, err := NewPeers(cfg, setter, opts...)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	cfg = cfg.withDefaults()
	c := &Cluster{
		cfg:      cfg,
		reg:      reg,
		peers:    peers,
		gate:     gate{wait: cfg.Sync.WaitWhenEmpty, clock: o.clock},
		jitter:   o.jitter,
		logger:   o.logger,
		syncDone: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cfg.APIPrefix+pathSyncState, c.serveSyncState)
	mux.Handle("/", newHandler(reg, cfg.APIPrefix, o.clock))
	c.handler = mux
	c.gate.onOpen = c.readsOpened
	c.syncer = &syncer{
		reg:      reg,
		peers:    peers.List,
		client:   o.client,
		cfg:      cfg.Sync,
		logger:   o.logger.Named("sync"),
		dynamic:  cfg.DNS.Name != "",
		prefix:   cfg.APIPrefix,
		validate: o.validate,
	}
	grace := cfg.AntiEntropy.Grace
	if grace < 0 {
		grace = 0
	}
	c.ae = &antiEntropy{
		reg:      reg,
		client:   o.client,
		prefix:   cfg.APIPrefix,
		timeout:  cfg.AntiEntropy.RequestTimeout,
		grace:    grace,
		logger:   o.logger.Named("anti-entropy"),
		stats:    &c.stats,
		validate: o.validate,
	}
	return c, nil
}

// Start computes the peer set (bounded by a few seconds), then starts the background work and
// returns. ctx bounds the background work as Stop does. Start may be called once.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("cluster: already started")
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)

	rctx, cancel := context.WithTimeout(ctx, initialRefreshTimeout)
	if err := c.peers.Refresh(rctx); err != nil {
		c.logger.Warn("initial peer set incomplete", "error", err)
	}
	cancel()

	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.peers.Run(ctx)
	}()
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
	return nil
}

// Stop ends the background work and waits for it. It is safe to call more than once, and before
// Start.
func (c *Cluster) Stop() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
}

// run is the sync, then anti-entropy until ctx ends.
func (c *Cluster) run(ctx context.Context) {
	res, err := c.syncer.run(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Error("startup sync failed", "error", err)
		} else {
			return
		}
	}
	c.reg.OpenForTraffic(res.count)
	switch {
	case res.count > 0:
		c.gate.lift(fmt.Sprintf("startup sync copied %d instances from %s", res.count, res.source))
	case res.standalone:
		c.gate.lift("no peers: a standalone node has nothing to wait for")
	case res.coldStart:
		c.gate.lift("cold start: every peer that answers is starting too")
	case c.cfg.Sync.WaitWhenEmpty <= 0:
		c.readsOpened("startup sync copied nothing; startup_sync.wait_when_empty is 0, so reads are never refused")
	}
	c.gate.opened(res.count)
	c.mu.Lock()
	c.syncRes, c.syncOver = res, true
	c.mu.Unlock()
	close(c.syncDone)

	if !c.cfg.AntiEntropy.Enabled {
		return
	}
	for {
		t := time.NewTimer(c.jitter(c.cfg.AntiEntropy.Interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.round(ctx)
		c.gate.allow() // logs the end of an empty sync's window close to when it happens
	}
}

// round exchanges digests with every peer in turn. One at a time: a round is cheap when nothing
// differs, and repairs should not compete with client traffic for the registry's locks.
func (c *Cluster) round(ctx context.Context) {
	for _, p := range c.peers.List() {
		if ctx.Err() != nil {
			return
		}
		res, err := c.ae.exchange(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.stats.failures.Add(1)
			if errors.Is(err, errNotFound) {
				c.logger.Debug("peer does not serve anti-entropy (not a herald node?)", "peer", p.Name)
			} else {
				c.logger.Warn("anti-entropy exchange failed", "peer", p.Name, "error", err)
			}
			continue
		}
		if res.peerCount > 0 {
			c.gate.lift("anti-entropy compared digests with " + p.Name + ", which has instances")
		}
	}
}

// AllowReads reports whether read endpoints may answer (Eureka answers 403 otherwise). With
// Sync.WaitWhenEmpty > 0 it is false until the startup sync has finished, and then for
// WaitWhenEmpty if the sync copied nothing (or until anti-entropy catches up with a non-empty
// peer). It is cheap enough to call on every request.
func (c *Cluster) AllowReads() bool { return c.gate.allow() }

// SyncDone is closed when the startup sync has finished and the registry is open for traffic.
func (c *Cluster) SyncDone() <-chan struct{} { return c.syncDone }

// Handler serves the herald endpoints. Mount it at Config.APIPrefix (default "/herald/v1/"); it
// expects the full request path.
func (c *Cluster) Handler() http.Handler { return c.handler }

// Peers returns the current peers.
func (c *Cluster) Peers() *Peers { return c.peers }

// Reload replaces the static peer URLs (on SIGHUP); see Peers.Reload.
func (c *Cluster) Reload(ctx context.Context, urls []string) error {
	return c.peers.Reload(ctx, urls)
}

// Stats returns the current counters.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	res, over := c.syncRes, c.syncOver
	c.mu.Unlock()
	return Stats{
		Peers:           len(c.peers.List()),
		SyncDone:        over,
		SyncedInstances: res.count,
		SyncSource:      res.source,
		ColdStart:       res.coldStart,
		Exchanges:       c.stats.exchanges.Load(),
		Mismatches:      c.stats.mismatches.Load(),
		Pulled:          c.stats.pulled.Load(),
		Deleted:         c.stats.deleted.Load(),
		Ties:            c.stats.ties.Load(),
		Failures:        c.stats.failures.Load(),
	}
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := d / 5
	return d - d/10 + rand.N(spread+1)
}
