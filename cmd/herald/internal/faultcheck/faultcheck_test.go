package faultcheck

import (
	"bufio"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func op(kind OpKind, ts int64, res Outcome) *Op {
	app := ownedApp
	if kind == OpConflict {
		app = conflictApp
	}
	return &Op{Kind: kind, App: app, ID: "i", TS: ts, Result: res}
}

func present(status, ov string, ldt int64, v int64) State {
	return State{Present: true, Status: status, Overridden: ov, LDT: ldt, V: fmt.Sprint(v)}
}

func TestFold(t *testing.T) {
	for _, c := range []struct {
		name string
		ops  []*Op
		want State
	}{
		{"register", []*Op{op(OpRegister, 10, OK)}, present("UP", "UNKNOWN", 10, 10)},
		{"override keeps ldt without ts", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 0, OK)},
			present("OUT_OF_SERVICE", "OUT_OF_SERVICE", 10, 10)},
		{"override adopts a larger ts", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 12, OK)},
			present("OUT_OF_SERVICE", "OUT_OF_SERVICE", 12, 10)},
		{"register under an override stays out of service", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 0, OK), op(OpRegister, 13, OK)},
			present("OUT_OF_SERVICE", "OUT_OF_SERVICE", 13, 13)},
		{"remove override", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 11, OK), op(OpRemoveOverride, 12, OK)},
			present("UP", "UNKNOWN", 12, 10)},
		{"remove without override changes nothing", []*Op{op(OpRegister, 10, OK), op(OpRemoveOverride, 12, OK)},
			present("UP", "UNKNOWN", 10, 10)},
		{"cancel", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 11, OK), op(OpCancel, 0, OK)}, State{}},
		{"cancel forgets the override", []*Op{op(OpRegister, 10, OK), op(OpOutOfService, 11, OK), op(OpCancel, 0, OK), op(OpRegister, 14, OK)},
			present("UP", "UNKNOWN", 14, 14)},
		{"status on an absent instance", []*Op{op(OpOutOfService, 11, OK)}, State{}},
	} {
		if got := fold(c.ops); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAllowed(t *testing.T) {
	reg := op(OpRegister, 10, OK)
	cancel := op(OpCancel, 0, Unknown)
	strict, loose, ok := allowed([]*Op{reg, op(OpHeartbeat, 0, OK), op(OpRegister, 11, Failed), cancel})
	if !ok || len(strict) != 2 || len(loose) != 2 {
		t.Fatalf("unknown trailing cancel: strict %v loose %v", strict, loose)
	}
	many := []*Op{op(OpRegister, 1, OK)}
	for i := range 40 { // 2^40 subsets: the checker must not enumerate them
		kind := OpRegister
		if i%2 == 1 {
			kind = OpOutOfService
		}
		o := op(kind, int64(20+i), OK)
		o.Exposed = true
		many = append(many, o)
	}
	strict, loose, ok = allowed(many)
	if !ok || len(strict) != 1 || strict[0] != fold(many) || len(loose) < 20 {
		t.Fatalf("40 exposed operations: ok %v, strict %v, %d loose", ok, strict, len(loose))
	}
	many = append(many, op(OpCancel, 0, OK), op(OpRegister, 70, OK))
	if strict, loose, ok := allowed(many); !ok || len(strict) != 1 || len(loose) != 1 || strict[0].LDT != 70 {
		t.Fatalf("a certain cancel ends every alternative: %v %v", strict, ok)
	}
	exposed := op(OpRegister, 12, OK)
	exposed.Exposed = true
	strict, loose, _ = allowed([]*Op{reg, exposed})
	if len(strict) != 1 || strict[0].LDT != 12 || len(loose) != 2 {
		t.Fatalf("exposed register: strict %v loose %v", strict, loose)
	}
}

func TestAllowedConflict(t *testing.T) {
	ops := []*Op{op(OpConflict, 10, OK), op(OpConflict, 12, Failed), op(OpConflict, 11, OK), op(OpConflict, 13, Unknown)}
	strict, _ := allowedConflict(ops)
	var ldts []int64
	for _, s := range strict {
		ldts = append(ldts, s.LDT)
	}
	if !reflect.DeepEqual(ldts, []int64{11, 13}) {
		t.Fatalf("allowed %v, want 11 (largest acknowledged) or 13 (unknown, larger)", ldts)
	}
}

func TestCheck(t *testing.T) {
	h := NewHistory()
	h.Add(&Op{Kind: OpRegister, App: ownedApp, ID: "a", TS: 10, Result: OK})
	h.Add(&Op{Kind: OpRegister, App: ownedApp, ID: "b", TS: 10, Result: OK})
	h.Add(&Op{Kind: OpCancel, App: ownedApp, ID: "b", Result: OK})
	h.Add(&Op{Kind: OpZombieHeartbeat, App: ownedApp, ID: "b", Result: OK})
	good := map[string]State{ownedApp + "/a": present("UP", "UNKNOWN", 10, 10)}
	if v := h.Check([]map[string]State{good, good}); !v.OK() || v.Instances != 2 {
		t.Fatalf("good registries: %+v", v)
	}
	resurrected := map[string]State{ownedApp + "/a": good[ownedApp+"/a"], ownedApp + "/b": present("UP", "UNKNOWN", 10, 10)}
	if v := h.Check([]map[string]State{good, resurrected}); v.Lost != 1 || v.Diverged != 1 || v.Resurrected != 1 {
		t.Fatalf("a cancelled instance back on one node: %+v", v)
	}
	if v := h.Check([]map[string]State{{}, {}}); v.Lost != 1 || v.Diverged != 0 || v.Missing != 1 {
		t.Fatalf("an acknowledged register missing everywhere: %+v", v)
	}
	stray := map[string]State{ownedApp + "/a": good[ownedApp+"/a"], "X/y": {Present: true}}
	if v := h.Check([]map[string]State{stray, good}); v.Unexpected != 1 {
		t.Fatalf("stray instance: %+v", v)
	}
	meta := good[ownedApp+"/a"]
	meta.Meta = "other"
	if v := h.Check([]map[string]State{good, {ownedApp + "/a": meta}}); v.Diverged != 1 || v.Lost != 0 || v.Differ != 1 {
		t.Fatalf("metadata differs: %+v", v)
	}
}

func TestExpose(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	h := NewHistory()
	quick := &Op{Kind: OpRegister, App: ownedApp, ID: "a", Node: 0, Result: OK, End: at(0)}
	late := &Op{Kind: OpRegister, App: ownedApp, ID: "b", Node: 0, Result: OK, End: at(-5000)}
	partitioned := &Op{Kind: OpRegister, App: ownedApp, ID: "c", Node: 0, Result: OK, End: at(-5000)}
	other := &Op{Kind: OpRegister, App: ownedApp, ID: "d", Node: 1, Result: OK, End: at(0)}
	// Answered just before the kill, read by the client after the process was seen gone.
	dying := &Op{Kind: OpRegister, App: ownedApp, ID: "e", Node: 0, Result: OK, Start: at(400), End: at(600)}
	// Sent after the kill: a restarted process acknowledged it.
	after := &Op{Kind: OpRegister, App: ownedApp, ID: "f", Node: 0, Result: OK, Start: at(700), End: at(800)}
	for _, o := range []*Op{quick, late, partitioned, other, dying, after} {
		h.Add(o)
	}
	kills := map[int][]time.Time{0: {at(500)}}
	h.Expose(kills, nil, time.Second)
	if !quick.Exposed || late.Exposed || other.Exposed || !dying.Exposed || after.Exposed {
		t.Fatalf("without faults: quick %v late %v other %v dying %v after %v", quick.Exposed, late.Exposed, other.Exposed,
			dying.Exposed, after.Exposed)
	}
	late.Exposed = false
	h.Expose(kills, []Interval{{at(-4900), at(0)}}, time.Second)
	if !partitioned.Exposed {
		t.Fatal("a write acknowledged during a partition that lasted until the kill is exposed")
	}
}

func TestScheduleIsSeeded(t *testing.T) {
	a := Schedule(42, 3, 30*time.Second, AllFaults)
	b := Schedule(42, 3, 30*time.Second, AllFaults)
	c := Schedule(43, 3, 30*time.Second, AllFaults)
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) || len(a) < 5 {
		t.Fatalf("schedules: %v / %v / %v", a, b, c)
	}
	for _, f := range a {
		if f.At+f.Dur > 30*time.Second || f.Node < 0 || f.Node > 2 || (f.Kind == FaultLink && (f.Peer == f.Node || f.Peer < 0)) {
			t.Fatalf("bad fault %v", f)
		}
	}
	long := Schedule(42, 3, 60*time.Second, AllFaults)
	for _, f := range a {
		found := false
		for _, g := range long {
			found = found || f == g
		}
		if !found {
			t.Fatalf("a longer schedule lacks %v", f)
		}
	}
	only, err := ParseFaults("pause,slow")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Schedule(1, 3, 30*time.Second, only) {
		if f.Kind != FaultPause && f.Kind != FaultSlow {
			t.Fatalf("fault %v not asked for", f)
		}
	}
	if _, err := ParseFaults("kill,flood"); err == nil {
		t.Fatal("unknown fault accepted")
	}
}

