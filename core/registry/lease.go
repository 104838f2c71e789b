package registry

import (
	"sync"
	"time"
)

const (
	defaultLeaseDuration   = 90 * time.Second
	defaultRenewalInterval = 30 * time.Second
)

// lease is one registered instance. inst is immutable once stored: a change stores a new copy, so a
// reader (or a replication task) may keep the pointer without copying. The timestamps are epoch ms.
//
// Locking: fields change either under Registry.mu held exclusively, or under Registry.mu held
// shared plus lease.mu (renew). They are read under either.
type lease struct {
	mu           sync.Mutex
	app          string
	id           string
	inst         *Instance
	hash         uint64 // ContentHash(inst), set by digestAdd
	durationMs   int64
	registration int64
	lastUpdate   int64
	eviction     int64
	serviceUp    int64
}

func leaseDuration(inst *Instance) time.Duration {
	if inst.LeaseInfo.DurationSecs > 0 {
		return time.Duration(inst.LeaseInfo.DurationSecs) * time.Second
	}
	return defaultLeaseDuration
}

// renewalInterval is the client's heartbeat interval: what a replicated register or heartbeat task
// lives for. Without leaseInfo Eureka uses the lease duration.
func renewalInterval(inst *Instance) time.Duration {
	if !inst.HasLeaseInfo {
		return defaultLeaseDuration
	}
	if inst.LeaseInfo.RenewalIntervalSecs > 0 {
		return time.Duration(inst.LeaseInfo.RenewalIntervalSecs) * time.Second
	}
	return defaultRenewalInterval
}

// RenewalInterval returns how long a replicated register or heartbeat of inst stays worth sending
// (Eureka's task expiry for those actions).
func RenewalInterval(inst *Instance) time.Duration { return renewalInterval(inst) }

// isExpired is Eureka's Lease.isExpired: a renewed lease's lastUpdate already includes one duration
// (the "counted twice" bug) unless the fix is on, in which case renew stores the renew time.
func (l *lease) isExpired(nowMs, additionalMs int64) bool {
	return l.eviction > 0 || nowMs > l.lastUpdate+l.durationMs+additionalMs
}

// decorate returns a copy of the stored instance with the lease part rebuilt as Eureka shows it.
func (l *lease) decorate(selfID string) *Instance {
	c := *l.inst
	ri, d := c.LeaseInfo.RenewalIntervalSecs, c.LeaseInfo.DurationSecs
	if ri <= 0 {
		ri = int(defaultRenewalInterval / time.Second)
	}
	if d <= 0 {
		d = int(defaultLeaseDuration / time.Second)
	}
	c.LeaseInfo = LeaseInfo{
		RenewalIntervalSecs:   ri,
		DurationSecs:          d,
		RegistrationTimestamp: l.registration,
		LastRenewalTimestamp:  l.lastUpdate,
		EvictionTimestamp:     l.eviction,
		ServiceUpTimestamp:    l.serviceUp,
	}
	c.HasLeaseInfo = true
	c.IsCoordinatingDiscoveryServer = selfID != "" && l.id == selfID
	return &c
}
