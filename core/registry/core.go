package registry

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Registry is the in-memory registry of one node. It is safe for concurrent use.
//
// Writes (register, cancel, status changes) take mu exclusively; renewals and reads take it shared.
// Listeners and change callbacks run after the lock is released, on the caller's goroutine.
type Registry struct {
	cfg    Config
	clock  Clock
	logger hclog.Logger

	mu   sync.RWMutex
	apps map[string]map[string]*lease // upper-case app -> id -> lease
	// digest of live instances, maintained on every change (see digest.go).
	root    uint64
	appHash map[string]uint64
	count   int
	tombs   map[string]map[string]tombstone
	recent  []recentItem // recently changed, oldest first
	// appsPeak is the largest len(apps) since the maps were last rebuilt: Go maps keep their
	// buckets when entries are deleted, so Prune rebuilds them once most apps are gone.
	appsPeak int
	expected int // expected clients sending renews
	startMs  int64

	ovMu      sync.RWMutex
	overrides map[string]*override // instance id -> override

	// shared holds the metadata maps instances share (see intern.go).
	shared sharedMaps

	hookMu    sync.RWMutex
	listeners []Listener
	changes   []func(Change)

	renews       meter
	replications meter
	replicated   atomic.Int64
	clientWrites atomic.Int64
	deltaVersion atomic.Int64
	evicted      atomic.Int64

	evictMu        sync.Mutex
	lastEvictMs    int64
	protectedSince atomic.Int64

	startOnce sync.Once
}

type override struct {
	status     Status
	lastAccess atomic.Int64
}

type recentItem struct {
	lease *lease
	at    int64
}

type tombstone struct {
	lastDirty int64
	status    Status
	at        int64
}

