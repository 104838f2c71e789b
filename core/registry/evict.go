package registry

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

// thresholdLocked is Eureka's numberOfRenewsPerMinThreshold. r.mu must be held.
func (r *Registry) thresholdLocked() int {
	perMin := 60 / r.cfg.ExpectedClientRenewalInterval.Seconds()
	return int(math.Floor(float64(r.expected) * perMin * r.cfg.RenewalPercentThreshold))
}

// expirationEnabled is Eureka's isLeaseExpirationEnabled: always without self-preservation,
// otherwise only while renewals in the last complete minute exceed a positive threshold.
func (r *Registry) expirationEnabled(now int64) bool {
	if !r.cfg.EnableSelfPreservation {
		return true
	}
	r.mu.RLock()
	t := r.thresholdLocked()
	r.mu.RUnlock()
	enabled := t > 0 && r.renews.lastMinute(now) > int64(t)
	if enabled {
		r.protectedSince.Store(0)
	} else {
		r.protectedSince.CompareAndSwap(0, now)
	}
	return enabled
}

// OpenForTraffic sets the expected number of renewing clients after startup sync (count instances
// copied) and starts counting renewals, as Eureka's openForTraffic. Like Spring Cloud, a count of 0
// is taken as 1, so that a node started empty still raises its expectation as clients register
// (Netflix's server would never evict in that case).
func (r *Registry) OpenForTraffic(count int) {
	if count <= 0 {
		count = 1
	}
	r.mu.Lock()
	r.expected = count
	r.startMs = r.nowMs()
	r.mu.Unlock()
}

// Start runs the registry's timers (eviction, threshold recount, delta retention, tombstone and
// override expiry) until ctx ends. It returns at once; calling it again does nothing.
func (r *Registry) Start(ctx context.Context) {
	r.startOnce.Do(func() {
		go r.every(ctx, r.cfg.EvictionInterval, func() { r.Evict() })
		go r.every(ctx, r.cfg.RenewalThresholdUpdateInterval, r.RecountExpected)
		go r.every(ctx, r.cfg.DeltaRetentionInterval, r.Prune)
	})
}

func (r *Registry) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Evict runs one eviction pass now and returns how many leases it evicted. The timer calls it every
// EvictionInterval; tests call it with a fake clock.
//
// As Eureka: leases expired by more than the run's lateness (compensation time) are collected, and
// at most size - floor(size × threshold) of them, chosen at random, are evicted, so a network
// blip cannot wipe the registry in one pass. While self-preservation holds expiry off nothing is
// evicted, except, when MaxProtectionTime is set, leases expired for longer than that.
func (r *Registry) Evict() int {
	now := r.nowMs()
	r.evictMu.Lock()
	additional := int64(0)
	if r.lastEvictMs > 0 {
		additional = max(0, now-r.lastEvictMs-r.cfg.EvictionInterval.Milliseconds())
	}
	r.lastEvictMs = now
	r.evictMu.Unlock()

	grace := additional
	if !r.expirationEnabled(now) {
		if r.cfg.MaxProtectionTime <= 0 {
			return 0
		}
		grace += r.cfg.MaxProtectionTime.Milliseconds()
	}

	r.mu.Lock()
	var expired []*lease
	size := 0
	for _, m := range r.apps {
		for _, l := range m {
			size++
			if l.isExpired(now, grace) {
				expired = append(expired, l)
			}
		}
	}
	limit := size - int(math.Floor(float64(size)*r.cfg.RenewalPercentThreshold))
	n := min(len(expired), limit)
	var changes []Change
	for i := 0; i < n; i++ {
		j := i + rand.IntN(len(expired)-i)
		expired[i], expired[j] = expired[j], expired[i]
		l := expired[i]
		r.removeOverride(l.id)
		changes = append(changes, changeOf(r.removeLocked(l, now)))
		r.logger.Debug("lease expired; instance evicted", "app", l.app, "id", l.id)
	}
	r.mu.Unlock()
	if n > 0 {
		r.evicted.Add(int64(n))
		r.logger.Info("evicted expired leases", "evicted", n, "expired", len(expired), "limit", limit)
	}
	// Eviction is never replicated: each node evicts on its own clock.
	r.notify(context.Background(), nil, changes...)
	return n
}

// RecountExpected is Eureka's renewal-threshold update: the expectation follows the registry's
// size, but may fall by at most 15% (1 - threshold) per update while self-preservation is on.
func (r *Registry) RecountExpected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	count := r.count
	if !r.cfg.EnableSelfPreservation || float64(count) > r.cfg.RenewalPercentThreshold*float64(r.expected) {
		r.expected = count
	}
}

// Prune drops recently-changed entries older than the delta retention, tombstones older than their
// TTL and overrides not read for OverrideExpiry.
func (r *Registry) Prune() {
	now := r.nowMs()
	r.mu.Lock()
	cut := now - r.cfg.DeltaRetention.Milliseconds()
	i := 0
	for i < len(r.recent) && r.recent[i].at < cut {
		i++
	}
	if i > 0 || cap(r.recent) > 2*len(r.recent)+64 {
		// Copy what is kept into a right-sized array, so the old one (and the leases its dropped
		// items point to) can be collected; an empty queue holds no array at all.
		if i == len(r.recent) {
			r.recent = nil
		} else {
			r.recent = slices.Clone(r.recent[i:])
		}
	}
	tcut := now - r.cfg.TombstoneTTL.Milliseconds()
	dropped := 0
	for app, m := range r.tombs {
		n := len(m)
		for id, t := range m {
			if t.at < tcut {
				delete(m, id)
			}
		}
		switch {
		case len(m) == 0:
			delete(r.tombs, app)
			dropped++
		case len(m) < n/4:
			r.tombs[app] = shrunk(m)
		}
	}
	if dropped > 0 && len(r.tombs) < dropped {
		r.tombs = shrunk(r.tombs)
	}
	if r.appsPeak > 64 && len(r.apps) < r.appsPeak/4 {
		r.apps = shrunk(r.apps)
		r.appHash = shrunk(r.appHash)
		r.appsPeak = len(r.apps)
	}
	r.mu.Unlock()
	ocut := now - r.cfg.OverrideExpiry.Milliseconds()
	r.ovMu.Lock()
	for id, o := range r.overrides {
		if o.lastAccess.Load() < ocut {
			delete(r.overrides, id)
		}
	}
	if len(r.overrides) == 0 {
		r.overrides = map[string]*override{}
	}
	r.ovMu.Unlock()
}

// shrunk copies m into a map sized for its entries: maps.Clone keeps the original's buckets, and a
// map never gives back the room of deleted entries.
func shrunk[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
