package sdk

import (
	"context"
	"errors"
	"fmt"
)

// ReceiveMode says how an action handler takes part in applying an action on the receiving node.
type ReceiveMode int

const (
	// ReceiveNone: the handler is not called on the receiving node for this action.
	ReceiveNone ReceiveMode = iota
	// ReceiveValidate: called before the action is applied, with the items of a batch; it may refuse
	// some of them, which are then answered with the refusal's status and not applied.
	ReceiveValidate
	// ReceiveApply: the handler applies the action (one apply handler per action). The five Eureka
	// actions are applied by the built-in `eureka` handler unless another handler claims them.
	ReceiveApply
	// ReceiveObserve: called after the action was applied, with the items and their results (an audit
	// trail, metrics, a cache to warm). Its answers are ignored.
	ReceiveObserve
)

func (m ReceiveMode) String() string {
	switch m {
	case ReceiveNone:
		return "none"
	case ReceiveValidate:
		return "validate"
	case ReceiveApply:
		return "apply"
	case ReceiveObserve:
		return "observe"
	}
	return fmt.Sprintf("ReceiveMode(%d)", int(m))
}

// ActionSpec is one action a handler takes part in.
type ActionSpec struct {
	Action Action
	// Accept asks for the handler's Accept on the node where a client wrote the action, before it is
	// applied and replicated (herald calls it for registrations).
	Accept bool
	// Receive is the handler's part on the receiving node.
	Receive ReceiveMode
}

// ReceiveRequest is a run of consecutive items of one action from one inbound batch.
type ReceiveRequest struct {
	Mode   ReceiveMode
	Action Action
	Items  []Item
	// Results holds the apply results, one per item, for ReceiveObserve; nil otherwise.
	Results []ItemResult
}

// ActionHandler validates, enriches, applies or observes replicated actions, and may declare new
// actions that replicate like the five built-in ones (a custom action is written with
// Host.Replicate and applied on every peer by the handler that declares it in ReceiveApply mode).
//
// Embed UnimplementedActionHandler to implement only what the handler needs.
type ActionHandler interface {
	// Actions lists the actions the handler takes part in and how. It is read once, at start.
	Actions() []ActionSpec
	// Accept runs on the accepting node for a client's write, before it is applied and replicated.
	// It returns the item, possibly changed (a registration's Instance enriched), or an error:
	// Refuse(...) answers the client with that status and message, any other error with 500.
	Accept(ctx context.Context, item Item) (Item, error)
	// Receive handles a run of items of one action on the receiving node. For ReceiveValidate it
	// returns one result per item, StatusCode 0 to let the item through; for ReceiveApply one result
	// per item as Eureka answers (200, 404, 409 with Entity, 500); for ReceiveObserve nil. An error
	// fails the whole inbound batch, which the sender retries.
	Receive(ctx context.Context, req ReceiveRequest) ([]ItemResult, error)
}

// UnimplementedActionHandler accepts every item unchanged and handles nothing on receipt. Embed it
// in handlers that implement only some of the methods.
type UnimplementedActionHandler struct{}

// Accept lets the item through unchanged.
func (UnimplementedActionHandler) Accept(_ context.Context, item Item) (Item, error) {
	return item, nil
}

// Receive lets every item through (validate) and observes nothing.
func (UnimplementedActionHandler) Receive(_ context.Context, req ReceiveRequest) ([]ItemResult, error) {
	if req.Mode == ReceiveApply {
		return nil, errors.New("action handler: Receive (apply) is not implemented")
	}
	if req.Mode == ReceiveValidate {
		return make([]ItemResult, len(req.Items)), nil
	}
	return nil, nil
}

// Refusal is an Accept or validation refusal with the status the client (or the sending peer) gets.
type Refusal struct {
	Code    int
	Message string
}

func (r *Refusal) Error() string { return fmt.Sprintf("refused (%d): %s", r.Code, r.Message) }

// StatusCode returns the HTTP status of the refusal.
func (r *Refusal) StatusCode() int { return r.Code }

// Refuse returns a refusal with an HTTP status in 400..499 (400 otherwise) and a message for the
// client, e.g. Refuse(422, "metadata.owner is required").
func Refuse(code int, format string, args ...any) error {
	if code < 400 || code > 499 {
		code = 400
	}
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Host is the node a plugin runs for, as the plugin sees it. A plugin gets it in
// ConfigureRequest.Host; out of process, its calls travel back to herald over go-plugin's broker.
type Host interface {
	// Instance returns the stored instance as bare Eureka InstanceInfo JSON, or found = false.
	Instance(ctx context.Context, app, id string) (instance []byte, found bool, err error)
	// Apply applies items of the five built-in actions to the local registry as replicated writes
	// (never sent on) and returns Eureka's per-item answers. It skips action handlers.
	Apply(ctx context.Context, items []Item) ([]ItemResult, error)
	// Replicate hands items to every peer's replication pipeline, as a client's write on this node
	// would be: they are batched, retried, coalesced by (Action, App, ID) and traced. Use it for
	// custom actions; it does not apply them locally.
	Replicate(ctx context.Context, items []Item) error
	// Receive hands an inbound batch that a transport's receiving side got from a peer to the node:
	// it goes through validation, apply and observe handlers, and the answers, one per item, are
	// what the transport returns to the sender.
	Receive(ctx context.Context, batch Batch) ([]ItemResult, error)
}

// ErrNoHost is returned by the host a plugin gets when it runs without one (in some tests).
var ErrNoHost = errors.New("herald plugin: no host service")
