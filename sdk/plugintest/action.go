package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// ActionHandlerCase describes the action handler under test.
type ActionHandlerCase struct {
	// New returns a new, unconfigured handler. The suite configures it with Config and a FakeHost.
	New func(t *testing.T) sdk.ActionHandler
	// Config is the handler's config {} block for the test (nil: empty).
	Config map[string]any
	// Items returns the items the suite uses for action a (nil: two items of application
	// PLUGINTEST made with Item). Give items your handler lets through and, if it refuses some,
	// items it refuses: the suite checks the shape of every answer, not which items pass.
	Items func(a sdk.Action) []sdk.Item
	// Host returns the FakeHost the handler is configured with (nil: a new FakeHost). Preload it
	// (PutInstance, SetAnswer) for a handler that reads or applies through the host.
	Host func(t *testing.T) *FakeHost
	Options
}

// ActionHandler runs the action-handler conformance suite: in-process, through the gRPC path
// (where the host service reaches the handler over the broker, as in herald), and a few checks on
// the handler in a plugin process of its own.
func ActionHandler(t *testing.T, c ActionHandlerCase) {
	t.Helper()
	if c.New == nil {
		t.Fatal("plugintest.ActionHandler: ActionHandlerCase.New is nil: give a function that returns a new handler")
	}
	if serveAsChild(t, sdk.KindActionHandler, func() any { return c.New(t) }) {
		return
	}
	for _, via := range vias {
		s := &actionSuite{c: c, via: via, top: t.Name()}
		t.Run(via, func(t *testing.T) {
			if via == viaProcess {
				t.Run("accept", s.accept)
				t.Run("validate", func(t *testing.T) { s.receive(t, sdk.ReceiveValidate) })
				t.Run("describe and configure", s.describe)
				return
			}
			t.Run("actions", s.actions)
			t.Run("accept", s.accept)
			t.Run("validate", func(t *testing.T) { s.receive(t, sdk.ReceiveValidate) })
			t.Run("apply", func(t *testing.T) { s.receive(t, sdk.ReceiveApply) })
			t.Run("observe", func(t *testing.T) { s.receive(t, sdk.ReceiveObserve) })
			t.Run("concurrent calls", s.concurrent)
			t.Run("describe and configure", s.describe)
		})
	}
}

type actionSuite struct {
	c   ActionHandlerCase
	via string
	top string // the test that called the suite
}

func (s *actionSuite) fresh(t *testing.T) (impl, h sdk.ActionHandler) {
	t.Helper()
	impl = s.c.New(t)
	if impl == nil {
		t.Fatal("ActionHandlerCase.New returned nil")
	}
	closeAtEnd(t, impl)
	impl = guardAs(t, sdk.KindActionHandler, impl).(sdk.ActionHandler)
	h = impl
	switch s.via {
	case viaGRPC:
		h = ServeActionHandler(t, impl)
	case viaProcess:
		h = serveProcess(t, s.top, sdk.KindActionHandler).(sdk.ActionHandler)
	}
	return impl, h
}

func (s *actionSuite) handler(t *testing.T) (impl, h sdk.ActionHandler) {
	t.Helper()
	impl, h = s.fresh(t)
	host := NewFakeHost()
	if s.c.Host != nil {
		host = s.c.Host(t)
	}
	MustConfigure(t, h, s.c.Config, host)
	return impl, h
}

func (s *actionSuite) items(a sdk.Action) []sdk.Item {
	var its []sdk.Item
	if s.c.Items != nil {
		its = s.c.Items(a)
	} else {
		its = []sdk.Item{Item(a, "PLUGINTEST", "i-1"), Item(a, "PLUGINTEST", "i-2")}
	}
	out := make([]sdk.Item, len(its))
	for i, it := range its {
		out[i] = cloneItem(it)
	}
	return out
}

func cloneItem(it sdk.Item) sdk.Item {
	it.Instance = bytes.Clone(it.Instance)
	it.Payload = bytes.Clone(it.Payload)
	return it
}

