// Package actions runs action handlers around the registry's writes: Accept on the node where a
// client wrote, and validate, apply and observe on the node that receives a replicated batch. It
// also implements the host service (sdk.Host) that plugins call back into.
//
// A batch is handled in runs of consecutive items with the same action, so handlers see batches
// grouped by action while the order Eureka relies on (a register before the heartbeat that follows
// it) is kept.
package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Handler is one configured action handler.
type Handler struct {
	Name string
	Impl sdk.ActionHandler
}

// Builtin applies the five Eureka actions to the registry (receive.Receiver).
type Builtin interface {
	Apply(ctx context.Context, items []sdk.Item) []sdk.ItemResult
}

type named struct {
	name string
	impl sdk.ActionHandler
}

// Chain routes actions to their handlers. It is safe for concurrent use and immutable once built.
type Chain struct {
	accept   map[sdk.Action][]named
	validate map[sdk.Action][]named
	apply    map[sdk.Action]named
	observe  map[sdk.Action][]named
	builtin  Builtin
	tracer   trace.Tracer
	log      hclog.Logger
}

// Option configures a Chain.
type Option func(*Chain)

// WithTracer records a span for every handler call made under a sampled span.
func WithTracer(t trace.Tracer) Option { return func(c *Chain) { c.tracer = t } }

// WithLogger sets the logger.
func WithLogger(l hclog.Logger) Option { return func(c *Chain) { c.log = l } }

// IsBuiltin reports whether a is one of Eureka's five actions.
func IsBuiltin(a sdk.Action) bool {
	switch a {
	case sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionCancel, sdk.ActionStatusUpdate, sdk.ActionDeleteStatusOverride:
		return true
	}
	return false
}

