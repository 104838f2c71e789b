// Package eureka is the action handler that applies Eureka's five replicated actions (register,
// heartbeat, cancel, status update, delete status override) on the receiving node: herald's default
// apply path. It applies them through the host service, so it runs in-process or as its own process
// (`plugin "action_handler" "eureka" { out_of_process = true }`) alike.
//
// A team that wants to apply one of the five differently removes "eureka" from
// replication.action_handlers and lists its own handler; actions no handler applies still get the
// registry's built-in apply.
package eureka

import (
	"context"
	"fmt"
	"sync"

	"github.com/heraldhq/herald/sdk"
)

// Handler implements sdk.ActionHandler, sdk.Describer and sdk.Configurable.
type Handler struct {
	sdk.UnimplementedActionHandler
	mu   sync.RWMutex
	host sdk.Host
}

// New returns the handler; it needs Configure (which hands it the host) before it applies.
func New() *Handler { return &Handler{host: sdk.NoHost()} }

// Actions implements sdk.ActionHandler: the five actions, applied.
func (h *Handler) Actions() []sdk.ActionSpec {
	var out []sdk.ActionSpec
	for _, a := range []sdk.Action{sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionCancel, sdk.ActionStatusUpdate,
		sdk.ActionDeleteStatusOverride} {
		out = append(out, sdk.ActionSpec{Action: a, Receive: sdk.ReceiveApply})
	}
	return out
}

// Info implements sdk.Describer.
func (h *Handler) Info() sdk.Info {
	return sdk.Info{Name: "eureka", Kind: sdk.KindActionHandler, ProtocolVersion: sdk.ProtocolVersion}
}

// Configure implements sdk.Configurable. The handler takes no settings (its Info declares none,
// so the host refuses any key in its config {} block); it keeps the host.
func (h *Handler) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var none struct{}
	if diags := req.Decode(&none); sdk.HasErrors(diags) {
		return diags
	}
	h.mu.Lock()
	if req.Host != nil {
		h.host = req.Host
	}
	h.mu.Unlock()
	return nil
}

// Receive implements sdk.ActionHandler: it applies a run of one action with the registry's rules
// and answers as Eureka's batch receiver does.
func (h *Handler) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	if req.Mode != sdk.ReceiveApply {
		return h.UnimplementedActionHandler.Receive(ctx, req)
	}
	h.mu.RLock()
	host := h.host
	h.mu.RUnlock()
	rs, err := host.Apply(ctx, req.Items)
	if err != nil {
		return nil, fmt.Errorf("eureka: apply %d %s items: %w", len(req.Items), req.Action, err)
	}
	return rs, nil
}
