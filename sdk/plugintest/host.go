package plugintest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
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
	registry   bool          // Apply and Receive apply the items to instances (NewNode)
	dirty      map[string]int64
}

var _ sdk.Host = (*FakeHost)(nil)

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost {
	return &FakeHost{instances: map[string][]byte{}, dirty: map[string]int64{}}
}

// NewNode returns a FakeHost that is a node's registry: Apply and Receive apply the five Eureka
// actions to the instances it holds (Instance and Instances read them) and answer as a Eureka
// server answers a peer (PeerAwareInstanceRegistryImpl, InstanceResource.validateDirtyTimestamp):
//
//   - Register stores the instance, unless the node holds a copy with a later lastDirtyTimestamp; 200.
//   - Heartbeat: 404 if the node does not hold the instance or holds an older copy (the sender then
//     registers it again), 409 with the node's copy as Entity if that copy is newer, 200 otherwise.
//   - StatusUpdate sets status and overriddenStatus, DeleteStatusOverride sets status and clears the
//     override (UNKNOWN), Cancel removes the instance: 200, or 404 if the node does not hold it.
//   - Any other (custom) action is recorded and answered 200.
//
// SetAnswer and SetErr work as on any FakeHost (SetAnswer replaces the registry's answers).
func NewNode() *FakeHost {
	h := NewFakeHost()
	h.registry = true
	return h
}

func instanceKey(app, id string) string { return strings.ToUpper(app) + "/" + id }

// PutInstance stores an instance (bare InstanceInfo JSON) for Instance to return. Application
// names are matched without regard to case, as Eureka does.
func (h *FakeHost) PutInstance(app, id string, instance []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instances[instanceKey(app, id)] = append([]byte(nil), instance...)
	h.dirty[instanceKey(app, id)] = lastDirty(instance)
}

// Instances returns the instances the host holds (bare InstanceInfo JSON) by "APP/id", the
// application name in upper case.
func (h *FakeHost) Instances() map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]byte, len(h.instances))
	for k, v := range h.instances {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// lastDirty is the lastDirtyTimestamp of an instance (0 if it has none).
func lastDirty(instance []byte) int64 {
	var inst struct {
		LastDirty json.RawMessage `json:"lastDirtyTimestamp"`
	}
	if json.Unmarshal(instance, &inst) != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.Trim(string(inst.LastDirty), `"`), 10, 64)
	return n
}

// withFields returns instance with the given top-level string fields set.
func withFields(instance []byte, kv ...string) []byte {
	var m map[string]any
	if json.Unmarshal(instance, &m) != nil || m == nil {
		return instance
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	out, err := json.Marshal(m)
	if err != nil {
		return instance
	}
	return out
}

// apply applies it to the registry and returns the node's answer (h.mu held).
func (h *FakeHost) apply(it sdk.Item) sdk.ItemResult {
	key := instanceKey(it.App, it.ID)
	cur, held := h.instances[key]
	if !held && it.Action != sdk.ActionRegister && isBuiltin(it.Action) {
		return sdk.ItemResult{StatusCode: http.StatusNotFound}
	}
	switch it.Action {
	case sdk.ActionRegister:
		if !held || h.dirty[key] <= it.LastDirtyTimestamp {
			h.instances[key] = append([]byte(nil), it.Instance...)
			h.dirty[key] = it.LastDirtyTimestamp
		}
	case sdk.ActionHeartbeat:
		switch d := h.dirty[key]; {
		case it.LastDirtyTimestamp > d:
			return sdk.ItemResult{StatusCode: http.StatusNotFound}
		case it.LastDirtyTimestamp != 0 && it.LastDirtyTimestamp < d:
			return sdk.ItemResult{StatusCode: http.StatusConflict, Entity: append([]byte(nil), cur...)}
		}
	case sdk.ActionCancel:
		delete(h.instances, key)
		delete(h.dirty, key)
	case sdk.ActionStatusUpdate:
		h.instances[key] = withFields(cur, "status", it.Status, "overriddenStatus", it.Status)
	case sdk.ActionDeleteStatusOverride:
		status := it.Status
		if status == "" {
			status = "UP"
		}
		h.instances[key] = withFields(cur, "status", status, "overriddenStatus", "UNKNOWN")
	}
	return sdk.ItemResult{StatusCode: http.StatusOK}
}

func isBuiltin(a sdk.Action) bool {
	for _, b := range BuiltinActions {
		if a == b {
			return true
		}
	}
	return false
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
		} else if h.registry {
			out[i] = h.apply(it)
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