func TestLink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(strings.ToUpper(line)))
				}
			}()
		}
	}()
	l, err := NewLink(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	roundTrip := func() (time.Duration, error) {
		c, err := net.DialTimeout("tcp", l.Addr(), time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		start := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return 0, err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return 0, err
		}
		if line != "PING\n" {
			return 0, fmt.Errorf("got %q", line)
		}
		return time.Since(start), nil
	}
	if _, err := roundTrip(); err != nil {
		t.Fatalf("through the link: %v", err)
	}
	l.Cut()
	if _, err := roundTrip(); err == nil {
		t.Fatal("a cut link carried a round trip")
	}
	l.Heal()
	l.Slow(100 * time.Millisecond)
	if d, err := roundTrip(); err != nil || d < 200*time.Millisecond {
		t.Fatalf("slow link: %v, %v (want at least 2 x 100ms)", d, err)
	}
	l.Heal()
	if _, err := roundTrip(); err != nil {
		t.Fatalf("healed link: %v", err)
	}
}

// TestStatusChangeWithoutItsTimestamp: a herald peer applies a replicated status change but keeps
// its own lastDirtyTimestamp, so when the acceptor dies with the client's newer timestamp (the
// change was exposed), the survivors show the status with the older timestamp. Only the loose
// outcomes allow it.
func TestStatusChangeWithoutItsTimestamp(t *testing.T) {
	reg := op(OpRegister, 10, OK)
	oos := op(OpOutOfService, 20, OK)
	oos.Exposed = true
	strict, loose, ok := allowed([]*Op{reg, oos})
	if !ok {
		t.Fatal("not enumerable")
	}
	peers := State{Present: true, Status: statusOOS, Overridden: statusOOS, LDT: 10, V: "10"}
	if contains(strict, peers) || !contains(loose, peers) {
		t.Fatalf("%v: strict %v, loose %v", peers, strict, loose)
	}
	oos.Exposed = false
	if _, loose, _ := allowed([]*Op{reg, oos}); contains(loose, peers) {
		t.Fatalf("allowed without a loss: %v", loose)
	}
}

func contains(states []State, want State) bool {
	for _, s := range states {
		if s.matches(want) {
			return true
		}
	}
	return false
}
