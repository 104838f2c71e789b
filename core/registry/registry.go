package registry

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config holds the registry's tunables (Eureka's names in brackets). Start from DefaultConfig: zero
// durations and a zero threshold mean Eureka's defaults, but booleans are taken as given.
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

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock (tests use a fake one).
func WithClock(c Clock) Option { return func(r *Registry) { r.clock = c } }

// WithLogger sets the logger.
func WithLogger(l hclog.Logger) Option { return func(r *Registry) { r.logger = l } }