func (s *actionSuite) actions(t *testing.T) {
	_, h := s.handler(t)
	specs := h.Actions()
	if len(specs) == 0 {
		t.Fatal("Actions() is empty: declare the actions the handler takes part in (sdk.ActionSpec), or herald never calls it")
	}
	seen := map[sdk.Action]bool{}
	for i, sp := range specs {
		switch {
		case strings.TrimSpace(string(sp.Action)) == "":
			t.Errorf("Actions()[%d] has no Action: name it (sdk.ActionRegister, … or your custom action); herald refuses to start", i)
		case seen[sp.Action]:
			t.Errorf("action %q is declared twice: declare each action once, with Accept and one receive mode", sp.Action)
		case sp.Receive < sdk.ReceiveNone || sp.Receive > sdk.ReceiveObserve:
			t.Errorf("action %q has an unknown receive mode %d: use sdk.ReceiveNone, ReceiveValidate, ReceiveApply or ReceiveObserve; "+
				"herald refuses to start", sp.Action, int(sp.Receive))
		case !sp.Accept && sp.Receive == sdk.ReceiveNone:
			t.Errorf("action %q asks for nothing (Accept false, ReceiveNone): set Accept or a receive mode, or leave it out", sp.Action)
		}
		seen[sp.Action] = true
	}
}

func (s *actionSuite) specs(t *testing.T, h sdk.ActionHandler, keep func(sdk.ActionSpec) bool, what string) []sdk.ActionSpec {
	t.Helper()
	var out []sdk.ActionSpec
	for _, sp := range h.Actions() {
		if keep(sp) {
			out = append(out, sp)
		}
	}
	if len(out) == 0 {
		t.Skipf("the handler declares no action with %s", what)
	}
	return out
}

func (s *actionSuite) accept(t *testing.T) {
	impl, h := s.handler(t)
	ctx := context.Background()
	for _, sp := range s.specs(t, h, func(sp sdk.ActionSpec) bool { return sp.Accept }, "Accept") {
		for _, it := range s.items(sp.Action) {
			out, err := h.Accept(ctx, cloneItem(it))
			if msg := checkAccept(it, out, err); msg != "" {
				t.Error(msg)
				continue
			}
			if s.via != viaGRPC {
				continue
			}
			_, derr := impl.Accept(ctx, cloneItem(it))
			if msg := compareAccept(it, derr, err); msg != "" {
				t.Error(msg)
			}
		}
	}
}

func itemName(it sdk.Item) string { return fmt.Sprintf("%s %s/%s", it.Action, it.App, it.ID) }

