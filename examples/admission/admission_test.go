package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

var config = map[string]any{"required_metadata": []any{"owner"}, "app_pattern": "^[A-Z][A-Z0-9-]*$"}

func TestConformance(t *testing.T) {
	plugintest.ActionHandler(t, plugintest.ActionHandlerCase{
		New:    func(*testing.T) sdk.ActionHandler { return New() },
		Config: config,
		// plugintest.Item's instances carry metadata owner and zone; one item breaks the pattern.
		Items: func(a sdk.Action) []sdk.Item {
			return []sdk.Item{plugintest.Item(a, "ORDERS", "i-1"), plugintest.Item(a, "bad name", "i-2")}
		},
	})
}

func TestRules(t *testing.T) {
	h := plugintest.ServeActionHandler(t, New()) // through gRPC, as herald runs it
	if d := plugintest.Configure(t, h, config, nil); len(d) != 0 {
		t.Fatal(d)
	}
	ok := plugintest.Item(sdk.ActionRegister, "ORDERS", "i-1")
	noOwner := ok
	noOwner.Instance = []byte(strings.Replace(string(ok.Instance), `"owner":"team-a",`, "", 1))
	badApp := plugintest.Item(sdk.ActionRegister, "orders", "i-3")

	if _, err := h.Accept(context.Background(), ok); err != nil {
		t.Errorf("a good registration was refused: %v", err)
	}
	var r *sdk.Refusal
	if _, err := h.Accept(context.Background(), noOwner); !errors.As(err, &r) || r.Code != 422 ||
		r.Message != `registration refused: metadata key "owner" is required` {
		t.Errorf("missing owner: %v", err)
	}
	if _, err := h.Accept(context.Background(), badApp); !errors.As(err, &r) || !strings.Contains(r.Message, `"orders" does not match`) {
		t.Errorf("bad app name: %v", err)
	}
	rs, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveValidate, Action: sdk.ActionRegister,
		Items: []sdk.Item{ok, noOwner, badApp}})
	if err != nil || len(rs) != 3 || rs[0].StatusCode != 0 || rs[1].StatusCode != 422 || rs[2].StatusCode != 422 {
		t.Errorf("validate: %+v %v", rs, err)
	}
}

// Without rules every registration passes; rules set from Go (a []string) work as from HCL.
func TestRulesFromConfig(t *testing.T) {
	ctx := context.Background()
	noOwner := plugintest.Item(sdk.ActionRegister, "orders", "i-1")
	noOwner.Instance = []byte(strings.Replace(string(noOwner.Instance), `"owner":"team-a",`, "", 1))

	open := New()
	plugintest.MustConfigure(t, open, nil, nil)
	if _, err := open.Accept(ctx, noOwner); err != nil {
		t.Errorf("no rules, yet refused: %v", err)
	}
	strict := New()
	plugintest.MustConfigure(t, strict, map[string]any{"required_metadata": []string{"owner"}}, nil)
	var r *sdk.Refusal
	if _, err := strict.Accept(ctx, noOwner); !errors.As(err, &r) || r.Code != 422 {
		t.Errorf("required_metadata as []string: %v", err)
	}
	// Other actions are never judged.
	if _, err := strict.Accept(ctx, plugintest.Item(sdk.ActionHeartbeat, "orders", "i-1")); err != nil {
		t.Errorf("a heartbeat was refused: %v", err)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	// A value of the wrong type is refused with its key, before the plugin's own checks run.
	d := plugintest.Configure(t, New(), map[string]any{"app_pattern": "([", "required_metadata": []any{"owner", 3}}, nil)
	if len(d) != 1 || d[0].Path != "required_metadata[1]" {
		t.Errorf("diagnostics: %+v", d)
	}
	// Config.Validate refuses what the types allow but the rules do not.
	d = plugintest.Configure(t, New(), map[string]any{"app_pattern": "([", "required_metadata": []any{"owner", ""}}, nil)
	paths := map[string]bool{}
	for _, x := range d {
		paths[x.Path] = true
	}
	if !paths["app_pattern"] || !paths["required_metadata[1]"] || len(d) != 2 {
		t.Errorf("diagnostics: %+v", d)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
