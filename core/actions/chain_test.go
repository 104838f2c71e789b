package actions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/actions"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication/receive"
	"github.com/heraldhq/herald/sdk"
)

func bare(app, id string, meta string) []byte {
	return []byte(fmt.Sprintf(`{"instanceId":%q,"hostName":"host-%s","app":%q,"ipAddr":"10.0.0.1","status":"UP",`+
		`"port":{"$":8080,"@enabled":"true"},`+
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"vipAddress":"demo","lastDirtyTimestamp":"1000"%s}`,
		id, id, app, meta))
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

func register(id string) sdk.Item {
	return sdk.Item{Action: sdk.ActionRegister, App: "demo", ID: id, Instance: bare("DEMO", id, "")}
}

// recorder is an action handler that records its calls and answers from functions.
type recorder struct {
	sdk.UnimplementedActionHandler
	specs    []sdk.ActionSpec
	mu       sync.Mutex
	calls    []string
	validate func(sdk.Item) int
	apply    func(sdk.Item) int
	accept   func(sdk.Item) (sdk.Item, error)
	observed []sdk.ReceiveRequest
	fail     error
	panics   bool
}

func (r *recorder) Actions() []sdk.ActionSpec { return r.specs }

func (r *recorder) Accept(_ context.Context, it sdk.Item) (sdk.Item, error) {
	if r.accept != nil {
		return r.accept(it)
	}
	return it, nil
}

func (r *recorder) Receive(_ context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, it := range req.Items {
		ids = append(ids, it.ID)
	}
	r.calls = append(r.calls, fmt.Sprintf("%s %s %s", req.Mode, req.Action, strings.Join(ids, ",")))
	if r.panics {
		panic("boom")
	}
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]sdk.ItemResult, len(req.Items))
	for i, it := range req.Items {
		switch req.Mode {
		case sdk.ReceiveValidate:
			if r.validate != nil {
				out[i].StatusCode = r.validate(it)
			}
		case sdk.ReceiveApply:
			out[i].StatusCode = r.apply(it)
		case sdk.ReceiveObserve:
			r.observed = append(r.observed, req)
			return nil, nil
		}
	}
	return out, nil
}

func TestRunsKeepOrderAndGroupByAction(t *testing.T) {
	reg := newRegistry(t)
	v := &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveValidate},
		{Action: sdk.ActionHeartbeat, Receive: sdk.ReceiveValidate}}}
	c, err := actions.New([]actions.Handler{{Name: "v", Impl: v}}, receive.New(reg))
	if err != nil {
		t.Fatal(err)
	}
	items := []sdk.Item{register("a"), register("b"),
		{Action: sdk.ActionHeartbeat, App: "demo", ID: "a", LastDirtyTimestamp: 1000}, register("c")}
	rs, err := c.ApplyBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"validate Register a,b", "validate Heartbeat a", "validate Register c"}
	if fmt.Sprint(v.calls) != fmt.Sprint(want) {
		t.Errorf("calls = %q, want %q", v.calls, want)
	}
	for i, r := range rs {
		if r.StatusCode != http.StatusOK {
			t.Errorf("item %d: %d", i, r.StatusCode)
		}
	}
	if _, ok := reg.Instance("DEMO", "c"); !ok {
		t.Error("c was not registered by the built-in apply")
	}
}

func TestValidatorRefusesAndObserverSeesEverything(t *testing.T) {
	reg := newRegistry(t)
	v := &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveValidate}},
		validate: func(it sdk.Item) int {
			if it.ID == "bad" {
				return http.StatusUnprocessableEntity
			}
			return 0
		}}
	o := &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveObserve}}}
	c, err := actions.New([]actions.Handler{{Name: "v", Impl: v}, {Name: "o", Impl: o}}, receive.New(reg))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.ApplyBatch(context.Background(), []sdk.Item{register("good"), register("bad")})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].StatusCode != 200 || rs[1].StatusCode != 422 {
		t.Errorf("results = %+v, want 200 then 422", rs)
	}
	if _, ok := reg.Instance("DEMO", "bad"); ok {
		t.Error("a refused item was applied")
	}
	if _, ok := reg.Instance("DEMO", "good"); !ok {
		t.Error("an accepted item was not applied")
	}
	if len(o.observed) != 1 || len(o.observed[0].Items) != 2 || o.observed[0].Results[1].StatusCode != 422 {
		t.Errorf("observer saw %+v", o.observed)
	}
}

func TestCustomActionNeedsOneApplier(t *testing.T) {
	reg := newRegistry(t)
	obs := &recorder{specs: []sdk.ActionSpec{{Action: "Audit", Receive: sdk.ReceiveObserve}}}
	if _, err := actions.New([]actions.Handler{{Name: "obs", Impl: obs}}, receive.New(reg)); err == nil ||
		!strings.Contains(err.Error(), `"Audit" (declared by "obs")`) {
		t.Errorf("custom action without applier: %v", err)
	}
	a1 := &recorder{specs: []sdk.ActionSpec{{Action: "Audit", Receive: sdk.ReceiveApply}}, apply: func(sdk.Item) int { return 200 }}
	a2 := &recorder{specs: []sdk.ActionSpec{{Action: "Audit", Receive: sdk.ReceiveApply}}}
	if _, err := actions.New([]actions.Handler{{Name: "a1", Impl: a1}, {Name: "a2", Impl: a2}}, receive.New(reg)); err == nil ||
		!strings.Contains(err.Error(), `"a1" and "a2"`) {
		t.Errorf("two appliers: %v", err)
	}
	c, err := actions.New([]actions.Handler{{Name: "a1", Impl: a1}}, receive.New(reg))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.ApplyBatch(context.Background(), []sdk.Item{{Action: "Audit", App: "x", ID: "1", Payload: []byte("p")},
		{Action: "Unknown", App: "x", ID: "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].StatusCode != 200 || rs[1].StatusCode != 400 {
		t.Errorf("results = %+v, want 200 (applied by a1) and 400 (no handler)", rs)
	}
	if a1.calls[0] != "apply Audit 1" {
		t.Errorf("a1 calls = %q", a1.calls)
	}
}

func TestHandlerFailureFailsTheBatch(t *testing.T) {
	reg := newRegistry(t)
	for name, h := range map[string]sdk.ActionHandler{
		"error": &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveValidate}}, fail: errors.New("down")},
		"panic": &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveObserve}}, panics: true},
		// An applier that answers the wrong number of results fails the batch too.
		"short": &shortApplier{&recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Receive: sdk.ReceiveApply}}}},
	} {
		c, err := actions.New([]actions.Handler{{Name: "h", Impl: h}}, receive.New(reg))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ApplyBatch(context.Background(), []sdk.Item{register("x")}); err == nil || !strings.Contains(err.Error(), `"h"`) {
			t.Errorf("%s: want an error naming the handler, got %v", name, err)
		}
	}
}

type shortApplier struct{ *recorder }

func (s *shortApplier) Receive(context.Context, sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	return nil, nil
}

func TestAcceptRegistration(t *testing.T) {
	reg := newRegistry(t)
	newInst := func(id string) *registry.Instance {
		inst, err := codec.DecodeInstanceBare(bare("DEMO", id, ""))
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	refuse := &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true}}, accept: func(it sdk.Item) (sdk.Item, error) {
		if it.ID == "no" {
			return it, sdk.Refuse(422, "metadata key %q is required", "owner")
		}
		return it, nil
	}}
	enrich := &recorder{specs: []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true}}, accept: func(it sdk.Item) (sdk.Item, error) {
		if it.ID == "swap" {
			it.Instance = bare("DEMO", "other", "")
			return it, nil
		}
		it.Instance = bare("DEMO", it.ID, `,"metadata":{"zone":"eu-1"}`)
		return it, nil
	}}
	c, err := actions.New([]actions.Handler{{Name: "refuse", Impl: refuse}, {Name: "enrich", Impl: enrich}}, receive.New(reg))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Accepts(sdk.ActionRegister) || c.Accepts(sdk.ActionHeartbeat) {
		t.Error("Accepts is wrong")
	}
	inst := newInst("no")
	var rf *actions.Refused
	if err := c.AcceptRegistration(context.Background(), inst); !errors.As(err, &rf) || rf.Code != 422 ||
		rf.Message != `metadata key "owner" is required` {
		t.Errorf("refusal = %v", err)
	}
	inst = newInst("yes")
	if err := c.AcceptRegistration(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if inst.Metadata["zone"] != "eu-1" {
		t.Errorf("the enriched instance was not kept: metadata %v", inst.Metadata)
	}
	if err := c.AcceptRegistration(context.Background(), newInst("swap")); !errors.As(err, &rf) || rf.Code != 500 {
		t.Errorf("a handler that changes the id must be refused with 500, got %v", err)
	}
}

func TestHost(t *testing.T) {
	reg := newRegistry(t)
	builtin := receive.New(reg)
	audit := &recorder{specs: []sdk.ActionSpec{{Action: "Audit", Receive: sdk.ReceiveApply}}, apply: func(sdk.Item) int { return 200 }}
	c, err := actions.New([]actions.Handler{{Name: "audit", Impl: audit}}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	h := &actions.Host{}
	ctx := context.Background()
	if _, _, err := h.Instance(ctx, "demo", "a"); !errors.Is(err, sdk.ErrNoHost) {
		t.Errorf("an unbound host must answer ErrNoHost, got %v", err)
	}
	var replicated []sdk.Item
	h.Bind(actions.Target{Registry: reg, Builtin: builtin, Chain: c, Replicate: func(_ context.Context, items []sdk.Item) error {
		replicated = append(replicated, items...)
		return nil
	}})
	if rs, err := h.Apply(ctx, []sdk.Item{register("a")}); err != nil || rs[0].StatusCode != 200 {
		t.Fatalf("apply: %v %v", rs, err)
	}
	b, found, err := h.Instance(ctx, "demo", "a")
	if err != nil || !found || !strings.Contains(string(b), `"instanceId":"a"`) {
		t.Errorf("instance: %s %v %v", b, found, err)
	}
	if _, err := h.Apply(ctx, []sdk.Item{{Action: "Audit", App: "x", ID: "1"}}); err == nil {
		t.Error("Apply must refuse a custom action")
	}
	if err := h.Replicate(ctx, []sdk.Item{{Action: "Nope", App: "x", ID: "1"}}); err == nil {
		t.Error("Replicate must refuse an action no handler applies")
	}
	if err := h.Replicate(ctx, []sdk.Item{{Action: "Audit", App: "x", ID: "1"}}); err != nil || len(replicated) != 1 {
		t.Errorf("replicate: %v, %d items", err, len(replicated))
	}
	rs, err := h.Receive(ctx, sdk.Batch{Items: []sdk.Item{{Action: "Audit", App: "x", ID: "2"}, register("b")}})
	if err != nil || rs[0].StatusCode != 200 || rs[1].StatusCode != 200 {
		t.Errorf("receive: %v %v", rs, err)
	}
	if _, ok := reg.Instance("DEMO", "b"); !ok {
		t.Error("receive did not apply the register")
	}
}

// TestHostReceiveClockSkew: a batch from a transport plugin's receiving side (the grpc transport,
// or any custom one) is held to the same clock skew bound per item as the batch endpoint: an item
// stamped further ahead is answered 400 alone, and the rest of the batch is applied.
func TestHostReceiveClockSkew(t *testing.T) {
	reg := newRegistry(t)
	builtin := receive.New(reg)
	c, err := actions.New(nil, builtin)
	if err != nil {
		t.Fatal(err)
	}
	h := &actions.Host{}
	h.Bind(actions.Target{Registry: reg, Builtin: builtin, Chain: c, MaxClockSkew: time.Minute})
	ahead := register("ahead")
	ahead.LastDirtyTimestamp = time.Now().Add(time.Hour).UnixMilli()
	versioned := register("versioned")
	versioned.StatusVersion = time.Now().Add(time.Hour).UnixMilli()
	rs, err := h.Receive(context.Background(), sdk.Batch{Items: []sdk.Item{ahead, register("fine"), versioned}})
	if err != nil || len(rs) != 3 || rs[0].StatusCode != http.StatusBadRequest || rs[1].StatusCode != http.StatusOK ||
		rs[2].StatusCode != http.StatusBadRequest {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if _, ok := reg.Instance("DEMO", "fine"); !ok {
		t.Error("the item within the bound was not applied")
	}
	for _, id := range []string{"ahead", "versioned"} {
		if _, ok := reg.Instance("DEMO", id); ok {
			t.Errorf("%s, stamped an hour ahead, was applied", id)
		}
	}
}
