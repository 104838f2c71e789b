// Package replication is the sending side of peer replication: for every peer, a pipeline with
// Eureka's three queues — an acceptor queue that only takes writes, a pending stage that keeps the
// newest task per id in arrival order, and a batch work queue from which workers take whole batches
// and send them through a transport.
//
// The pipeline is pull-based: a batch is cut only when a worker is free, so under load tasks wait
// in the pending stage, where a newer task for the same instance replaces the older one, and
// batches grow by themselves. A flush policy decides when a batch may be cut; it is consulted per
// decision, never per task.
package replication

import (
	"encoding/base64"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Task is one write to replicate to one or more peers. It is immutable once created, so one Task is
// shared by every peer's pipeline and by retries.
type Task struct {
	// ID identifies what the task replaces: a newer task with the same ID supersedes it.
	ID       string
	Action   registry.Action
	App      string
	Instance string // instance id
	// Snapshot is the instance as the write left it (nil for Cancel). The registry stores instances
	// immutably, so this is a shared pointer, not a copy.
	Snapshot         *registry.Instance
	LastDirty        int64
	Status           registry.Status
	OverriddenStatus registry.Status
	// StatusVersion orders a status update or override removal (registry.Instance.StatusVersion).
	StatusVersion int64
	// Accepted and Expires are epoch milliseconds.
	Accepted int64
	Expires  int64
	// Span is the span context of the write's request; it becomes the item's traceparent.
	Span trace.SpanContext
	// born is when the task was made (monotonic), for the propagation histogram; zero for tasks
	// built by hand.
	born time.Time
	// Payload is a custom action's data.
	Payload []byte

	// instance is a Register item's instance JSON and wire the task's encoded size in a batch. Both
	// are set once by prepare, before the task is shared, so every peer and every retry sends the
	// same bytes instead of encoding the instance again.
	instance []byte
	wire     int64
}

// taskPrefix is Eureka's task id prefix per action.
func taskPrefix(a registry.Action) string {
	switch a {
	case registry.ActionRegister:
		return "register#"
	case registry.ActionHeartbeat:
		return "heartbeat#"
	case registry.ActionCancel:
		return "cancel#"
	case registry.ActionStatusUpdate:
		return "statusUpdate#"
	case registry.ActionDeleteStatusOverride:
		return "deleteStatusOverride#"
	}
	return string(a) + "#"
}

// TaskID returns the task id of an action on an instance, e.g. "heartbeat#ORDERS/i-1".
func TaskID(a registry.Action, app, id string) string { return taskPrefix(a) + app + "/" + id }

// NewTask builds a task from an accepted write. Register and heartbeat tasks live for the
// instance's renewal interval (a newer heartbeat will come anyway); others for maxTime.
func NewTask(w registry.Write, span trace.SpanContext, nowMs int64, maxTime time.Duration) *Task {
	t := &Task{
		ID:               TaskID(w.Action, w.App, w.ID),
		Action:           w.Action,
		App:              w.App,
		Instance:         w.ID,
		Snapshot:         w.Instance,
		LastDirty:        w.LastDirtyTimestamp,
		Status:           w.Status,
		OverriddenStatus: w.OverriddenStatus,
		StatusVersion:    w.StatusVersion,
		Accepted:         nowMs,
		Span:             span,
		born:             time.Now(),
	}
	life := maxTime
	if (w.Action == registry.ActionRegister || w.Action == registry.ActionHeartbeat) && w.Instance != nil {
		life = registry.RenewalInterval(w.Instance)
	}
	t.Expires = nowMs + life.Milliseconds()
	return t
}

// NewItemTask builds a task from an item an action handler wrote (a custom action); it lives for
// maxTime.
func NewItemTask(it sdk.Item, span trace.SpanContext, nowMs int64, maxTime time.Duration) *Task {
	a := registry.Action(it.Action)
	return &Task{
		ID:               TaskID(a, it.App, it.ID),
		Action:           a,
		App:              it.App,
		Instance:         it.ID,
		LastDirty:        it.LastDirtyTimestamp,
		Status:           registry.Status(it.Status),
		OverriddenStatus: registry.Status(it.OverriddenStatus),
		StatusVersion:    it.StatusVersion,
		Payload:          it.Payload,
		Accepted:         nowMs,
		Expires:          nowMs + maxTime.Milliseconds(),
		Span:             span,
		born:             time.Now(),
	}
}

func (t *Task) expired(nowMs int64) bool { return nowMs >= t.Expires }

// key names the instance the task is about: its tasks must reach a peer in order. The task id
// ends with it ("register#APP/id"), so it costs no allocation.
func (t *Task) key() string {
	if i := strings.IndexByte(t.ID, '#'); i >= 0 {
		return t.ID[i+1:]
	}
	return t.App + "/" + t.Instance
}

// traceParentSize is what a traceparent adds to an item: ,"traceparent":"00-<32>-<16>-01".
const traceParentSize = int64(len(`,"traceparent":""`) + 55)

// batchEnvelope is what a batch adds around its items on the wire: {"replicationList":[ and ]}.
const batchEnvelope = int64(len(`{"replicationList":[`) + len(`]}`))

// prepare encodes the task once: the instance of a Register item, and the task's size on the wire.
// It must run before the task is handed to a pipeline; the Replicator does it.
func (t *Task) prepare(encode func(*registry.Instance) []byte) *Task {
	if t.Action == registry.ActionRegister && t.Snapshot != nil && encode != nil && t.instance == nil {
		t.instance = encode(t.Snapshot)
	}
	it := t.item(nil)
	t.wire = itemSize(&it)
	return t
}

// size is the task's encoded size in a batch (its item and the comma before it), as Eureka's
// ReplicationList carries it. Pending and batch byte limits count it.
func (t *Task) size() int64 {
	if t.wire > 0 {
		return t.wire
	}
	it := t.item(nil) // a task built without prepare (tests): its size without an instance
	return itemSize(&it)
}

// itemSize returns an upper bound of the bytes an item takes in a ReplicationList (the transport
// format of the http transport, which Eureka's batch endpoint limits), plus one for the comma that
// separates it from the previous one. A traceparent is counted when the task is traced.
func itemSize(it *sdk.Item) int64 {
	n := int64(len(`{"appName":,"id":,"action":}`)) + 1
	n += jsonStringSize(it.App) + jsonStringSize(it.ID) + jsonStringSize(string(it.Action))
	if it.LastDirtyTimestamp != 0 {
		n += int64(len(`,"lastDirtyTimestamp":`)) + 20
	}
	if it.OverriddenStatus != "" {
		n += int64(len(`,"overriddenStatus":`)) + jsonStringSize(it.OverriddenStatus)
	}
	if it.Status != "" {
		n += int64(len(`,"status":`)) + jsonStringSize(it.Status)
	}
	if len(it.Instance) > 0 {
		n += int64(len(`,"instanceInfo":`) + len(it.Instance))
	}
	if it.TraceParent != "" {
		n += int64(len(`,"traceparent":""`) + len(it.TraceParent))
	}
	if it.StatusVersion != 0 {
		n += int64(len(`,"statusVersion":`)) + 20
	}
	if len(it.Payload) > 0 {
		n += int64(len(`,"payload":""`)) + int64(base64.StdEncoding.EncodedLen(len(it.Payload)))
	}
	return n
}

// jsonStringSize is an upper bound of s as a JSON string: quotes, and six bytes (\u00XX) for every
// byte that may be escaped.
func jsonStringSize(s string) int64 {
	n := int64(2 + len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			n += 5
		}
	}
	return n
}