// DefaultConfig returns Eureka's defaults.
func DefaultConfig() Config {
	return Config{
		EnableSelfPreservation:         true,
		RenewalPercentThreshold:        0.85,
		ExpectedClientRenewalInterval:  30 * time.Second,
		RenewalThresholdUpdateInterval: 15 * time.Minute,
		EvictionInterval:               60 * time.Second,
		DeltaRetention:                 3 * time.Minute,
		DeltaRetentionInterval:         30 * time.Second,
		SyncWhenTimestampDiffers:       true,
		OverrideExpiry:                 time.Hour,
		TombstoneTTL:                   5 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RenewalPercentThreshold <= 0 {
		c.RenewalPercentThreshold = d.RenewalPercentThreshold
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.ExpectedClientRenewalInterval, &d.ExpectedClientRenewalInterval},
		{&c.RenewalThresholdUpdateInterval, &d.RenewalThresholdUpdateInterval},
		{&c.EvictionInterval, &d.EvictionInterval},
		{&c.DeltaRetention, &d.DeltaRetention},
		{&c.DeltaRetentionInterval, &d.DeltaRetentionInterval},
		{&c.OverrideExpiry, &d.OverrideExpiry},
		{&c.TombstoneTTL, &d.TombstoneTTL},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}

// New returns an empty registry.
func New(cfg Config, opts ...Option) *Registry {
	r := &Registry{
		cfg:       cfg.withDefaults(),
		clock:     SystemClock{},
		logger:    hclog.NewNullLogger(),
		apps:      map[string]map[string]*lease{},
		appHash:   map[string]uint64{},
		tombs:     map[string]map[string]tombstone{},
		overrides: map[string]*override{},
	}
	for _, o := range opts {
		o(r)
	}
	r.startMs = r.nowMs()
	return r
}

func (r *Registry) nowMs() int64 { return r.clock.Now().UnixMilli() }

// Subscribe adds a listener told of every accepted write.
func (r *Registry) Subscribe(l Listener) {
	r.hookMu.Lock()
	r.listeners = append(r.listeners, l)
	r.hookMu.Unlock()
}

// OnChange adds a function told of every change that must invalidate response caches.
func (r *Registry) OnChange(f func(Change)) {
	r.hookMu.Lock()
	r.changes = append(r.changes, f)
	r.hookMu.Unlock()
}

// notify tells listeners of w and change callbacks of each change. It runs without r.mu held.
func (r *Registry) notify(ctx context.Context, w *Write, changes ...Change) {
	r.hookMu.RLock()
	ls, cs := r.listeners, r.changes
	r.hookMu.RUnlock()
	for _, c := range changes {
		for _, f := range cs {
			f(c)
		}
	}
	if w == nil {
		return
	}
	if w.Origin == FromPeer {
		r.replications.inc(r.nowMs())
		r.replicated.Add(1)
	} else {
		r.clientWrites.Add(1)
	}
	for _, l := range ls {
		l(ctx, *w)
	}
}

func changeOf(inst *Instance) Change {
	return Change{App: inst.App, VIPAddress: inst.VIPAddress, SecureVIPAddress: inst.SecureVIPAddress}
}

// Register stores inst (the registry keeps its own copy) with a new lease, applying Eureka's
// lastDirtyTimestamp conflict rule and the status rules. Eureka's validation of client input is
// the API's job; an instance ValidateInstance refuses is never stored (the error wraps ErrInvalid).
func (r *Registry) Register(ctx context.Context, inst *Instance, origin Origin) error {
	if inst == nil {
		return fmt.Errorf("%w: nil instance", ErrInvalid)
	}
	checked := *inst
	checked.App = strings.ToUpper(checked.App)
	if id := checked.ID(); id == "" || checked.App == "" {
		return fmt.Errorf("%w: app %q, id %q", ErrInvalid, checked.App, id)
	}
	if err := ValidateInstance(&checked); err != nil {
		return err
	}
	// The registry's own copy, sharing repeated strings and maps with other instances.
	incoming := r.shared.compact(&checked)
	id := incoming.ID()
	if incoming.Status == "" {
		incoming.Status = StatusUp
	}
	if incoming.OverriddenStatus == "" {
		incoming.OverriddenStatus = StatusUnknown
	}
	// The status version the sender held (a replicated register); the stored copy takes the
	// registry's own below.
	docVersion := incoming.StatusVersion
	now := r.nowMs()

	r.mu.Lock()
	if origin == FromPeer && r.apps[incoming.App][id] == nil {
		if t, ok := r.tombs[incoming.App][id]; ok && incoming.LastDirtyTimestamp <= t.lastDirty {
			// A peer's copy of the instance this node cancelled, not a newer life of it (a client
			// that registers again sets a new lastDirtyTimestamp): a replicated register that
			// raced the cancel, or the peer's answer to a heartbeat that did. It stays cancelled;
			// anti-entropy cancels the peer's copy by the same rule.
			r.mu.Unlock()
			r.logger.Debug("replicated register of a cancelled instance ignored", "app", incoming.App, "id", id,
				"lastDirty", incoming.LastDirtyTimestamp, "cancelled", t.lastDirty)
			return nil
		}
	}
	m := r.apps[incoming.App]
	if m == nil {
		m = map[string]*lease{}
		r.apps[incoming.App] = m
		r.appsPeak = max(r.appsPeak, len(r.apps))
	}
	existing := m[id]
	registrant := incoming
	var changes []Change
	if existing != nil {
		if existing.inst.LastDirtyTimestamp > incoming.LastDirtyTimestamp {
			r.logger.Debug("existing copy is newer; keeping it", "app", incoming.App, "id", id,
				"existing", existing.inst.LastDirtyTimestamp, "incoming", incoming.LastDirtyTimestamp)
			// Stored instances are immutable, so a copy of the struct is enough.
			kept := *existing.inst
			registrant = &kept
		}
		if old := changeOf(existing.inst); old != changeOf(registrant) {
			changes = append(changes, old)
		}
	} else {
		if r.expected > 0 {
			r.expected++
		}
		if origin == FromPeer && r.logger.IsDebug() {
			r.logger.Debug("peer's register creates the instance", "app", incoming.App, "id", id,
				"lastDirty", incoming.LastDirtyTimestamp)
		}
	}
	l := &lease{
		app:          incoming.App,
		id:           id,
		durationMs:   leaseDuration(registrant).Milliseconds(),
		registration: now,
		lastUpdate:   now,
	}
	if existing != nil {
		l.serviceUp = existing.serviceUp
	}
	// Overrides travel with the instance (sync, replication): Eureka installs one the map lacks and
	// keeps one the copy lacks. A replicated register also carries its sender's status version, the
	// version of the override state it shows (0 when it has none: a copy from an Eureka server, a
	// startup sync or a 409 answer). When the two nodes' versions differ, the later status change
	// decides:
	//   - ours is later: the register's override is not installed (a register delayed by a retry
	//     or a partition must not bring back an override removed after it; nor may a copy without
	//     a version, which cannot say it is newer, undo a versioned removal);
	//   - the sender's is later: its override state holds, absence included (the register that
	//     answers a heartbeat's 404 must not keep an override the sender removed since), and the
	//     copy takes its version, so older status changes still on their way are ignored.
	ov := r.overrideFor(id, now)
	version := int64(0)
	if existing != nil {
		version = existing.inst.StatusVersion
	}
	if origin == FromPeer && registrant == incoming && docVersion != version {
		docOv := registrant.OverriddenStatus
		switch {
		case docVersion < version && ov == "" && docOv != StatusUnknown:
			r.logger.Debug("replicated register's override is older than the instance's last status change; not installed",
				"app", incoming.App, "id", id, "override", docOv, "version", docVersion, "current", version)
			if registrant.Status == docOv && existing != nil {
				registrant.Status = existing.inst.Status // the status came from that override
			}
			registrant.OverriddenStatus = StatusUnknown
		case docVersion > version:
			if docOv == StatusUnknown && ov != "" {
				r.logger.Debug("replicated register comes from a later status change without the override; removed",
					"app", incoming.App, "id", id, "override", ov, "version", docVersion, "current", version)
				r.removeOverride(id)
				ov = ""
			} else if docOv != StatusUnknown && ov != docOv {
				r.setOverride(id, docOv, now)
				ov = docOv
			}
			version = docVersion
		}
	}
	if registrant.OverriddenStatus != StatusUnknown && ov == "" {
		r.setOverride(id, registrant.OverriddenStatus, now)
		ov = registrant.OverriddenStatus
	}
	if ov != "" {
		registrant.OverriddenStatus = ov
	}
	registrant.StatusVersion = version
	registrant.Status = r.resolve(registrant.Status, ov, existing, origin)
	if registrant.Status == StatusUp && l.serviceUp == 0 {
		l.serviceUp = now
	}
	registrant.ActionType = ActionAdded
	registrant.LastUpdatedTimestamp = now
	registrant.HasLeaseInfo = true
	l.inst = registrant
	if existing != nil {
		r.digestRemove(existing)
	}
	m[id] = l
	r.digestAdd(l)
	r.dropTomb(incoming.App, id)
	r.recent = append(r.recent, recentItem{lease: l, at: now})
	r.mu.Unlock()

	// Eureka replicates the object it received (its registry mutated it in place when it won),
	// not the existing copy that beat it.
	sent := incoming
	w := &Write{Action: ActionRegister, App: incoming.App, ID: id, Instance: sent,
		LastDirtyTimestamp: sent.LastDirtyTimestamp, Status: sent.Status, OverriddenStatus: sent.OverriddenStatus,
		Origin: origin}
	if registrant == incoming {
		// The override it carries is this node's, as of this version.
		w.StatusVersion = registrant.StatusVersion
	}
	changes = append(changes, changeOf(registrant))
	r.notify(ctx, w, changes...)
	return nil
}

// Adopt stores a peer's copy of an instance exactly as the peer holds it: status and overridden
// status as they are (the status rules already ran on the peer), the override map set to match,
// and lastDirtyTimestamp kept. It is how anti-entropy repairs a difference: the result hashes like
// the peer's copy, so the next comparison finds nothing, and the write is a peer write (never
// replicated).
//
// The copy is stored only if it wins over the local one in the anti-entropy order (Version.Newer)
// or there is no local one; it reports whether it was.
// Since every node only ever moves an instance up that order, repairs cannot go back and forth.
// A local lease is kept with its timestamps (its heartbeats still count). A new one expires after
// remaining, the time the peer's lease has left, so a copy no client renews expires here when it
// expires on the peer, instead of living a fresh lease on every node that pulls it (Eureka's
// eviction leaves no tombstone, so nodes evicting at different times would otherwise hand a dead
// instance back and forth). remaining may reach two lease durations: Eureka's Lease.renew counts
// the duration twice. remaining <= 0 gives a full lease, as a replicated register does.
func (r *Registry) Adopt(ctx context.Context, inst *Instance, remaining time.Duration) (bool, error) {
	if inst == nil {
		return false, fmt.Errorf("%w: nil instance", ErrInvalid)
	}
	checked := *inst
	checked.App = strings.ToUpper(checked.App)
	if id := checked.ID(); id == "" || checked.App == "" {
		return false, fmt.Errorf("%w: app %q, id %q", ErrInvalid, checked.App, id)
	}
	// A peer's copy is checked like any replicated write: a bad one must not spread.
	if err := ValidateInstance(&checked); err != nil {
		return false, err
	}
	c := r.shared.compact(&checked)
	id := c.ID()
	if c.Status == "" {
		c.Status = StatusUp
	}
	if c.OverriddenStatus == "" {
		c.OverriddenStatus = StatusUnknown
	}
	c.IsCoordinatingDiscoveryServer = false
	c.HasLeaseInfo = true
	now := r.nowMs()

	r.mu.Lock()
	m := r.apps[c.App]
	existing := m[id]
	if existing != nil && !VersionOf(c).Newer(existing.version()) {
		r.mu.Unlock()
		return false, nil
	}
	if c.OverriddenStatus != StatusUnknown {
		r.setOverride(id, c.OverriddenStatus, now)
	} else {
		r.removeOverride(id)
	}
	c.LastUpdatedTimestamp = now
	var changes []Change
	if existing != nil {
		if r.logger.IsDebug() {
			r.logger.Debug("anti-entropy replaces a copy with a peer's newer one", "app", c.App, "id", id,
				"lastDirty", existing.inst.LastDirtyTimestamp, "statusVersion", existing.inst.StatusVersion,
				"status", existing.inst.Status, "overridden", existing.inst.OverriddenStatus,
				"peerLastDirty", c.LastDirtyTimestamp, "peerStatusVersion", c.StatusVersion,
				"peerStatus", c.Status, "peerOverridden", c.OverriddenStatus)
		}
		if old := changeOf(existing.inst); old != changeOf(c) {
			changes = append(changes, old)
		}
		c.ActionType = ActionModified
		existing.mu.Lock()
		existing.durationMs = leaseDuration(c).Milliseconds()
		if c.Status == StatusUp && existing.serviceUp == 0 {
			existing.serviceUp = now
		}
		existing.mu.Unlock()
		r.replaceLocked(existing, c, now)
	} else {
		if m == nil {
			m = map[string]*lease{}
			r.apps[c.App] = m
			r.appsPeak = max(r.appsPeak, len(r.apps))
		}
		if r.expected > 0 {
			r.expected++
		}
		r.logger.Debug("anti-entropy adopts a copy of an instance this node did not hold", "app", c.App, "id", id,
			"lastDirty", c.LastDirtyTimestamp)
		c.ActionType = ActionAdded
		l := &lease{app: c.App, id: id, inst: c, durationMs: leaseDuration(c).Milliseconds(),
			registration: now, lastUpdate: now}
		if left := remaining.Milliseconds(); left > 0 {
			l.lastUpdate = now + min(left, 2*l.durationMs) - l.durationMs
		}
		if c.Status == StatusUp {
			l.serviceUp = now
		}
		m[id] = l
		r.digestAdd(l)
		r.recent = append(r.recent, recentItem{lease: l, at: now})
	}
	r.dropTomb(c.App, id)
	r.mu.Unlock()

	changes = append(changes, changeOf(c))
	r.notify(ctx, &Write{Action: ActionRegister, App: c.App, ID: id, Instance: c,
		LastDirtyTimestamp: c.LastDirtyTimestamp, Status: c.Status, OverriddenStatus: c.OverriddenStatus,
		Origin: FromPeer}, changes...)
	return true, nil
}

// resolve is Eureka's status rule chain: DownOrStarting, OverrideExists, LeaseExists (client writes
// only), default.
func (r *Registry) resolve(s Status, ov Status, existing *lease, origin Origin) Status {
	if s != StatusUp && s != StatusOutOfService {
		return s
	}
	if ov != "" {
		return ov
	}
	if origin == FromClient && existing != nil {
		if hs := existing.inst.Status; hs == StatusUp || hs == StatusOutOfService {
			return hs
		}
	}
	return s
}

// overrideFor returns the override for id ("" when none), counting the read as an access. Every
// heartbeat reads the map, so this takes the lock shared; an expired entry is ignored here and
// removed by Prune.
func (r *Registry) overrideFor(id string, now int64) Status {
	r.ovMu.RLock()
	o := r.overrides[id]
	r.ovMu.RUnlock()
	if o == nil || now-o.lastAccess.Load() > r.cfg.OverrideExpiry.Milliseconds() {
		return ""
	}
	o.lastAccess.Store(now)
	return o.status
}

func (r *Registry) setOverride(id string, s Status, now int64) {
	o := &override{status: s}
	o.lastAccess.Store(now)
	r.ovMu.Lock()
	r.overrides[id] = o
	r.ovMu.Unlock()
}

func (r *Registry) removeOverride(id string) bool {
	r.ovMu.Lock()
	defer r.ovMu.Unlock()
	_, ok := r.overrides[id]
	delete(r.overrides, id)
	return ok
}

// Overrides returns a copy of the status override map (instance id -> status).
func (r *Registry) Overrides() map[string]Status {
	r.ovMu.RLock()
	defer r.ovMu.RUnlock()
	out := make(map[string]Status, len(r.overrides))
	for id, o := range r.overrides {
		out[id] = o.status
	}
	return out
}

func (r *Registry) lookup(app, id string) *lease {
	return r.apps[strings.ToUpper(app)][id]
}

// Renew renews a lease (Eureka's renew: false when there is no lease or the rules give UNKNOWN).
func (r *Registry) Renew(ctx context.Context, app, id string, origin Origin) bool {
	w, ok := r.renew(app, id, origin)
	if ok {
		r.notify(ctx, w)
	}
	return ok
}

func (r *Registry) renew(app, id string, origin Origin) (*Write, bool) {
	now := r.nowMs()
	r.mu.RLock()
	l := r.lookup(app, id)
	if l == nil {
		r.mu.RUnlock()
		return nil, false
	}
	ov := r.overrideFor(id, now)
	l.mu.Lock()
	stored := l.inst
	s := r.resolve(stored.Status, ov, l, origin)
	if s == StatusUnknown {
		l.mu.Unlock()
		r.mu.RUnlock()
		return nil, false
	}
	if s == stored.Status {
		r.touch(l, now)
		l.mu.Unlock()
		r.mu.RUnlock()
		r.renews.inc(now)
		return r.heartbeatWrite(l, stored, ov, origin), true
	}
	l.mu.Unlock()
	r.mu.RUnlock()

	// The rules changed the status: store a new copy, silently (no delta entry, no invalidation,
	// no dirty time), under the exclusive lock since the digest changes.
	r.mu.Lock()
	l = r.lookup(app, id)
	if l == nil {
		r.mu.Unlock()
		return nil, false
	}
	if l.inst.Status != s {
		c := *l.inst
		c.Status = s
		r.digestRemove(l)
		l.inst = &c
		r.digestAdd(l)
	}
	r.touch(l, now)
	stored = l.inst
	r.mu.Unlock()
	r.renews.inc(now)
	return r.heartbeatWrite(l, stored, ov, origin), true
}

func (r *Registry) touch(l *lease, now int64) {
	if r.cfg.FixLeaseDurationBug {
		l.lastUpdate = now
	} else {
		l.lastUpdate = now + l.durationMs
	}
}

func (r *Registry) heartbeatWrite(l *lease, stored *Instance, ov Status, origin Origin) *Write {
	if ov == "" {
		ov = StatusUnknown
	}
	return &Write{Action: ActionHeartbeat, App: l.app, ID: l.id, Instance: stored,
		LastDirtyTimestamp: stored.LastDirtyTimestamp, Status: stored.Status, OverriddenStatus: ov, Origin: origin}
}

// Heartbeat runs Eureka's whole heartbeat algorithm: renew, then the lastDirtyTimestamp comparison.
func (r *Registry) Heartbeat(ctx context.Context, app, id string, hb HeartbeatRequest) HeartbeatResult {
	w, ok := r.renew(app, id, hb.Origin)
	if !ok {
		return HeartbeatResult{Code: 404}
	}
	// The renew happened: Eureka queues the heartbeat to peers before comparing timestamps.
	r.notify(ctx, w)
	if !hb.HasLastDirty || !r.cfg.SyncWhenTimestampDiffers {
		return HeartbeatResult{Code: 200}
	}
	inst, found := r.Instance(app, id)
	if !found {
		return HeartbeatResult{Code: 200}
	}
	switch {
	case hb.LastDirtyTimestamp > inst.LastDirtyTimestamp:
		// Eureka stores the sender's override here. A heartbeat carries no status version, so a
		// copy whose status changes are versioned keeps its override state: the register that
		// answers this 404 brings the sender's, with its version (Register).
		if hb.Origin == FromPeer && hb.OverriddenStatus != "" && hb.OverriddenStatus != StatusUnknown && inst.StatusVersion == 0 {
			r.storeOverride(app, id, hb.OverriddenStatus)
		}
		return HeartbeatResult{Code: 404}
	case hb.LastDirtyTimestamp < inst.LastDirtyTimestamp:
		if hb.Origin == FromPeer {
			return HeartbeatResult{Code: 409, Instance: inst}
		}
	}
	return HeartbeatResult{Code: 200}
}

// storeOverride installs a peer's override from a replicated heartbeat: the override map and the
// instance's overriddenStatus field, without touching its status.
func (r *Registry) storeOverride(app, id string, s Status) {
	now := r.nowMs()
	r.setOverride(id, s, now)
	r.mu.Lock()
	if l := r.lookup(app, id); l != nil && l.inst.OverriddenStatus != s {
		c := *l.inst
		c.OverriddenStatus = s
		r.digestRemove(l)
		l.inst = &c
		r.digestAdd(l)
	}
	r.mu.Unlock()
}

// Cancel removes an instance. False when it was not registered.
func (r *Registry) Cancel(ctx context.Context, app, id string, origin Origin) bool {
	app = strings.ToUpper(app)
	now := r.nowMs()
	r.mu.Lock()
	r.removeOverride(id)
	l := r.lookup(app, id)
	if l == nil {
		r.mu.Unlock()
		return false
	}
	inst := r.removeLocked(l, now)
	r.tombs[app] = ensure(r.tombs[app])
	r.tombs[app][id] = tombstone{lastDirty: inst.LastDirtyTimestamp, status: inst.Status, at: now}
	r.mu.Unlock()
	if r.logger.IsDebug() {
		r.logger.Debug("instance cancelled", "app", app, "id", id, "origin", origin, "lastDirty", inst.LastDirtyTimestamp)
	}
	r.notify(ctx, &Write{Action: ActionCancel, App: app, ID: id, Origin: origin}, changeOf(inst))
	return true
}

// AdoptTombstone records a peer's tombstone for an instance this node neither holds nor knows to
// be cancelled: anti-entropy spreads tombstones, so that a cancel survives the restart of the nodes
// that saw it (tombstones live in memory) and a copy of the instance that a restarting node took
// from a peer, or a late replicated register, is recognised as the cancelled instance wherever it
// lingers. deletedAt is the peer's time of the cancel (epoch ms); a tombstone older than
// TombstoneTTL is not taken. It reports whether the tombstone was recorded.
func (r *Registry) AdoptTombstone(app, id string, lastDirty int64, status Status, deletedAt int64) bool {
	app = strings.ToUpper(app)
	if app == "" || id == "" || deletedAt < r.nowMs()-r.cfg.TombstoneTTL.Milliseconds() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps[app][id] != nil {
		return false
	}
	if _, ok := r.tombs[app][id]; ok {
		return false
	}
	r.tombs[app] = ensure(r.tombs[app])
	r.tombs[app][id] = tombstone{lastDirty: lastDirty, status: status, at: deletedAt}
	return true
}

func ensure(m map[string]tombstone) map[string]tombstone {
	if m == nil {
		return map[string]tombstone{}
	}
	return m
}

// removeLocked is the shared part of cancel and eviction. r.mu must be held exclusively.
func (r *Registry) removeLocked(l *lease, now int64) *Instance {
	delete(r.apps[l.app], l.id)
	r.digestRemove(l)
	if len(r.apps[l.app]) == 0 {
		// An app without instances is forgotten: kept, every name ever registered would stay in
		// memory for good (Eureka keeps them).
		delete(r.apps, l.app)
		delete(r.appHash, l.app)
	}
	if l.eviction == 0 {
		l.eviction = now
	}
	c := *l.inst
	c.ActionType = ActionDeleted
	c.LastUpdatedTimestamp = now
	l.inst = &c
	r.recent = append(r.recent, recentItem{lease: l, at: now})
	if r.expected > 0 {
		r.expected--
	}
	return l.inst
}

// UpdateStatus sets a status override. False when the instance is not registered.
//
// version orders the status changes of one instance across nodes (Instance.StatusVersion): 0 for
// a client's write, or a peer's that carries none (an Eureka server's), which this node versions
// itself; a peer's replicated write carries the version its accepting node gave it, and is ignored
// (reported applied) when the instance already holds a later status change. Without it a status
// override and its removal, accepted by two nodes and replicated through different paths, could
// be applied in either order, and both carry the same lastDirtyTimestamp.
func (r *Registry) UpdateStatus(ctx context.Context, app, id string, s Status, lastDirty, version int64, origin Origin) bool {
	return r.changeStatus(ctx, ActionStatusUpdate, app, id, s, lastDirty, version, origin,
		func(l *lease, lastDirty, version, now int64) []Change {
			if l.inst.Status == s {
				r.setVersionLocked(l, version)
				return nil
			}
			if s == StatusUp && l.serviceUp == 0 {
				l.serviceUp = now
			}
			r.setOverride(id, s, now)
			return []Change{r.setStatusLocked(l, s, s, lastDirty, version, now)}
		})
}

// DeleteStatusOverride removes a status override and sets the status to s. False when the instance
// is not registered. version is as for UpdateStatus.
func (r *Registry) DeleteStatusOverride(ctx context.Context, app, id string, s Status, lastDirty, version int64, origin Origin) bool {
	if s == "" {
		s = StatusUnknown
	}
	return r.changeStatus(ctx, ActionDeleteStatusOverride, app, id, s, lastDirty, version, origin,
		func(l *lease, lastDirty, version, now int64) []Change {
			// Eureka acts only when its override map held one; the instance's own field counts
			// too, so a removal never leaves a copy that shows an override under its version.
			removed := r.removeOverride(id)
			if !removed && l.inst.OverriddenStatus == StatusUnknown {
				r.setVersionLocked(l, version)
				return nil
			}
			if !removed {
				r.logger.Debug("override removal: the instance showed an override the override map lacked",
					"app", l.app, "id", id, "override", l.inst.OverriddenStatus)
			}
			return []Change{r.setStatusLocked(l, s, StatusUnknown, lastDirty, version, now)}
		})
}

// changeStatus is what a status update and an override removal share: the lookup (false when
// the instance is not registered), the lease's touch, the order of status changes (a replicated
// change older than the instance's last one is ignored and reported applied), the
// lastDirtyTimestamp it may give, its version, and the write to the listeners. apply makes the
// change under r.mu with the lastDirtyTimestamp and version to use.
func (r *Registry) changeStatus(ctx context.Context, action Action, app, id string, s Status, lastDirty, version int64,
	origin Origin, apply func(l *lease, lastDirty, version, now int64) []Change) bool {
	now := r.nowMs()
	r.mu.Lock()
	l := r.lookup(app, id)
	if l == nil {
		r.mu.Unlock()
		return false
	}
	r.touch(l, now)
	if r.staleStatusChange(l, version) {
		r.mu.Unlock()
		r.logger.Debug("replicated status change older than the instance's last one; ignored",
			"action", action, "app", l.app, "id", id, "version", version, "current", l.inst.StatusVersion)
		return true
	}
	lastDirty = r.peerLastDirty(l, lastDirty, version, origin)
	version = r.nextStatusVersion(l, version, now)
	changes := apply(l, lastDirty, version, now)
	stored := l.inst
	r.mu.Unlock()
	r.notify(ctx, &Write{Action: action, App: l.app, ID: id, Instance: stored,
		LastDirtyTimestamp: stored.LastDirtyTimestamp, Status: s, OverriddenStatus: stored.OverriddenStatus,
		StatusVersion: version, Origin: origin}, changes...)
	return true
}

// peerLastDirty is the lastDirtyTimestamp a status change may give the instance. Eureka's
// statusUpdate and deleteStatusOverride adopt a larger one, from a client or a peer alike. From a
// herald peer (a versioned change) a larger one means this node lacks the registration that set it
// on the sender (lost with a restart, or still on its way): adopting it would leave a copy with the
// newer timestamp and the older content, which nothing repairs (the client's heartbeats carry the
// same timestamp, and anti-entropy cannot tell the two copies apart by it). So the copy keeps its
// own, and the sender's newer copy reaches it by the next heartbeat (404, then a register) or
// anti-entropy. r.mu must be held.
func (r *Registry) peerLastDirty(l *lease, lastDirty, version int64, origin Origin) int64 {
	if origin == FromPeer && version != 0 && lastDirty > l.inst.LastDirtyTimestamp {
		r.logger.Debug("replicated status change from a newer copy; the instance keeps its lastDirtyTimestamp",
			"app", l.app, "id", l.id, "lastDirty", l.inst.LastDirtyTimestamp, "sender", lastDirty)
		return 0
	}
	return lastDirty
}

// staleStatusChange reports whether a status change with the given version (0: none) is older than
// the last one the instance holds. r.mu must be held.
func (r *Registry) staleStatusChange(l *lease, version int64) bool {
	return version != 0 && version <= l.inst.StatusVersion
}

// nextStatusVersion is the version of a status change being applied: the one it carries, or, for
// one that carries none, this node's clock in milliseconds, kept above the instance's current
// version (a hybrid logical clock per instance: a node that has applied a peer's change never
// versions a later change of its own below it, whatever the clocks say). r.mu must be held.
func (r *Registry) nextStatusVersion(l *lease, version, now int64) int64 {
	if version != 0 {
		return version
	}
	return max(now, l.inst.StatusVersion+1)
}

// setVersionLocked records a status change that left the instance's content as it was. The
// version is not part of the content hash, so the digest does not move. r.mu must be held.
func (r *Registry) setVersionLocked(l *lease, version int64) {
	if version <= l.inst.StatusVersion {
		return
	}
	c := *l.inst
	c.StatusVersion = version
	l.inst = &c
}

// setStatusLocked stores a copy of the instance with a new status and override, adopting the
// caller's lastDirtyTimestamp only when it is newer (Eureka's status endpoints), and records the
// change as MODIFIED for deltas.
func (r *Registry) setStatusLocked(l *lease, status, overridden Status, lastDirty, version, now int64) Change {
	c := *l.inst
	c.Status = status
	c.OverriddenStatus = overridden
	c.StatusVersion = max(c.StatusVersion, version)
	if lastDirty > c.LastDirtyTimestamp {
		c.LastDirtyTimestamp = lastDirty
	}
	c.ActionType = ActionModified
	c.LastUpdatedTimestamp = now
	r.replaceLocked(l, &c, now)
	return changeOf(&c)
}

// replaceLocked stores a changed copy of a lease's instance and records the change for deltas.
func (r *Registry) replaceLocked(l *lease, c *Instance, now int64) {
	r.digestRemove(l)
	l.inst = c
	r.digestAdd(l)
	r.recent = append(r.recent, recentItem{lease: l, at: now})
}

// UpdateMetadata merges kv into the instance's metadata and re-registers it (Eureka's behaviour: the
// change replicates as a Register). False when the instance is not registered.
func (r *Registry) UpdateMetadata(ctx context.Context, app, id string, kv map[string]string, origin Origin) bool {
	r.mu.RLock()
	l := r.lookup(app, id)
	var c *Instance
	if l != nil {
		c = l.inst.Clone()
	}
	r.mu.RUnlock()
	if c == nil {
		return false
	}
	if c.Metadata == nil {
		c.Metadata = make(map[string]string, len(kv))
	}
	for k, v := range kv {
		c.Metadata[k] = v
	}
	return r.Register(ctx, c, origin) == nil
}

// meter counts events per wall-clock minute; last() is the count of the previous complete minute,
// as Eureka's MeasuredRate.
type meter struct {
	mu     sync.Mutex
	minute atomic.Int64
	cur    atomic.Int64
	last   atomic.Int64
}

func (m *meter) roll(nowMs int64) {
	min := nowMs / 60000
	if m.minute.Load() == min {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.minute.Load()
	if prev == min {
		return
	}
	c := m.cur.Swap(0)
	if min == prev+1 {
		m.last.Store(c)
	} else {
		m.last.Store(0)
	}
	m.minute.Store(min)
}

func (m *meter) inc(nowMs int64) {
	m.roll(nowMs)
	m.cur.Add(1)
}

func (m *meter) lastMinute(nowMs int64) int64 {
	m.roll(nowMs)
	return m.last.Load()
}
