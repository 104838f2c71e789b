package plugintest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// ActionHandlerCase describes the action handler under test.
type ActionHandlerCase struct {
	New    func(t *testing.T) sdk.ActionHandler
	Config map[string]any
	// Items returns the items to test an action with (nil: Item(action, "PLUGINTEST", "i-1") and a
	// second instance). Give items your handler accepts and, if it refuses some, items it refuses.
	Items func(a sdk.Action) []sdk.Item
	// Host is the host the handler is configured with (nil: a new FakeHost per run).
	Host func() *FakeHost
	// SkipUnknownKey: see TransportCase.
	SkipUnknownKey bool
}

// ActionHandler runs the action-handler conformance suite, in-process and through the gRPC path
// (with the host service served over the broker, as herald does).
func ActionHandler(t *testing.T, c ActionHandlerCase) {
	t.Helper()
	if c.New == nil {
		t.Fatal("plugintest.ActionHandler: ActionHandlerCase needs New")
	}
	items := c.Items
	if items == nil {
		items = func(a sdk.Action) []sdk.Item {
			return []sdk.Item{Item(a, "PLUGINTEST", "i-1"), Item(a, "PLUGINTEST", "i-2")}
		}
	}
	var inProcessAccept = map[string]error{}
	for _, via := range []string{"in-process", "grpc"} {
		t.Run(via, func(t *testing.T) {
			impl := c.New(t)
			h := impl
			if via == "grpc" {
				h = ServeActionHandler(t, impl)
			}
			host := NewFakeHost()
			if c.Host != nil {
				host = c.Host()
			}
			mustConfigure(t, h, c.Config, host)
			specs := h.Actions()
			if len(specs) == 0 {
				t.Fatal("Actions() is empty: declare the actions the handler takes part in, or herald never calls it")
			}
			seen := map[sdk.Action]bool{}
			for _, s := range specs {
				switch {
				case s.Action == "":
					t.Error("an ActionSpec has no Action")
				case seen[s.Action]:
					t.Errorf("action %q is declared twice: declare each action once", s.Action)
				case s.Receive < sdk.ReceiveNone || s.Receive > sdk.ReceiveObserve:
					t.Errorf("action %q has an unknown receive mode %d", s.Action, int(s.Receive))
				case !s.Accept && s.Receive == sdk.ReceiveNone:
					t.Errorf("action %q asks for nothing (no Accept, ReceiveNone): remove it", s.Action)
				}
				seen[s.Action] = true
			}
			ctx := context.Background()
			for _, s := range specs {
				its := items(s.Action)
				if s.Accept {
					for _, it := range its {
						out, err := h.Accept(ctx, it)
						key := string(it.Action) + "/" + it.ID
						if via == "in-process" {
							inProcessAccept[key] = err
						} else if want := inProcessAccept[key]; fmt.Sprint(want) != fmt.Sprint(err) {
							t.Errorf("Accept of %s: in-process %v, through gRPC %v: a refusal must be made with sdk.Refuse to survive the wire", key, want, err)
						}
						var r *sdk.Refusal
						switch {
						case errors.As(err, &r):
							if r.Code < 400 || r.Code > 499 || r.Message == "" {
								t.Errorf("Accept of %s refused with %d %q: use a 4xx status and a message the client can act on", key, r.Code, r.Message)
							}
						case err != nil:
							t.Errorf("Accept of %s failed: %v (the client gets 503; refuse with sdk.Refuse if the item is wrong)", key, err)
						case out.App != it.App || out.ID != it.ID || out.Action != it.Action:
							t.Errorf("Accept of %s changed the action, app or id (%s %s/%s): only enrich the item", key, out.Action, out.App, out.ID)
						}
					}
				}
				switch s.Receive {
				case sdk.ReceiveValidate, sdk.ReceiveApply:
					rs, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: s.Receive, Action: s.Action, Items: its})
					if err != nil {
						t.Errorf("Receive (%s %s) failed: %v; an error fails the whole inbound batch", s.Receive, s.Action, err)
						continue
					}
					if len(rs) != len(its) {
						t.Errorf("Receive (%s %s) returned %d results for %d items: return exactly one per item, in order", s.Receive, s.Action, len(rs), len(its))
						continue
					}
					for i, r := range rs {
						if s.Receive == sdk.ReceiveApply && r.StatusCode == 0 {
							t.Errorf("Receive (apply %s) left result %d without a status code: answer 200, 404, 409 or 500", s.Action, i)
						}
						if s.Receive == sdk.ReceiveValidate && r.StatusCode != 0 && r.StatusCode < 400 {
							t.Errorf("Receive (validate %s) answered %d for item %d: 0 lets an item through, a refusal is 4xx or 5xx", s.Action, r.StatusCode, i)
						}
					}
				case sdk.ReceiveObserve:
					results := make([]sdk.ItemResult, len(its))
					for i := range results {
						results[i].StatusCode = 200
					}
					if _, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: s.Receive, Action: s.Action, Items: its, Results: results}); err != nil {
						t.Errorf("Receive (observe %s) failed: %v; an observer's error makes the sender send the batch again", s.Action, err)
					}
				}
			}
			checkBase(t, h, impl, sdk.KindActionHandler, c.SkipUnknownKey)
		})
	}
}
