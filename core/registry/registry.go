package registry

// This file fixes the Registry's public surface, which the Eureka API, the replication pipeline and
// the cluster code are written against. The bodies are filled in by the registry implementation.

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config holds the registry's tunables (Eureka's names in brackets). Zero values mean Eureka's
// defaults; see DefaultConfig.
type Config struct {
	EnableSelfPreservation         bool          // [enableSelfPreservation] true
	RenewalPercentThreshold        float64       // [renewalPercentThreshold] 0.85
	ExpectedClientRenewalInterval  time.Duration // [expectedClientRenewalIntervalSeconds] 30s
	RenewalThresholdUpdateInterval time.Duration // [renewalThresholdUpdateIntervalMs] 15m
	EvictionInterval               time.Duration // [evictionIntervalTimerInMs] 60s
	// MaxProtectionTime bounds self-preservation: leases unrenewed for longer than this past their
	// expiry are evicted even while self-preservation is active. 0 = unbounded (Eureka).
	MaxProtectionTime        time.Duration
	DeltaRetention           time.Duration // [retentionTimeInMSInDeltaQueue] 3m
	DeltaRetentionInterval   time.Duration // [deltaRetentionTimerIntervalInMs] 30s
	DisableDelta             bool          // [disableDelta] false
	SyncWhenTimestampDiffers bool          // [syncWhenTimestampDiffers] true
	OverrideExpiry           time.Duration // override map entry expiry after last access, 1h
	// FixLeaseDurationBug makes a renewed lease expire `duration` after the last renew, instead of
	// Eureka's 2x duration, and reports lastRenewalTimestamp as the renew time. Default false.
	FixLeaseDurationBug bool
	// SelfInstanceID is this node's own instance id (isCoordinatingDiscoveryServer), if it registers.
	SelfInstanceID string
	// TombstoneTTL is how long cancels are remembered for anti-entropy (default 5m).
	TombstoneTTL time.Duration
}

// ErrInvalid is returned by Register for an instance the registry cannot store.
var ErrInvalid = errors.New("invalid instance")

// Registry is the in-memory registry of one node. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	clock  Clock
	logger hclog.Logger
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock (tests use a fake one).
func WithClock(c Clock) Option { return func(r *Registry) { r.clock = c } }

// WithLogger sets the logger.
func WithLogger(l hclog.Logger) Option { return func(r *Registry) { r.logger = l } }

// DefaultConfig returns Eureka's defaults.
func DefaultConfig() Config { panic("unimplemented") }

// New returns an empty registry.
func New(cfg Config, opts ...Option) *Registry { panic("unimplemented") }

// Start runs the registry's timers (eviction, threshold recount, delta retention) until ctx ends.
func (r *Registry) Start(ctx context.Context) { panic("unimplemented") }

// OpenForTraffic sets the expected number of renewing clients after startup sync (count instances
// copied) and starts counting renewals, as Eureka's openForTraffic.
func (r *Registry) OpenForTraffic(count int) { panic("unimplemented") }

// Subscribe adds a listener told of every accepted write.
func (r *Registry) Subscribe(l Listener) { panic("unimplemented") }

// OnChange adds a function told of every change that must invalidate response caches.
func (r *Registry) OnChange(f func(Change)) { panic("unimplemented") }

// Register stores inst (the registry keeps its own copy) with a new lease, applying Eureka's
// lastDirtyTimestamp conflict rule and the status rules. Validation of client input is the API's job.
func (r *Registry) Register(ctx context.Context, inst *Instance, origin Origin) error {
	panic("unimplemented")
}

// Renew renews a lease (Eureka's renew: false when there is no lease or the rules give UNKNOWN).
func (r *Registry) Renew(ctx context.Context, app, id string, origin Origin) bool {
	panic("unimplemented")
}

// Heartbeat runs Eureka's whole heartbeat algorithm: renew, then the lastDirtyTimestamp comparison.
func (r *Registry) Heartbeat(ctx context.Context, app, id string, hb HeartbeatRequest) HeartbeatResult {
	panic("unimplemented")
}

// Cancel removes an instance. False when it was not registered.
func (r *Registry) Cancel(ctx context.Context, app, id string, origin Origin) bool {
	panic("unimplemented")
}

// UpdateStatus sets a status override. False when the instance is not registered.
func (r *Registry) UpdateStatus(ctx context.Context, app, id string, s Status, lastDirty int64, origin Origin) bool {
	panic("unimplemented")
}

// DeleteStatusOverride removes a status override and sets the status to s. False when the instance
// is not registered.
func (r *Registry) DeleteStatusOverride(ctx context.Context, app, id string, s Status, lastDirty int64, origin Origin) bool {
	panic("unimplemented")
}

// UpdateMetadata merges kv into the instance's metadata and re-registers it (Eureka's behaviour: the
// change replicates as a Register). False when the instance is not registered.
func (r *Registry) UpdateMetadata(ctx context.Context, app, id string, kv map[string]string, origin Origin) bool {
	panic("unimplemented")
}

// Instance returns a decorated copy of one instance; false if unknown, or expired while expiry is on.
func (r *Registry) Instance(app, id string) (*Instance, bool) { panic("unimplemented") }

// InstanceByID looks an instance up by id across all apps.
func (r *Registry) InstanceByID(id string) (*Instance, bool) { panic("unimplemented") }

// Application returns a decorated copy of one app, or nil when it has no instances.
func (r *Registry) Application(app string) *Application { panic("unimplemented") }

// Applications returns the full registry (versions__delta "1", apps__hashcode over all instances).
func (r *Registry) Applications() *Applications { panic("unimplemented") }

// Delta returns the recently changed instances with the hash code of the whole registry.
func (r *Registry) Delta() *Applications { panic("unimplemented") }

// VIP returns the instances whose vipAddress (secure: secureVipAddress) lists vip exactly.
func (r *Registry) VIP(vip string, secure bool) *Applications { panic("unimplemented") }

// Overrides returns a copy of the status override map (instance id -> status).
func (r *Registry) Overrides() map[string]Status { panic("unimplemented") }

// Stats returns counters and self-preservation state.
func (r *Registry) Stats() Stats { panic("unimplemented") }

// Digest returns an order-independent hash of every live instance's digest and the same per app.
// Both are maintained incrementally on each write, so the root costs O(1) and the per-app map O(apps).
func (r *Registry) Digest() (root uint64, apps map[string]uint64) { panic("unimplemented") }

// AppDigest returns the digests of one app's live instances and its tombstones.
func (r *Registry) AppDigest(app string) []InstanceDigest { panic("unimplemented") }
