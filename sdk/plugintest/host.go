package plugintest

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/heraldhq/herald/sdk"
)

// FakeHost is an sdk.Host for tests: it serves instances from a map and records what the plugin
// asks of it. Apply, Replicate and Receive answer 200 for every item unless Answer is set.
type FakeHost struct {
	mu         sync.Mutex
	instances  map[string][]byte
	applied    []sdk.Item
	replicated []sdk.Item
	received   []sdk.Batch
	// Answer, when set, gives the result of each applied or received item.
	Answer func(sdk.Item) sdk.ItemResult
	// Err, when set, is returned by every call.
	Err error
}

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost { return &FakeHost{instances: map[string][]byte{}} }

// PutInstance stores an instance (bare InstanceInfo JSON) for Instance to return.
func (h *FakeHost) PutInstance(app, id string, instance []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instances[strings.ToUpper(app)+"/"+id] = instance
}

// Instance implements sdk.Host.
func (h *FakeHost) Instance(_ context.Context, app, id string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Err != nil {
		return nil, false, h.Err
	}
	b, ok := h.instances[strings.ToUpper(app)+"/"+id]
	return b, ok, nil
}

func (h *FakeHost) answer(items []sdk.Item) []sdk.ItemResult {
	out := make([]sdk.ItemResult, len(items))
	for i, it := range items {
		if h.Answer != nil {
			out[i] = h.Answer(it)
		} else {
			out[i] = sdk.ItemResult{StatusCode: http.StatusOK}
		}
	}
	return out
}

// Apply implements sdk.Host.
func (h *FakeHost) Apply(_ context.Context, items []sdk.Item) ([]sdk.ItemResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Err != nil {
		return nil, h.Err
	}
	h.applied = append(h.applied, items...)
	return h.answer(items), nil
}

// Replicate implements sdk.Host.
func (h *FakeHost) Replicate(_ context.Context, items []sdk.Item) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Err != nil {
		return h.Err
	}
	h.replicated = append(h.replicated, items...)
	return nil
}

// Receive implements sdk.Host.
func (h *FakeHost) Receive(_ context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Err != nil {
		return nil, h.Err
	}
	h.received = append(h.received, b)
	return h.answer(b.Items), nil
}

// Applied returns the items applied so far.
func (h *FakeHost) Applied() []sdk.Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Item(nil), h.applied...)
}

// Replicated returns the items replicated so far.
func (h *FakeHost) Replicated() []sdk.Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Item(nil), h.replicated...)
}

// Received returns the batches received so far.
func (h *FakeHost) Received() []sdk.Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Batch(nil), h.received...)
}
