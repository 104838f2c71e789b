package receive_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/replication/receive"
	"github.com/heraldhq/herald/sdk"
)

// An instance that registry.ValidateInstance refuses gets 400 for its item alone; the items around
// it are applied, and nothing of it is stored. Eureka's own validation failures keep their 200.
func TestApplyRefusesPoisonPerItem(t *testing.T) {
	poison := []struct{ name, extra string }{
		{"metadata key a×b", `,"metadata":{"a×b":"v"}`},
		{"metadata key a:b:c", `,"metadata":{"a:b:c":"v"}`},
		{"zero-width space in a key", `,"metadata":{"a` + "\u200b" + `b":"v"}`},
		{"control character in a value", `,"metadata":{"k":"\u0001"}`},
		{"dataCenterInfo metadata key", `,"dataCenterInfo":{"name":"MyOwn","metadata":{"x:y":"1"}}`},
		{"lease overflow", `,"leaseInfo":{"renewalIntervalInSecs":10000000000,"durationInSecs":90}`},
		{"VIP list", `,"vipAddress":"` + strings.Repeat(",", 250000) + `"`},
	}
	for _, p := range poison {
		t.Run(p.name, func(t *testing.T) {
			reg := newRegistry(t)
			rcv := receive.New(reg)
			bad := bare("DEMO", "bad", 1000, p.extra)
			res := rcv.Apply(context.Background(), []sdk.Item{
				{Action: sdk.ActionRegister, App: "DEMO", ID: "ok1", LastDirtyTimestamp: 1000, Instance: bare("DEMO", "ok1", 1000, "")},
				{Action: sdk.ActionRegister, App: "DEMO", ID: "bad", LastDirtyTimestamp: 1000, Instance: bad},
				{Action: sdk.ActionRegister, App: "DEMO", ID: "ok2", LastDirtyTimestamp: 1000, Instance: bare("DEMO", "ok2", 1000, "")},
			})
			if len(res) != 3 || res[0].StatusCode != 200 || res[1].StatusCode != 400 || res[2].StatusCode != 200 {
				t.Fatalf("results %+v, want 200, 400, 200", res)
			}
			if _, ok := reg.Instance("DEMO", "bad"); ok {
				t.Fatal("the refused instance was stored")
			}
			if reg.Stats().Instances != 2 {
				t.Fatalf("%d instances, want the 2 good ones", reg.Stats().Instances)
			}
		})
	}
	t.Run("instanceInfo not UTF-8", func(t *testing.T) {
		reg := newRegistry(t)
		res := receive.New(reg).Apply(context.Background(), []sdk.Item{
			{Action: sdk.ActionRegister, App: "DEMO", ID: "bad", Instance: bare("DEMO", "bad", 1000, `,"metadata":{"a`+"\xff"+`":"v"}`)}})
		if res[0].StatusCode != 400 || reg.Stats().Instances != 0 {
			t.Fatalf("result %+v, %d instances; want 400 and none", res, reg.Stats().Instances)
		}
	})
	t.Run("Eureka's validation keeps its 200", func(t *testing.T) {
		reg := newRegistry(t)
		res := receive.New(reg).Apply(context.Background(), []sdk.Item{
			{Action: sdk.ActionRegister, App: "DEMO", ID: "x", Instance: []byte(`{"instanceId":"x","app":"DEMO","hostName":"h"}`)}})
		if res[0].StatusCode != 200 || reg.Stats().Instances != 0 {
			t.Fatalf("result %+v, %d instances; want 200 and none (Missing ip address)", res, reg.Stats().Instances)
		}
	})
}
