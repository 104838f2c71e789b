package registry_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/heraldhq/herald/core/registry"
)

func TestAppSummaries(t *testing.T) {
	r := registry.New(registry.DefaultConfig())
	add := func(app, id string, s registry.Status) {
		t.Helper()
		inst := &registry.Instance{InstanceID: id, HostName: id, App: app, IPAddr: "10.0.0.1", Status: s,
			DataCenterInfo:    registry.DataCenterInfo{Class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", Name: "MyOwn"},
			HasDataCenterInfo: true, LastDirtyTimestamp: 1000}
		if err := r.Register(context.Background(), inst, registry.FromClient); err != nil {
			t.Fatal(err)
		}
	}
	add("orders", "o1", registry.StatusUp)
	add("ORDERS", "o2", registry.StatusDown)
	add("ORDERS", "o3", registry.StatusUp)
	add("BILLING", "b1", registry.StatusStarting)
	add("GONE", "g1", registry.StatusUp)
	r.Cancel(context.Background(), "GONE", "g1", registry.FromClient)

	want := []registry.AppSummary{
		{Name: "BILLING", Instances: 1, Statuses: map[registry.Status]int{registry.StatusStarting: 1}},
		{Name: "ORDERS", Instances: 3, Statuses: map[registry.Status]int{registry.StatusUp: 2, registry.StatusDown: 1}},
	}
	if got := r.AppSummaries(); !reflect.DeepEqual(got, want) {
		t.Errorf("AppSummaries() = %+v, want %+v", got, want)
	}
}
