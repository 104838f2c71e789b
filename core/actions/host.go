package actions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Target is what the host service acts on: the node's registry, its built-in apply, its chain of
// action handlers and its replication pipeline.
type Target struct {
	Registry *registry.Registry
	Builtin  Builtin
	Chain    *Chain
	// Replicate hands items to every peer's pipeline; nil on a node without peers.
	Replicate func(ctx context.Context, items []sdk.Item) error
	// MaxClockSkew bounds how far ahead of this node's clock an inbound item's lastDirtyTimestamp
	// and statusVersion may be, as on the batch endpoint (eureka.ApplyWithinSkew); 0: no bound.
	MaxClockSkew time.Duration
	// Logger, when set, hears of the inbound items refused for it.
	Logger hclog.Logger
}

// Host implements sdk.Host. Plugins are started, and get their Host, before the node they serve
// exists, so the host is bound to its target later; until then its calls fail with sdk.ErrNoHost.
type Host struct {
	mu sync.RWMutex
	t  *Target
}

var _ sdk.Host = (*Host)(nil)

// Bind points the host at a node.
func (h *Host) Bind(t Target) {
	h.mu.Lock()
	h.t = &t
	h.mu.Unlock()
}

func (h *Host) target() (*Target, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.t == nil {
		return nil, sdk.ErrNoHost
	}
	return h.t, nil
}

// Instance implements sdk.Host.
func (h *Host) Instance(_ context.Context, app, id string) ([]byte, bool, error) {
	t, err := h.target()
	if err != nil {
		return nil, false, err
	}
	inst, ok := t.Registry.Instance(strings.ToUpper(app), id)
	if !ok {
		return nil, false, nil
	}
	return codec.AppendInstanceBare(nil, inst), true, nil
}

// Apply implements sdk.Host: the built-in apply, without handlers.
func (h *Host) Apply(ctx context.Context, items []sdk.Item) ([]sdk.ItemResult, error) {
	t, err := h.target()
	if err != nil {
		return nil, err
	}
	for i := range items {
		if !IsBuiltin(items[i].Action) {
			return nil, fmt.Errorf("host apply: item %d: %q is not one of the five Eureka actions", i, items[i].Action)
		}
	}
	return t.Builtin.Apply(ctx, items), nil
}

// Replicate implements sdk.Host.
func (h *Host) Replicate(ctx context.Context, items []sdk.Item) error {
	t, err := h.target()
	if err != nil {
		return err
	}
	for i, it := range items {
		switch {
		case strings.TrimSpace(string(it.Action)) == "" || it.App == "" || it.ID == "":
			return fmt.Errorf("host replicate: item %d needs an action, an app and an id", i)
		case !t.Chain.Knows(it.Action):
			return fmt.Errorf("host replicate: item %d: no action handler applies action %q, so peers could not apply it", i, it.Action)
		}
	}
	if t.Replicate == nil {
		return nil
	}
	return t.Replicate(ctx, items)
}

// Receive implements sdk.Host: an inbound batch from a transport's receiving side goes through
// the whole chain, as a batch over HTTP does, with the same clock skew bound per item.
func (h *Host) Receive(ctx context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	t, err := h.target()
	if err != nil {
		return nil, err
	}
	return eureka.ApplyWithinSkew(ctx, b.Items, t.MaxClockSkew, time.Now(), t.Chain.ApplyBatch, func(it sdk.Item, err error) {
		if t.Logger != nil {
			t.Logger.Warn("replicated item refused", "app", it.App, "id", it.ID, "action", it.Action, "error", err)
		}
	})
}