// item converts the task to its wire form. A prepared task carries its encoded instance; for one
// that is not, encode (when not nil) turns the instance into bare Eureka JSON.
func (t *Task) item(encode func(*registry.Instance) []byte) sdk.Item {
	it := sdk.Item{
		Action:             sdk.Action(t.Action),
		App:                t.App,
		ID:                 t.Instance,
		LastDirtyTimestamp: t.LastDirty,
		Status:             string(t.Status),
		OverriddenStatus:   string(t.OverriddenStatus),
		Payload:            t.Payload,
	}
	switch t.Action {
	case registry.ActionRegister:
		it.Instance = t.instance
		if it.Instance == nil && t.Snapshot != nil && encode != nil {
			it.Instance = encode(t.Snapshot) // a task built without prepare
		}
		it.OverriddenStatus = "" // Eureka's sender leaves it out of a Register item
		// The sender's status version: the receiver installs the override in the instance only
		// if no later status change reached it (registry.Registry.Register).
		it.StatusVersion = t.StatusVersion
	case registry.ActionCancel:
		it.LastDirtyTimestamp, it.Status, it.OverriddenStatus = 0, "", ""
	case registry.ActionStatusUpdate, registry.ActionDeleteStatusOverride:
		it.OverriddenStatus = ""
		it.StatusVersion = t.StatusVersion
	}
	if it.OverriddenStatus == string(registry.StatusUnknown) {
		it.OverriddenStatus = ""
	}
	if t.Span.IsValid() {
		it.TraceParent = traceParent(t.Span)
	}
	return it
}

// traceParent formats a W3C traceparent header value.
func traceParent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return "00-" + tid.String() + "-" + sid.String() + "-" + flags
}
