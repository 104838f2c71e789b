package cluster

import (
	"context"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

// Registry is what the cluster needs of the node's registry. *registry.Registry implements it.
type Registry interface {
	// Register stores a copy; with registry.FromPeer it is applied locally and never replicated, and
	// the larger lastDirtyTimestamp wins over an existing copy.
	Register(ctx context.Context, inst *registry.Instance, origin registry.Origin) error
	// Adopt stores a peer's copy exactly (status, override, lastDirtyTimestamp) if it wins over
	// the local copy in the order of registry.Newer; it is never replicated. A new lease expires
	// after remaining (a full lease when remaining <= 0).
	Adopt(ctx context.Context, inst *registry.Instance, remaining time.Duration) (bool, error)
	// Cancel removes an instance and leaves a tombstone.
	Cancel(ctx context.Context, app, id string, origin registry.Origin) bool
	// AdoptTombstone records a peer's tombstone of an instance this node does not hold.
	AdoptTombstone(app, id string, lastDirty int64, status registry.Status, deletedAt int64) bool
	// OpenForTraffic is called once, after the startup sync, with the number of instances copied.
	OpenForTraffic(count int)
	// Instance returns a decorated copy, with the lease's registration time in LeaseInfo.
	Instance(app, id string) (*registry.Instance, bool)
	// Application returns a decorated copy of one app, nil when it has no instances.
	Application(app string) *registry.Application
	// Digest returns the root hash and the per-app hashes of the live instances.
	Digest() (root uint64, apps map[string]uint64)
	// AppDigest returns the digests of one app's live instances and tombstones.
	AppDigest(app string) []registry.InstanceDigest
	// Stats gives the number of live instances sent along with the root hash.
	Stats() registry.Stats
}

var _ Registry = (*registry.Registry)(nil)
