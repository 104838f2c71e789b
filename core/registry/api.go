package registry

import (
	"context"
	"time"
)

// Origin says where a write came from. It decides whether the write is replicated: a client's write
// is handed to every peer, a peer's write is applied and never sent on.
type Origin uint8

const (
	// FromClient marks a write sent by a client (or made by this node on a client's behalf).
	FromClient Origin = iota
	// FromPeer marks a write replicated from another node, or copied at startup sync.
	FromPeer
)

// IsReplication reports whether the write came from a peer.
func (o Origin) IsReplication() bool { return o == FromPeer }

func (o Origin) String() string {
	if o == FromPeer {
		return "peer"
	}
	return "client"
}

// Action names a replicated write, spelled as in Eureka's batch wire format.
type Action string

// The five actions Eureka replicates.
const (
	ActionRegister             Action = "Register"
	ActionHeartbeat            Action = "Heartbeat"
	ActionCancel               Action = "Cancel"
	ActionStatusUpdate         Action = "StatusUpdate"
	ActionDeleteStatusOverride Action = "DeleteStatusOverride"
)

// Write describes one write the registry accepted, after it was applied locally. Listeners (the
// replication pipeline) receive it together with the request's context.
type Write struct {
	Action Action
	App    string // upper case
	ID     string
	// Instance is a private copy of the instance as the write left it (for Register: the instance as
	// received, which is what Eureka replicates). Nil for Cancel.
	Instance *Instance
	// LastDirtyTimestamp, Status and OverriddenStatus are the values Eureka's sender puts into the
	// batch item for this action (see the reference, 2.4).
	LastDirtyTimestamp int64
	Status             Status
	OverriddenStatus   Status
	// StatusVersion is the version of a status update or override removal (Instance.StatusVersion).
	StatusVersion int64
	Origin        Origin
}

// Listener is told of every accepted write. It must not block: it runs on the request's goroutine.
type Listener func(ctx context.Context, w Write)

// Change tells a response cache what to invalidate: the app and the VIP strings of the instance.
type Change struct {
	App              string
	VIPAddress       string
	SecureVIPAddress string
}

// HeartbeatRequest carries a heartbeat's query parameters.
type HeartbeatRequest struct {
	// LastDirtyTimestamp is the client's timestamp; HasLastDirty is false when the parameter was absent.
	LastDirtyTimestamp int64
	HasLastDirty       bool
	// OverriddenStatus is the `overriddenstatus` parameter (honoured only on replicated heartbeats).
	OverriddenStatus Status
	Origin           Origin
}

// HeartbeatResult is the outcome of a heartbeat as Eureka answers it: 200, 404 (re-register) or 409
// (replicated heartbeat older than the stored copy; Instance is the stored copy to send back).
type HeartbeatResult struct {
	Code     int
	Instance *Instance
}

// Clock gives the time. Tests use a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Stats is the registry's state for status pages and metrics.
type Stats struct {
	Apps                    int
	Instances               int
	ExpectedClientsRenewing int
	RenewsThresholdPerMin   int
	RenewsLastMin           int64
	SelfPreservationEnabled bool
	// SelfPreservationActive is true while lease expiry is disabled by self-preservation.
	SelfPreservationActive bool
	// ProtectedSince is when self-preservation last became active (zero when inactive).
	ProtectedSince      time.Time
	ReplicationsLastMin int64
	// ReplicatedWrites counts writes received from peers (replicated), since start.
	ReplicatedWrites int64
	// ClientWrites counts writes received from clients, since start.
	ClientWrites int64
	Evicted      int64
}

// InstanceDigest is the version of one instance (or of a recent cancel, when Deleted) that
// anti-entropy compares between nodes.
type InstanceDigest struct {
	App                string
	ID                 string
	LastDirtyTimestamp int64
	Status             Status
	OverriddenStatus   Status
	// Hash is the ContentHash of the live copy (zero for a tombstone).
	Hash uint64
	// StatusVersion is the live copy's Instance.StatusVersion.
	StatusVersion int64
	// Deleted marks a tombstone: the instance was cancelled (not evicted) at DeletedAt (this node's
	// clock, epoch ms). Tombstones are kept for Config.TombstoneTTL.
	Deleted   bool
	DeletedAt int64
}