// New builds the chain. Two handlers that both apply one action, or a custom action that some
// handler validates or observes but none applies, are configuration errors naming the handlers.
func New(handlers []Handler, builtin Builtin, opts ...Option) (*Chain, error) {
	c := &Chain{accept: map[sdk.Action][]named{}, validate: map[sdk.Action][]named{}, apply: map[sdk.Action]named{},
		observe: map[sdk.Action][]named{}, builtin: builtin, log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(c)
	}
	seen := map[sdk.Action]string{}
	for _, h := range handlers {
		n := named{h.Name, h.Impl}
		for _, a := range h.Impl.Actions() {
			if strings.TrimSpace(string(a.Action)) == "" {
				return nil, fmt.Errorf("action handler %q declares an action with no name", h.Name)
			}
			seen[a.Action] = h.Name
			if a.Accept {
				c.accept[a.Action] = append(c.accept[a.Action], n)
			}
			switch a.Receive {
			case sdk.ReceiveNone:
			case sdk.ReceiveValidate:
				c.validate[a.Action] = append(c.validate[a.Action], n)
			case sdk.ReceiveApply:
				if prev, ok := c.apply[a.Action]; ok {
					return nil, fmt.Errorf("action %q is applied by two handlers, %q and %q: keep one", a.Action, prev.name, h.Name)
				}
				c.apply[a.Action] = n
			case sdk.ReceiveObserve:
				c.observe[a.Action] = append(c.observe[a.Action], n)
			default:
				return nil, fmt.Errorf("action handler %q: action %q has an unknown receive mode %d", h.Name, a.Action, int(a.Receive))
			}
		}
	}
	var orphans []string
	for a, by := range seen {
		if _, ok := c.apply[a]; !ok && !IsBuiltin(a) {
			orphans = append(orphans, fmt.Sprintf("%q (declared by %q)", a, by))
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		return nil, fmt.Errorf("no action handler applies the custom action %s: one handler must declare it with sdk.ReceiveApply",
			strings.Join(orphans, ", "))
	}
	return c, nil
}

// Accepts reports whether some handler asked for Accept calls on action a.
func (c *Chain) Accepts(a sdk.Action) bool { return len(c.accept[a]) > 0 }

// Knows reports whether the chain can apply action a.
func (c *Chain) Knows(a sdk.Action) bool {
	_, ok := c.apply[a]
	return ok || IsBuiltin(a)
}

// Refused is a client write an Accept handler refused; Error is the message the client reads.
type Refused struct {
	Code    int
	Message string
}

func (r *Refused) Error() string { return r.Message }

// StatusCode is the HTTP status the client gets.
func (r *Refused) StatusCode() int { return r.Code }

// AcceptItem runs the Accept handlers of it.Action on a client's write that carries no instance
// (a status change, the removal of an override), before it is applied and replicated. Handlers
// may refuse it; changes they make to the item are not applied.
func (c *Chain) AcceptItem(ctx context.Context, it sdk.Item) error {
	for _, h := range c.accept[it.Action] {
		if _, err := c.callAccept(ctx, h, it); err != nil {
			return c.refusal(h.name, err)
		}
	}
	return nil
}

// refusal maps an Accept handler's error to the client's answer: its refusal, or 503 when the
// handler failed or is down (Eureka clients retry).
func (c *Chain) refusal(handler string, err error) error {
	var r *sdk.Refusal
	if errors.As(err, &r) {
		return &Refused{Code: r.Code, Message: r.Message}
	}
	c.log.Warn("action handler failed on accept", "handler", handler, "error", err)
	return &Refused{Code: http.StatusServiceUnavailable, Message: fmt.Sprintf("action handler %q unavailable: %v", handler, err)}
}

// AcceptRegistration runs the Accept handlers of Register on a client's registration, before it
// is applied and replicated. A handler may change the instance; a refusal becomes the client's
// answer; a handler that fails or is down answers 503, which Eureka clients retry.
func (c *Chain) AcceptRegistration(ctx context.Context, inst *registry.Instance) error {
	hs := c.accept[sdk.ActionRegister]
	if len(hs) == 0 {
		return nil
	}
	it := sdk.Item{Action: sdk.ActionRegister, App: inst.App, ID: inst.ID(), LastDirtyTimestamp: inst.LastDirtyTimestamp,
		Status: string(inst.Status), Instance: codec.AppendInstanceBare(nil, inst)}
	changed := false
	for _, h := range hs {
		before := it.Instance
		var err error
		it, err = c.callAccept(ctx, h, it)
		if err != nil {
			return c.refusal(h.name, err)
		}
		if len(it.Instance) != len(before) || string(it.Instance) != string(before) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	next, err := codec.DecodeInstanceBare(it.Instance)
	if err != nil {
		return &Refused{Code: http.StatusInternalServerError, Message: fmt.Sprintf("an action handler returned an unreadable instance: %v", err)}
	}
	if !strings.EqualFold(next.App, inst.App) || next.ID() != inst.ID() {
		return &Refused{Code: http.StatusInternalServerError, Message: "an action handler changed the instance's app or id"}
	}
	next.App = inst.App
	*inst = *next
	return nil
}

// ApplyBatch implements eureka.BatchReceiver: for every run of items with one action, the
// validators, then the applier (a handler or the built-in apply), then the observers. A handler
// error fails the batch, so the sender sends it again.
func (c *Chain) ApplyBatch(ctx context.Context, items []sdk.Item) ([]sdk.ItemResult, error) {
	for i := range items {
		// Eureka upper-cases every application name; handlers see them that way too.
		items[i].App = strings.ToUpper(items[i].App)
	}
	out := make([]sdk.ItemResult, 0, len(items))
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].Action == items[i].Action {
			j++
		}
		rs, err := c.run(ctx, items[i].Action, items[i:j])
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		i = j
	}
	return out, nil
}

// ValidateInstances runs the receive-side validators of Register on instances that arrive
// without a batch (startup sync, anti-entropy pulls), as if a peer had replicated them, and
// returns for each one why it was refused ("" when it may be applied). An error means the
// validators could not run (a handler is down): apply nothing now.
func (c *Chain) ValidateInstances(ctx context.Context, insts []*registry.Instance) ([]string, error) {
	out := make([]string, len(insts))
	hs := c.validate[sdk.ActionRegister]
	if len(hs) == 0 || len(insts) == 0 {
		return out, nil
	}
	items := make([]sdk.Item, len(insts))
	for i, inst := range insts {
		items[i] = sdk.Item{Action: sdk.ActionRegister, App: strings.ToUpper(inst.App), ID: inst.ID(),
			LastDirtyTimestamp: inst.LastDirtyTimestamp, Status: string(inst.Status),
			OverriddenStatus: string(inst.OverriddenStatus), Instance: codec.AppendInstanceBare(nil, inst)}
	}
	pass := make([]int, len(items))
	for k := range pass {
		pass[k] = k
	}
	for _, h := range hs {
		if len(pass) == 0 {
			break
		}
		rs, err := c.callReceive(ctx, h, sdk.ReceiveRequest{Mode: sdk.ReceiveValidate, Action: sdk.ActionRegister, Items: pick(items, pass)})
		if err != nil {
			return nil, err
		}
		kept := pass[:0]
		for k, idx := range pass {
			if k < len(rs) && rs[k].StatusCode != 0 {
				out[idx] = fmt.Sprintf("refused by action handler %q (%d): %s", h.name, rs[k].StatusCode, rs[k].Entity)
			} else {
				kept = append(kept, idx)
			}
		}
		pass = kept
	}
	return out, nil
}

