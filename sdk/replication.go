package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Action names a replicated action. The five built-in ones are Eureka's; action-handler plugins may
// declare more.
type Action string

// The built-in actions, spelled as in Eureka's batch wire format.
const (
	ActionRegister             Action = "Register"
	ActionHeartbeat            Action = "Heartbeat"
	ActionCancel               Action = "Cancel"
	ActionStatusUpdate         Action = "StatusUpdate"
	ActionDeleteStatusOverride Action = "DeleteStatusOverride"
)

// Item is one replicated action in a batch, as it travels between nodes.
type Item struct {
	Action             Action
	App                string
	ID                 string
	LastDirtyTimestamp int64
	Status             string
	OverriddenStatus   string
	// Instance is the instance as a bare Eureka InstanceInfo JSON object (no {"instance":…} wrapper),
	// set for Register; nil otherwise. Transports carry it as opaque bytes.
	Instance []byte
	// Payload is free-form data of a custom action.
	Payload []byte
	// TraceParent is the W3C traceparent of the task's span on the sending node ("" when not traced).
	TraceParent string
	// StatusVersion orders the status changes (StatusUpdate, DeleteStatusOverride) of one instance
	// across nodes: the accepting node sets it, and a receiver ignores a change older than the last
	// one it applied. On a Register it is the version of the instance's override state: a
	// receiver that has applied a later status change keeps its own, one that has applied only
	// earlier ones takes the register's (override or none). 0 when absent
	// (items from Eureka servers); transports carry it as it is.
	StatusVersion int64
}

// Batch is what a transport carries to one peer in one send.
type Batch struct {
	// ID identifies the batch on the sending node (for logs and traces).
	ID    string
	Items []Item
}

// ItemResult is a peer's answer for one item, in Eureka's terms: StatusCode 200, 404 (for a
// heartbeat: re-register), 409 (Entity holds the peer's newer copy as bare InstanceInfo JSON), 500.
type ItemResult struct {
	StatusCode int
	Entity     []byte
}

// FailureClass says what a failed send means for the batch.
type FailureClass int

const (
	// Transient is a network failure (connection refused, reset): retry after the retry delay.
	Transient FailureClass = iota + 1
	// Congestion is an overloaded peer (503, read timeout): pause and retry after the congestion delay.
	Congestion
	// Permanent is a failure that a retry cannot fix: the batch is dropped and counted.
	Permanent
)

func (c FailureClass) String() string {
	switch c {
	case Transient:
		return "transient"
	case Congestion:
		return "congestion"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("FailureClass(%d)", int(c))
}

// SendError is a batch-level failure with its class.
type SendError struct {
	Class FailureClass
	Err   error
}

func (e *SendError) Error() string {
	msg, prefix := e.Err.Error(), e.Class.String()+": "
	// A failure that already names its class (it crossed the plugin boundary as text, or wraps a
	// failure of the same class: Fail(Permanent, fmt.Errorf("peer p: %w", Fail(Permanent, err))))
	// says it once.
	if strings.HasPrefix(msg, prefix) || strings.Contains(msg, ": "+prefix) {
		return msg
	}
	return prefix + msg
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// ErrTooLarge marks a batch a peer refused for its size (HTTP 413 Request Entity Too Large). A
// transport wraps it in a Permanent failure (Fail(Permanent, fmt.Errorf("...: %w", ErrTooLarge))).
// The host splits any batch refused with a Permanent failure and drops only a task refused alone;
// the marker says why in its logs.
var ErrTooLarge = errors.New("batch too large for the peer")

// Fail wraps err as a batch failure of the given class.
func Fail(class FailureClass, err error) error { return &SendError{Class: class, Err: err} }

// ClassOf returns the failure class of err: the class of a *SendError in its chain; Congestion for
// a deadline (Eureka treats a read timeout as congestion); Transient for cancellation (the batch is
// retried); Permanent otherwise.
func ClassOf(err error) FailureClass {
	var se *SendError
	if errors.As(err, &se) {
		return se.Class
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Congestion
	}
	if errors.Is(err, context.Canceled) {
		return Transient
	}
	return Permanent
}

// Peer identifies the node a transport sends to.
type Peer struct {
	// Name is the peer's name (its URL unless configured otherwise).
	Name string
	// URL is the peer's Eureka base URL, e.g. http://127.0.0.1:8762/eureka/.
	URL string
	// Address is host:port of the peer's listener for a transport that has one of its own (the
	// grpc transport, a plugin's receiving side), from the operator's
	// `replication { peer "URL" { transport_address = "host:port" } }` block; "" when the block does
	// not set it. A transport with a listener uses Address when it is set and otherwise derives the
	// address from URL by a convention it documents (herald's grpc transport and the examples: the
	// URL's host, its port plus the transport's port_offset), so that a cluster whose nodes all
	// follow the convention needs no setting, and one behind NAT, port mappings or with a listener
	// elsewhere names it per peer. A transport that sends to the peer's Eureka URL ignores it.
	Address string
}

// Transport carries batches to peers.
//
// Send delivers one batch to one peer and returns one result per item, in order; or an error whose
// class (see Fail) says whether the batch is retried. A transport must honour ctx.
type Transport interface {
	Send(ctx context.Context, peer Peer, batch Batch) ([]ItemResult, error)
}

// PendingState is what a flush policy sees of one peer's pending stage.
type PendingState struct {
	// Count and Bytes of the tasks pending (not yet cut into a batch).
	Count int
	Bytes int64
	// OldestAge is how long the oldest pending task has waited.
	OldestAge time.Duration
	// IdleWorkers is the number of workers waiting for a batch.
	IdleWorkers int
	// InFlight is the number of batches being sent.
	InFlight int
	// RecentLatency is a moving average of this peer's send latency; RecentErrors the failed sends in
	// the last RecentWindow.
	RecentLatency time.Duration
	RecentErrors  int
	RecentSends   int
	RecentWindow  time.Duration
	// MaxBatchSize and MaxBufferSize are the host's limits.
	MaxBatchSize  int
	MaxBufferSize int
}

// FlushDecision is a flush policy's answer. The host cuts a batch of up to MaxBatch tasks as soon as
// a worker is free and either CutNow is set, Count ≥ MinCount, or OldestAge ≥ MaxAge. It asks the
// policy again after RecheckAfter (0: only after the next cut); herald keeps the decision of a policy
// that answers slowly (a plugin process) for at least 100 times its answer's latency. Between asks
// the host enforces the thresholds itself, so a policy is never called per task.
type FlushDecision struct {
	CutNow       bool
	MaxBatch     int
	MinCount     int
	MaxAge       time.Duration
	RecheckAfter time.Duration
}

// FlushPolicy decides when a batch is cut.
type FlushPolicy interface {
	Decide(ctx context.Context, s PendingState) (FlushDecision, error)
}
