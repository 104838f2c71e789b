package plugintest_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// statusOf is the status and overridden status of a stored instance.
func statusOf(t *testing.T, inst []byte) (string, string) {
	t.Helper()
	var v struct{ Status, OverriddenStatus string }
	if err := json.Unmarshal(inst, &v); err != nil {
		t.Fatalf("stored instance %q: %v", inst, err)
	}
	return v.Status, v.OverriddenStatus
}

// A batch sent through the loopback is applied to the receiving node's registry, which answers
// each item as a Eureka server answers a peer.
func TestLoopback(t *testing.T) {
	l := plugintest.NewLoopback(t, plugintest.LoopbackCase{
		New:            func(*testing.T) sdk.Transport { return newWire() },
		ReceiverConfig: map[string]any{"listen": "127.0.0.1:0"},
		Peer:           func(rx sdk.Transport) sdk.Peer { return sdk.Peer{Name: "b", Address: rx.(*wire).Addr()} },
	})
	ctx := context.Background()
	send := func(items ...sdk.Item) []int {
		t.Helper()
		rs, err := l.Send(ctx, sdk.Batch{ID: "b", Items: items})
		if err != nil || len(rs) != len(items) {
			t.Fatalf("send: %+v %v", rs, err)
		}
		codes := make([]int, len(rs))
		for i, r := range rs {
			codes[i] = r.StatusCode
		}
		return codes
	}
	item := func(a sdk.Action, id string, ldt int64) sdk.Item {
		it := plugintest.Item(a, "ORDERS", id)
		it.LastDirtyTimestamp = ldt
		return it
	}
	if got := send(item(sdk.ActionRegister, "o-1", 100), item(sdk.ActionHeartbeat, "o-1", 100), item(sdk.ActionHeartbeat, "o-2", 100),
		item(sdk.ActionStatusUpdate, "o-1", 100), item(plugintest.CustomAction, "o-9", 0)); !slices.Equal(got, []int{200, 200, 404, 200, 200}) {
		t.Fatalf("answers %v, want [200 200 404 200 200]", got)
	}
	inst, ok := l.Node.Instances()["ORDERS/o-1"]
	if !ok {
		t.Fatalf("the receiving node holds %v", l.Node.Instances())
	}
	if s, o := statusOf(t, inst); s != "OUT_OF_SERVICE" || o != "OUT_OF_SERVICE" {
		t.Fatalf("after a status update: status %s, overridden %s", s, o)
	}
	// A heartbeat newer than the node's copy: 404 (register again); older: 409 with the node's copy.
	rs, err := l.Send(ctx, sdk.Batch{ID: "c", Items: []sdk.Item{item(sdk.ActionHeartbeat, "o-1", 200), item(sdk.ActionHeartbeat, "o-1", 50),
		item(sdk.ActionRegister, "o-1", 50), item(sdk.ActionDeleteStatusOverride, "o-1", 100)}})
	if err != nil || len(rs) != 4 || rs[0].StatusCode != 404 || rs[1].StatusCode != 409 || rs[2].StatusCode != 200 || rs[3].StatusCode != 200 {
		t.Fatalf("answers %+v %v, want 404, 409, 200, 200", rs, err)
	}
	if s, _ := statusOf(t, rs[1].Entity); s != "OUT_OF_SERVICE" {
		t.Fatalf("the 409's entity is not the node's copy: %s", rs[1].Entity)
	}
	if s, o := statusOf(t, l.Node.Instances()["ORDERS/o-1"]); s != "UP" || o != "UNKNOWN" {
		t.Fatalf("an older register replaced the node's copy, or the override stayed: status %s, overridden %s", s, o)
	}
	if got := send(item(sdk.ActionCancel, "o-1", 0), item(sdk.ActionCancel, "o-1", 0)); !slices.Equal(got, []int{200, 404}) {
		t.Fatalf("cancel twice: %v, want [200 404]", got)
	}
	if len(l.Node.Instances()) != 0 {
		t.Fatalf("after the cancel the node holds %v", l.Node.Instances())
	}
	if n := len(l.Node.ReceivedItems()); n != 11 {
		t.Fatalf("the receiving node recorded %d items, want 11", n)
	}
	l.Node.SetErr(errors.New("an action handler is restarting"))
	if _, err := l.Send(ctx, plugintest.Batch("d", 2)); sdk.ClassOf(err) != sdk.Congestion {
		t.Fatalf("a node that cannot take the batch: %v (%s), want congestion", err, sdk.ClassOf(err))
	}
}