// checkAccept says what is wrong with Accept's answer (out, err) for it ("" if nothing).
func checkAccept(it, out sdk.Item, err error) string {
	var r *sdk.Refusal
	switch {
	case errors.As(err, &r):
		if r.Code < 400 || r.Code > 499 {
			return fmt.Sprintf("Accept of %s refused it with status %d: use a 4xx status the client understands, e.g. "+
				"sdk.Refuse(422, \"metadata key %%q is required\", \"owner\")", itemName(it), r.Code)
		}
		if strings.TrimSpace(r.Message) == "" {
			return fmt.Sprintf("Accept of %s refused it (%d) without a message: say what the client must change", itemName(it), r.Code)
		}
		return ""
	case err != nil:
		return fmt.Sprintf("Accept of %s failed with a plain error (%v): the client gets 503 and registers again later, failing again. If the item is "+
			"wrong, refuse it with sdk.Refuse(4xx, message); keep plain errors for a handler that cannot decide now", itemName(it), err)
	}
	if out.Action != it.Action || out.App != it.App || out.ID != it.ID {
		return fmt.Sprintf("Accept of %s returned %s: keep the action, app and id, only enrich the item", itemName(it), itemName(out))
	}
	if bytes.Equal(out.Instance, it.Instance) {
		return ""
	}
	var inst, orig struct {
		App        string `json:"app"`
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(out.Instance, &inst); err != nil {
		return fmt.Sprintf("Accept of %s returned an Instance that is not a JSON object (%v): return bare InstanceInfo JSON", itemName(it), err)
	}
	_ = json.Unmarshal(it.Instance, &orig)
	if !strings.EqualFold(inst.App, orig.App) || inst.InstanceID != orig.InstanceID {
		return fmt.Sprintf("Accept of %s changed the instance's app or instanceId (%q/%q): herald refuses the registration with 500; "+
			"only enrich the instance (metadata, say)", itemName(it), inst.App, inst.InstanceID)
	}
	return ""
}

// compareAccept checks that Accept's answer through gRPC is the handler's own.
func compareAccept(it sdk.Item, derr, err error) string {
	var dr, r *sdk.Refusal
	switch {
	case errors.As(derr, &dr):
		if !errors.As(err, &r) || r.Code != dr.Code || r.Message != dr.Message {
			return fmt.Sprintf("Accept of %s: the handler refused with %v, but through gRPC herald got %v: make refusals with "+
				"sdk.Refuse (an *sdk.Refusal with a 4xx code), the only errors whose code and message reach the client", itemName(it), derr, err)
		}
	case derr != nil:
		if err == nil {
			return fmt.Sprintf("Accept of %s: the handler failed (%v), but through gRPC herald got no error", itemName(it), derr)
		}
	case err != nil:
		return fmt.Sprintf("Accept of %s: the handler accepted, but through gRPC herald got %v", itemName(it), err)
	}
	return ""
}

func (s *actionSuite) receive(t *testing.T, mode sdk.ReceiveMode) {
	_, h := s.handler(t)
	ctx := context.Background()
	for _, sp := range s.specs(t, h, func(sp sdk.ActionSpec) bool { return sp.Receive == mode }, "Receive "+mode.String()) {
		if msg := receiveOnce(ctx, h, sp, s.items(sp.Action)); msg != "" {
			t.Error(msg)
		}
	}
}

// observedResults are the results an observer is shown: applied, unknown, refused by a validator.
var observedResults = []int{200, 404, 422}

// receiveOnce calls Receive for one run of items and says what is wrong with the answer.
func receiveOnce(ctx context.Context, h sdk.ActionHandler, sp sdk.ActionSpec, items []sdk.Item) string {
	req := sdk.ReceiveRequest{Mode: sp.Receive, Action: sp.Action, Items: items}
	if sp.Receive == sdk.ReceiveObserve {
		req.Results = make([]sdk.ItemResult, len(items))
		for i := range req.Results {
			req.Results[i].StatusCode = observedResults[i%len(observedResults)]
		}
	}
	what := fmt.Sprintf("Receive (%s %s) of %d items", sp.Receive, sp.Action, len(items))
	rs, err := h.Receive(ctx, req)
	if err != nil {
		if sp.Receive == sdk.ReceiveObserve {
			return fmt.Sprintf("%s with their results failed: %v. An observer's error fails the whole inbound batch and makes the "+
				"sender send it again: observe, do not judge", what, err)
		}
		return fmt.Sprintf("%s failed: %v. An error fails the whole inbound batch, which the sender sends again (and again, "+
			"if it keeps failing): answer single items with a status instead", what, err)
	}
	if sp.Receive == sdk.ReceiveObserve {
		return "" // its answers are ignored
	}
	if len(rs) != len(items) {
		return fmt.Sprintf("%s returned %d results: return exactly one result per item, in order", what, len(rs))
	}
	for i, r := range rs {
		switch {
		case sp.Receive == sdk.ReceiveValidate && r.StatusCode != 0 && r.StatusCode < 400:
			return fmt.Sprintf("%s answered %d for item %d: StatusCode 0 lets an item through; any other status is the item's "+
				"answer to the sender and the item is not applied, so a refusal must be a 4xx or 5xx status", what, r.StatusCode, i)
		case sp.Receive == sdk.ReceiveApply && r.StatusCode == 0:
			return fmt.Sprintf("%s left result %d without a status code: answer as Eureka does (200, 404, 409 with Entity, 500)", what, i)
		}
	}
	return ""
}

func (s *actionSuite) concurrent(t *testing.T) {
	_, h := s.handler(t)
	specs := h.Actions()
	const workers, rounds = 8, 5
	if msg := roundOfCalls(context.Background(), s, h, specs); msg != "" {
		t.Skip("single calls fail already (see the other checks)")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for k := 0; k < rounds; k++ {
				if msg := roundOfCalls(ctx, s, h, specs); msg != "" {
					mu.Lock()
					problems = append(problems, msg)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("with %d goroutines calling at once: %s. herald calls a handler for several inbound batches and client "+
			"writes at once: make it safe for concurrent use", workers, problems[0])
	}
}

// roundOfCalls makes every call the handler asked for once and says what is wrong ("" if nothing).
func roundOfCalls(ctx context.Context, s *actionSuite, h sdk.ActionHandler, specs []sdk.ActionSpec) string {
	for _, sp := range specs {
		items := s.items(sp.Action)
		if sp.Accept {
			for _, it := range items {
				out, err := h.Accept(ctx, cloneItem(it))
				if msg := checkAccept(it, out, err); msg != "" {
					return msg
				}
			}
		}
		if sp.Receive != sdk.ReceiveNone {
			if msg := receiveOnce(ctx, h, sp, items); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func (s *actionSuite) describe(t *testing.T) {
	impl, h := s.fresh(t)
	checkDescribeConfigure(t, sdk.KindActionHandler, impl, h, s.c.Config, s.c.Options)
}
