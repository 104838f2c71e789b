package plugintest

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/heraldhq/herald/sdk"
)

// FakeHost is an sdk.Host for tests. It serves instances from a map (PutInstance) and records what
// the plugin asks of it: Applied, Replicated and Received return the calls so far. Apply and
// Receive answer 200 for every item unless SetAnswer says otherwise; SetErr makes every call fail.
// It is safe for concurrent use, and reaches a plugin over the broker when the plugin is served
// with the Serve functions.
type FakeHost struct {
	mu         sync.Mutex
	instances  map[string][]byte
	applied    [][]sdk.Item
	replicated [][]sdk.Item
	received   []sdk.Batch
	lookups    int
	answer     func(sdk.Item) sdk.ItemResult
	err        error
	hold       chan struct{} // non-nil: Apply and Receive wait for it to close
}

var _ sdk.Host = (*FakeHost)(nil)

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost { return &FakeHost{instances: map[string][]byte{}} }

func instanceKey(app, id string) string { return strings.ToUpper(app) + "/" + id }

// PutInstance stores an instance (bare InstanceInfo JSON) for Instance to return. Application
// names are matched without regard to case, as Eureka does.
func (h *FakeHost) PutInstance(app, id string, instance []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instances[instanceKey(app, id)] = append([]byte(nil), instance...)
}

// SetAnswer sets the result Apply and Receive give each item (nil: 200 for every item).
func (h *FakeHost) SetAnswer(answer func(sdk.Item) sdk.ItemResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer = answer
}

// SetErr makes every call fail with err, as a node that cannot serve the plugin now (nil: calls
// succeed again). Failed calls are not recorded.
func (h *FakeHost) SetErr(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

// Hold makes Apply and Receive wait, once they recorded a call, until release is called, as a
// node slow to apply a batch; a call whose context ends first fails with the context's error.
func (h *FakeHost) Hold() (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	h.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if h.hold == ch {
				h.hold = nil
			}
			h.mu.Unlock()
			close(ch)
		})
	}
}

// wait waits for hold (nil: not held) or the end of ctx.
func wait(ctx context.Context, hold chan struct{}) error {
	if hold == nil {
		return nil
	}
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Instance implements sdk.Host.
func (h *FakeHost) Instance(_ context.Context, app, id string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, false, h.err
	}
	h.lookups++
	b, ok := h.instances[instanceKey(app, id)]
	return append([]byte(nil), b...), ok, nil
}

func (h *FakeHost) answers(items []sdk.Item) []sdk.ItemResult {
	out := make([]sdk.ItemResult, len(items))
	for i, it := range items {
		if h.answer != nil {
			out[i] = h.answer(it)
		} else {
			out[i] = sdk.ItemResult{StatusCode: http.StatusOK}
		}
	}
	return out
}

// Apply implements sdk.Host.
func (h *FakeHost) Apply(ctx context.Context, items []sdk.Item) ([]sdk.ItemResult, error) {
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		return nil, h.err
	}
	h.applied = append(h.applied, append([]sdk.Item(nil), items...))
	rs, hold := h.answers(items), h.hold
	h.mu.Unlock()
	if err := wait(ctx, hold); err != nil {
		return nil, err
	}
	return rs, nil
}

// Replicate implements sdk.Host.
func (h *FakeHost) Replicate(_ context.Context, items []sdk.Item) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	h.replicated = append(h.replicated, append([]sdk.Item(nil), items...))
	return nil
}

// Receive implements sdk.Host.
func (h *FakeHost) Receive(ctx context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		return nil, h.err
	}
	b.Items = append([]sdk.Item(nil), b.Items...)
	h.received = append(h.received, b)
	rs, hold := h.answers(b.Items), h.hold
	h.mu.Unlock()
	if err := wait(ctx, hold); err != nil {
		return nil, err
	}
	return rs, nil
}

// Applied returns the items applied so far, in the order of the calls.
func (h *FakeHost) Applied() []sdk.Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	return flatten(h.applied)
}

// Replicated returns the items replicated so far, in the order of the calls.
func (h *FakeHost) Replicated() []sdk.Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	return flatten(h.replicated)
}

// Received returns the batches received so far.
func (h *FakeHost) Received() []sdk.Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Batch(nil), h.received...)
}

// ReceivedItems returns the items of every batch received so far, in order.
func (h *FakeHost) ReceivedItems() []sdk.Item {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sdk.Item
	for _, b := range h.received {
		out = append(out, b.Items...)
	}
	return out
}

// Lookups returns the number of Instance calls so far.
func (h *FakeHost) Lookups() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lookups
}

func flatten(calls [][]sdk.Item) []sdk.Item {
	var out []sdk.Item
	for _, c := range calls {
		out = append(out, c...)
	}
	return out
}