func (c *Chain) run(ctx context.Context, action sdk.Action, items []sdk.Item) ([]sdk.ItemResult, error) {
	results := make([]sdk.ItemResult, len(items))
	pass := make([]int, len(items))
	for k := range pass {
		pass[k] = k
	}
	for _, h := range c.validate[action] {
		if len(pass) == 0 {
			break
		}
		rs, err := c.callReceive(ctx, h, sdk.ReceiveRequest{Mode: sdk.ReceiveValidate, Action: action, Items: pick(items, pass)})
		if err != nil {
			return nil, err
		}
		kept := pass[:0]
		for k, idx := range pass {
			if rs[k].StatusCode != 0 {
				results[idx] = rs[k]
			} else {
				kept = append(kept, idx)
			}
		}
		pass = kept
	}
	if len(pass) > 0 {
		sub := pick(items, pass)
		var rs []sdk.ItemResult
		if h, ok := c.apply[action]; ok {
			var err error
			if rs, err = c.callReceive(ctx, h, sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: action, Items: sub}); err != nil {
				return nil, err
			}
		} else if IsBuiltin(action) {
			rs = c.builtin.Apply(ctx, sub)
		} else {
			c.log.Warn("replicated action with no handler", "action", action, "items", len(sub))
			rs = make([]sdk.ItemResult, len(sub))
			for k := range rs {
				rs[k].StatusCode = http.StatusBadRequest
			}
		}
		for k, idx := range pass {
			results[idx] = rs[k]
		}
	}
	for _, h := range c.observe[action] {
		if _, err := c.callReceive(ctx, h, sdk.ReceiveRequest{Mode: sdk.ReceiveObserve, Action: action, Items: items, Results: results}); err != nil {
			return nil, err
		}
	}
	return results, nil
}

func pick(items []sdk.Item, idx []int) []sdk.Item {
	if len(idx) == len(items) {
		return items
	}
	out := make([]sdk.Item, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out
}

func (c *Chain) callReceive(ctx context.Context, h named, req sdk.ReceiveRequest) (rs []sdk.ItemResult, err error) {
	ctx, end := c.span(ctx, h.name, req.Mode.String(), req.Action, len(req.Items))
	defer func() {
		if p := recover(); p != nil {
			rs, err = nil, fmt.Errorf("action handler %q panicked: %v", h.name, p)
		}
		end(err)
	}()
	rs, err = h.impl.Receive(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("action handler %q (%s %s): %w", h.name, req.Mode, req.Action, err)
	}
	if req.Mode != sdk.ReceiveObserve && len(rs) != len(req.Items) {
		return nil, fmt.Errorf("action handler %q (%s %s) returned %d results for %d items", h.name, req.Mode, req.Action, len(rs), len(req.Items))
	}
	return rs, nil
}

func (c *Chain) callAccept(ctx context.Context, h named, it sdk.Item) (out sdk.Item, err error) {
	ctx, end := c.span(ctx, h.name, "accept", it.Action, 1)
	defer func() {
		if p := recover(); p != nil {
			out, err = it, fmt.Errorf("action handler %q panicked: %v", h.name, p)
		}
		end(err)
	}()
	return h.impl.Accept(ctx, it)
}

// span starts a span for a handler call when the caller's span is sampled; it costs nothing
// otherwise.
func (c *Chain) span(ctx context.Context, handler, mode string, action sdk.Action, n int) (context.Context, func(error)) {
	if c.tracer == nil || !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, func(error) {}
	}
	ctx, span := c.tracer.Start(ctx, "action_handler."+mode+" "+string(action), trace.WithAttributes(
		attribute.String("herald.action_handler", handler),
		attribute.String("herald.action", string(action)),
		attribute.Int("herald.items", n)))
	return ctx, func(err error) {
		if err != nil {
			var r *sdk.Refusal
			if !errors.As(err, &r) {
				span.SetStatus(codes.Error, err.Error())
			}
			span.RecordError(err)
		}
		span.End()
	}
}
