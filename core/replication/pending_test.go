package replication

import (
	"fmt"
	"testing"

	"github.com/heraldhq/herald/core/registry"
)

func task(action registry.Action, id string, accepted, expires int64) *Task {
	return &Task{ID: TaskID(action, "APP", id), Action: action, App: "APP", Instance: id, Accepted: accepted, Expires: expires}
}

func ids(ts []*Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func pendingIDs(s *pendingStage) []string {
	var out []string
	for e := s.order.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*Task).ID)
	}
	return out
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestPendingDedupeInPlace(t *testing.T) {
	var c counters
	s := newPendingStage(10, 1<<30, &c)
	s.add(task(registry.ActionHeartbeat, "a", 0, 100))
	s.add(task(registry.ActionRegister, "b", 0, 100))
	newer := task(registry.ActionHeartbeat, "a", 5, 100)
	replaced, _ := s.add(newer)
	if replaced == nil || replaced == newer {
		t.Fatal("the older task must be reported as replaced")
	}
	if got := pendingIDs(s); !eq(got, []string{"heartbeat#APP/a", "register#APP/b"}) {
		t.Fatalf("order %v: a newer task must keep the older one's position", got)
	}
	if s.oldest() != newer || c.superseded.Load() != 1 {
		t.Fatal("the newest version must be the one pending")
	}
	// A heartbeat and a register of one instance are different tasks.
	if s.len() != 2 {
		t.Fatalf("len %d", s.len())
	}
}

func TestPendingRetryFirstInOriginalOrder(t *testing.T) {
	var c counters
	s := newPendingStage(10, 1<<30, &c)
	s.add(task(registry.ActionRegister, "new1", 10, 100))
	s.add(task(registry.ActionRegister, "new2", 10, 100))
	failed := []*Task{task(registry.ActionRegister, "r1", 0, 100), task(registry.ActionRegister, "r2", 0, 100),
		task(registry.ActionRegister, "new2", 0, 100), task(registry.ActionCancel, "old", 0, 5)}
	sup, exp, ovf := s.requeue(failed, 20)
	if got := pendingIDs(s); !eq(got, []string{"register#APP/r1", "register#APP/r2", "register#APP/new1", "register#APP/new2"}) {
		t.Fatalf("order %v", got)
	}
	if !eq(ids(sup), []string{"register#APP/new2"}) || !eq(ids(exp), []string{"cancel#APP/old"}) || len(ovf) != 0 {
		t.Fatalf("superseded %v expired %v overflow %v", ids(sup), ids(exp), ids(ovf))
	}
}

func TestPendingOverflowDropsOldest(t *testing.T) {
	var c counters
	s := newPendingStage(3, 1<<30, &c)
	for i := 0; i < 5; i++ {
		s.add(task(registry.ActionRegister, fmt.Sprint(i), int64(i), 100))
	}
	if got := pendingIDs(s); !eq(got, []string{"register#APP/2", "register#APP/3", "register#APP/4"}) || c.overflow.Load() != 2 {
		t.Fatalf("order %v overflow %d", got, c.overflow.Load())
	}
	// A full stage refuses retried work rather than newer work.
	_, _, ovf := s.requeue([]*Task{task(registry.ActionRegister, "r", 0, 100)}, 0)
	if len(ovf) != 1 || s.len() != 3 {
		t.Fatal("retry into a full stage must overflow")
	}
}

func TestPendingCutAndExpiry(t *testing.T) {
	var c counters
	s := newPendingStage(100, 1<<30, &c)
	for i := 0; i < 10; i++ {
		exp := int64(1000)
		if i%3 == 0 {
			exp = 50 // tasks 0, 3, 6, 9 expire at 50
		}
		s.add(task(registry.ActionRegister, fmt.Sprint(i), 0, exp))
	}
	b, exp := s.cut(4, 1<<30, 60, nil)
	if !eq(ids(b), []string{"register#APP/1", "register#APP/2", "register#APP/4", "register#APP/5"}) || len(exp) != 2 {
		t.Fatalf("batch %v expired %v", ids(b), ids(exp))
	}
	if s.dropExpiredFront(60); s.oldest().ID != "register#APP/7" {
		t.Fatalf("front %s", s.oldest().ID)
	}
	if c.expired.Load() != 3 {
		t.Fatalf("expired %d", c.expired.Load())
	}
}

func TestShaper(t *testing.T) {
	s := shaper{congestionDelay: 1000, failureDelay: 100, cap: 30000}
	if s.delay(0) != 0 {
		t.Fatal("no failure, no delay")
	}
	s.record(classTransient, 1000)
	if d := s.delay(1050); d != 50 {
		t.Fatalf("transient: %d", d)
	}
	s.record(classCongestion, 1060)
	if d := s.delay(1100); d != 960 {
		t.Fatalf("congestion takes precedence: %d", d)
	}
	if d := s.delay(2100); d != 0 {
		t.Fatalf("after both delays: %d", d)
	}
	capped := shaper{congestionDelay: 60000, failureDelay: 100, cap: 30000}
	capped.record(classCongestion, 1)
	if d := capped.delay(1); d != 30000 {
		t.Fatalf("cap: %d", d)
	}
}

func TestTaskItems(t *testing.T) {
	inst := &registry.Instance{InstanceID: "i1", App: "APP", Status: registry.StatusUp, LastDirtyTimestamp: 7,
		HasLeaseInfo: true, LeaseInfo: registry.LeaseInfo{RenewalIntervalSecs: 10}}
	enc := func(*registry.Instance) []byte { return []byte(`{"x":1}`) }
	reg := NewTask(registry.Write{Action: registry.ActionRegister, App: "APP", ID: "i1", Instance: inst,
		LastDirtyTimestamp: 7, Status: registry.StatusUp, OverriddenStatus: registry.StatusUnknown}, noSpan, 1000, 0)
	if reg.Expires != 11000 || reg.ID != "register#APP/i1" {
		t.Fatalf("register task %+v: expiry is the renewal interval", reg)
	}
	it := reg.item(enc)
	if string(it.Instance) != `{"x":1}` || it.OverriddenStatus != "" || it.LastDirtyTimestamp != 7 || it.TraceParent != "" {
		t.Fatalf("register item %+v", it)
	}
	cancel := NewTask(registry.Write{Action: registry.ActionCancel, App: "APP", ID: "i1"}, noSpan, 1000, 30*1e9)
	if cancel.Expires != 31000 {
		t.Fatalf("cancel expiry %d", cancel.Expires)
	}
	if it := cancel.item(enc); it.Instance != nil || it.Status != "" || it.LastDirtyTimestamp != 0 {
		t.Fatalf("cancel item %+v", it)
	}
	hb := NewTask(registry.Write{Action: registry.ActionHeartbeat, App: "APP", ID: "i1", Instance: inst,
		LastDirtyTimestamp: 7, Status: registry.StatusUp, OverriddenStatus: registry.StatusOutOfService}, noSpan, 0, 0)
	if it := hb.item(enc); it.OverriddenStatus != "OUT_OF_SERVICE" || it.Instance != nil {
		t.Fatalf("heartbeat item %+v", it)
	}
}
