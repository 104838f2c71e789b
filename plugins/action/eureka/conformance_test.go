package eureka_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.ActionHandler(t, plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { return eureka.New() }})
}

// The host service reaches a handler through the broker: what the handler applies arrives at the
// test's FakeHost, and the host's errors reach the caller.
func TestHostThroughTheBroker(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.SetAnswer(func(it sdk.Item) sdk.ItemResult {
		if it.ID == "2" {
			return sdk.ItemResult{StatusCode: 409, Entity: plugintest.Instance(it.App, it.ID)}
		}
		return sdk.ItemResult{StatusCode: 200}
	})
	h := plugintest.ServeActionHandler(t, eureka.New())
	plugintest.MustConfigure(t, h, nil, host)
	items := []sdk.Item{plugintest.Item(sdk.ActionRegister, "A", "1"), plugintest.Item(sdk.ActionRegister, "A", "2")}
	rs, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items})
	if err != nil || len(rs) != 2 || rs[0].StatusCode != 200 || rs[1].StatusCode != 409 || string(rs[1].Entity) != string(plugintest.Instance("A", "2")) {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if got := host.Applied(); len(got) != 2 || got[1].ID != "2" || string(got[0].Instance) != string(items[0].Instance) ||
		got[0].TraceParent != items[0].TraceParent {
		t.Fatalf("the host got %+v", got)
	}
	host.SetErr(errors.New("registry unavailable"))
	if _, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items}); err == nil ||
		!strings.Contains(err.Error(), "registry unavailable") {
		t.Fatalf("a host error must reach the caller, got %v", err)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
