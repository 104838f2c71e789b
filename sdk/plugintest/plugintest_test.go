package plugintest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// The suites pass plugins that keep the contract (the fixtures in fixtures_test.go).
func TestConformingPluginsPass(t *testing.T) {
	t.Run("transport", func(t *testing.T) {
		plugintest.Transport(t, plugintest.TransportCase{
			New:    func(*testing.T) sdk.Transport { return newWire() },
			Config: map[string]any{"timeout": "10s"},
			Peer:   wirePeer,
			PeerAt: wirePeerAt,
		})
	})
	t.Run("flush policy", func(t *testing.T) {
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return window{} }})
	})
	t.Run("action handler", func(t *testing.T) {
		plugintest.ActionHandler(t, plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { return &owners{} }})
	})
}

// hostUser is a handler that uses every host call, to check FakeHost over the broker.
type hostUser struct {
	sdk.UnimplementedActionHandler
	host sdk.Host
}

func (h *hostUser) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: plugintest.CustomAction, Accept: true, Receive: sdk.ReceiveApply}}
}

func (h *hostUser) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	h.host = req.Host
	return nil
}

func (h *hostUser) Accept(ctx context.Context, it sdk.Item) (sdk.Item, error) {
	inst, found, err := h.host.Instance(ctx, it.App, it.ID)
	if err != nil {
		return it, err
	}
	if !found {
		return it, sdk.Refuse(404, "no instance %s/%s", it.App, it.ID)
	}
	it.Instance = inst
	return it, h.host.Replicate(ctx, []sdk.Item{it})
}

func (h *hostUser) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	return h.host.Receive(ctx, sdk.Batch{ID: "relay", Items: req.Items})
}

func TestFakeHostOverTheBroker(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.PutInstance("orders", "o-1", plugintest.Instance("ORDERS", "o-1"))
	h := plugintest.ServeActionHandler(t, &hostUser{})
	plugintest.MustConfigure(t, h, nil, host)
	ctx := context.Background()

	it := plugintest.Item(plugintest.CustomAction, "ORDERS", "o-1")
	out, err := h.Accept(ctx, it)
	if err != nil || string(out.Instance) != string(plugintest.Instance("ORDERS", "o-1")) {
		t.Fatalf("accept: %+v %v", out, err)
	}
	if got := host.Replicated(); len(got) != 1 || got[0].ID != "o-1" || string(got[0].Payload) != string(it.Payload) {
		t.Fatalf("replicated %+v", got)
	}
	var r *sdk.Refusal
	if _, err := h.Accept(ctx, plugintest.Item(plugintest.CustomAction, "ORDERS", "o-2")); !errors.As(err, &r) || r.Code != 404 ||
		r.Message != "no instance ORDERS/o-2" {
		t.Fatalf("a refusal through gRPC: %v", err)
	}
	if host.Lookups() != 2 {
		t.Fatalf("lookups %d", host.Lookups())
	}
	rs, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: plugintest.CustomAction, Items: []sdk.Item{it}})
	if err != nil || len(rs) != 1 || rs[0].StatusCode != 200 {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if got := host.Received(); len(got) != 1 || got[0].ID != "relay" || len(host.ReceivedItems()) != 1 {
		t.Fatalf("received %+v", got)
	}
	host.SetErr(errors.New("down"))
	if _, err := h.Accept(ctx, it); err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("host error through the broker: %v", err)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
