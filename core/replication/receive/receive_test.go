package receive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication/receive"
	"github.com/heraldhq/herald/sdk"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func bare(app, id string, ts int64, extra string) []byte {
	s := fmt.Sprintf(`{"instanceId":%q,"hostName":"host-%s","app":%q,"ipAddr":"10.0.0.1","status":"UP",`+
		`"overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},`+
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"vipAddress":"demo"%s`, id, id, app, extra)
	if ts != 0 {
		s += fmt.Sprintf(`,"lastDirtyTimestamp":"%d"`, ts)
	}
	return []byte(s + "}")
}

// overrideThenRegister is a register, an override (version 5000), its removal (6000), then a
// register of the copy with the override, carrying registerVersion.
func overrideThenRegister(reg sdk.Item, registerVersion int64) []sdk.Item {
	return []sdk.Item{reg,
		{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "OUT_OF_SERVICE", StatusVersion: 5000},
		{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "UP", StatusVersion: 6000},
		{Action: sdk.ActionRegister, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, StatusVersion: registerVersion,
			Instance: outOfService(bare("DEMO", "r1", 1000, ""))}}
}

// outOfService turns a bare instance into one that shows an OUT_OF_SERVICE override.
func outOfService(b []byte) []byte {
	s := strings.Replace(string(b), `"status":"UP"`, `"status":"OUT_OF_SERVICE"`, 1)
	return []byte(strings.Replace(s, `"overriddenStatus":"UNKNOWN"`, `"overriddenStatus":"OUT_OF_SERVICE"`, 1))
}

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg := registry.New(registry.DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go reg.Start(ctx)
	reg.OpenForTraffic(0)
	return reg
}

func TestApply(t *testing.T) {
	type check func(t *testing.T, reg *registry.Registry, res []sdk.ItemResult)
	statusOf := func(id string, want registry.Status) check {
		return func(t *testing.T, reg *registry.Registry, _ []sdk.ItemResult) {
			t.Helper()
			inst, ok := reg.Instance("DEMO", id)
			if !ok || inst.Status != want {
				t.Errorf("%s: found %v, status %v, want %s", id, ok, inst, want)
			}
		}
	}
	absent := func(id string) check {
		return func(t *testing.T, reg *registry.Registry, _ []sdk.ItemResult) {
			t.Helper()
			if _, ok := reg.Instance("DEMO", id); ok {
				t.Errorf("%s is registered", id)
			}
		}
	}
	reg1 := sdk.Item{Action: sdk.ActionRegister, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "UP", Instance: bare("DEMO", "r1", 1000, "")}
	cases := []struct {
		name   string
		items  []sdk.Item
		codes  []int
		checks []check
	}{
		{
			name:   "register then heartbeat",
			items:  []sdk.Item{reg1, {Action: sdk.ActionHeartbeat, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "UP"}},
			codes:  []int{200, 200},
			checks: []check{statusOf("r1", registry.StatusUp)},
		},
		{
			name: "section 7 test 33",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "ghost", LastDirtyTimestamp: 1000},
				{Action: sdk.ActionCancel, App: "DEMO", ID: "ghost2"}},
			codes: []int{200, 404, 404},
		},
		{
			// A register sent while an override held, delayed past the override's removal: its
			// status version is older, so its override is not installed again. One that knew a
			// later status change is.
			name:   "delayed register does not restore a removed override",
			items:  overrideThenRegister(reg1, 5000),
			codes:  []int{200, 200, 200, 200},
			checks: []check{statusOf("r1", registry.StatusUp)},
		},
		{
			name:   "replicated register with a later status version installs its override",
			items:  overrideThenRegister(reg1, 7000),
			codes:  []int{200, 200, 200, 200},
			checks: []check{statusOf("r1", registry.StatusOutOfService)},
		},
		{
			name:  "register without instanceInfo",
			items: []sdk.Item{{Action: sdk.ActionRegister, App: "DEMO", ID: "r2"}},
			codes: []int{500},
		},
		{
			name:  "register with unparsable instanceInfo",
			items: []sdk.Item{{Action: sdk.ActionRegister, App: "DEMO", ID: "r2", Instance: []byte(`{"app":`)}},
			codes: []int{500},
		},
		{
			name:   "register refused by validation answers 200 and stores nothing",
			items:  []sdk.Item{{Action: sdk.ActionRegister, App: "DEMO", ID: "r3", Instance: bare("DEMO", "r3", 1000, `,"hostName":""`)}},
			codes:  []int{200},
			checks: []check{absent("r3")},
		},
		{
			name:  "register without lastDirtyTimestamp takes the clock",
			items: []sdk.Item{{Action: sdk.ActionRegister, App: "DEMO", ID: "r4", Instance: bare("DEMO", "r4", 0, "")}},
			codes: []int{200},
			checks: []check{func(t *testing.T, reg *registry.Registry, _ []sdk.ItemResult) {
				if inst, ok := reg.Instance("DEMO", "r4"); !ok || inst.LastDirtyTimestamp != 42_000 {
					t.Errorf("r4 lastDirtyTimestamp = %v", inst)
				}
			}},
		},
		{
			name: "heartbeat conflict carries the bare stored copy",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "r1", LastDirtyTimestamp: 500}},
			codes: []int{200, 409},
			checks: []check{func(t *testing.T, _ *registry.Registry, res []sdk.ItemResult) {
				var m map[string]any
				if err := json.Unmarshal(res[1].Entity, &m); err != nil {
					t.Fatalf("entity: %v: %s", err, res[1].Entity)
				}
				if m["lastDirtyTimestamp"] != "1000" || m["instance"] != nil {
					t.Errorf("entity = %s", res[1].Entity)
				}
			}},
		},
		{
			name: "newer heartbeat stores its override",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "r1", LastDirtyTimestamp: 2000, OverriddenStatus: "OUT_OF_SERVICE"}},
			codes: []int{200, 404},
			checks: []check{func(t *testing.T, reg *registry.Registry, _ []sdk.ItemResult) {
				if reg.Overrides()["r1"] != registry.StatusOutOfService {
					t.Errorf("overrides = %v", reg.Overrides())
				}
			}},
		},
		{
			name: "newer heartbeat with an invalid override",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "r1", LastDirtyTimestamp: 2000, OverriddenStatus: "bogus"}},
			codes: []int{200, 500},
		},
		{
			name: "status update and removal",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "OUT_OF_SERVICE"},
				{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: "nope", LastDirtyTimestamp: 1000, Status: "UP"},
				{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "Up"},
				{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "UP"},
			},
			codes:  []int{200, 200, 404, 500, 200},
			checks: []check{statusOf("r1", registry.StatusUp)},
		},
		{
			name: "delete override failures",
			items: []sdk.Item{reg1,
				{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "nope", LastDirtyTimestamp: 1000},
				{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "r1"},
				{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "r1", LastDirtyTimestamp: 1000, Status: "MAYBE"},
			},
			codes: []int{200, 404, 500, 500},
		},
		{
			name: "cancel, lower-case app, unknown action, and processing continues",
			items: []sdk.Item{reg1,
				{Action: "Rename", App: "DEMO", ID: "r1"},
				{Action: sdk.ActionCancel, App: "demo", ID: "r1"},
				{Action: sdk.ActionCancel, App: "DEMO", ID: "r1"},
			},
			codes:  []int{200, 400, 200, 404},
			checks: []check{absent("r1")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t)
			rcv := receive.New(reg, receive.WithClock(fixedClock{time.UnixMilli(42_000)}))
			res := rcv.Apply(context.Background(), tc.items)
			if len(res) != len(tc.items) {
				t.Fatalf("%d results for %d items", len(res), len(tc.items))
			}
			for i, want := range tc.codes {
				if res[i].StatusCode != want {
					t.Errorf("item %d (%s %s): status %d, want %d", i, tc.items[i].Action, tc.items[i].ID, res[i].StatusCode, want)
				}
			}
			for _, c := range tc.checks {
				c(t, reg, res)
			}
		})
	}
}

func TestApplySpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := newRegistry(t)
	rcv := receive.New(reg, receive.WithTracer(tp.Tracer("test")))

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	res := rcv.Apply(context.Background(), []sdk.Item{
		{Action: sdk.ActionCancel, App: "DEMO", ID: "x", TraceParent: "00-" + traceID + "-" + parentID + "-01"},
		{Action: sdk.ActionCancel, App: "DEMO", ID: "y"},
		{Action: sdk.ActionCancel, App: "DEMO", ID: "z", TraceParent: "00-" + traceID + "-" + parentID + "-00"},
	})
	if res[0].StatusCode != 404 || res[1].StatusCode != 404 || res[2].StatusCode != 404 {
		t.Fatalf("results = %v", res)
	}
	// Only the sampled item gets an apply span: untraced and unsampled items cost no span.
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if got := spans[0].SpanContext.TraceID().String(); got != traceID {
		t.Errorf("traced item: trace %s, want the sender's %s", got, traceID)
	}
	if got := spans[0].Parent.SpanID().String(); got != parentID {
		t.Errorf("traced item: parent %s, want the sender's task span %s", got, parentID)
	}
	if spans[0].Name != "replication.apply Cancel" {
		t.Errorf("span name = %q", spans[0].Name)
	}
}
