package faultcheck

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// OpKind names one kind of client operation.
type OpKind string

// The operations the clients send. Each instance of the owned app has exactly one writer; the
// conflict app's instances are written by several requests at once, from different nodes.
const (
	// OpRegister is POST /eureka/apps/{app} with the writer's lastDirtyTimestamp and metadata
	// v=<that timestamp>.
	OpRegister OpKind = "register"
	// OpRegisterBig is a registration whose metadata carries a large padding value (up to about a
	// fifth of the nodes' http.max_body_bytes): peers must take whatever a node acknowledged.
	OpRegisterBig OpKind = "register-big"
	// OpHeartbeat is PUT /eureka/apps/{app}/{id}. It has no effect on the compared state.
	OpHeartbeat OpKind = "heartbeat"
	// OpZombieHeartbeat is a heartbeat for an instance whose cancel was acknowledged: it must not
	// bring the instance back, wherever it lands.
	OpZombieHeartbeat OpKind = "zombie-heartbeat"
	// OpOutOfService is PUT .../status?value=OUT_OF_SERVICE, with or without lastDirtyTimestamp.
	OpOutOfService OpKind = "out-of-service"
	// OpRemoveOverride is DELETE .../status?value=UP, with or without lastDirtyTimestamp.
	OpRemoveOverride OpKind = "remove-override"
	// OpCancel is DELETE /eureka/apps/{app}/{id}.
	OpCancel OpKind = "cancel"
	// OpConflict is one of several registrations of the same instance sent at the same time to
	// different nodes, each with its own lastDirtyTimestamp. Rule: the registration with the
	// largest lastDirtyTimestamp among those acknowledged wins on every node (a larger one that was
	// not acknowledged may win too).
	OpConflict OpKind = "conflict"
)

// Outcome is what a client learned of an operation.
type Outcome uint8

// Outcomes. Unknown covers timeouts, broken connections after the request was sent and 5xx
// answers: the operation may or may not have been applied, now or later.
const (
	OK Outcome = iota
	Failed
	Unknown
)

// String is the outcome's name.
func (o Outcome) String() string {
	return [...]string{"ok", "failed", "unknown"}[o]
}

// Op is one client operation and its outcome.
type Op struct {
	Kind   OpKind
	App    string
	ID     string
	Node   int
	TS     int64 // the lastDirtyTimestamp sent (0 when none)
	Pad    int   // metadata padding length (OpRegisterBig)
	Start  time.Time
	End    time.Time
	Result Outcome
	Code   int
	Err    string
	// Exposed is set by the checker: the acknowledging node was killed (kill -9) before it can be
	// assumed to have replicated the operation (see Config.CrashWindow).
	Exposed bool
}

// String describes the operation and its outcome.
func (o *Op) String() string {
	s := fmt.Sprintf("%s %s/%s at node%d", o.Kind, o.App, o.ID, o.Node)
	if o.TS != 0 {
		s += fmt.Sprintf(" ts=%d", o.TS)
	}
	if o.Pad != 0 {
		s += fmt.Sprintf(" pad=%d", o.Pad)
	}
	s += fmt.Sprintf(" -> %s", o.Result)
	if o.Code != 0 {
		s += fmt.Sprintf(" %d", o.Code)
	}
	if o.Err != "" {
		s += " (" + o.Err + ")"
	}
	if o.Exposed {
		s += " [acceptor killed soon after]"
	}
	return s
}

func (o *Op) effective() bool {
	switch o.Kind {
	case OpRegister, OpRegisterBig, OpOutOfService, OpRemoveOverride, OpCancel, OpConflict:
		return true
	}
	return false
}

// State is the part of an instance the checker compares.
type State struct {
	Present    bool
	Status     string
	Overridden string
	LDT        int64  // lastDirtyTimestamp
	V          string // metadata "v": the lastDirtyTimestamp of the registration that set it
	Pad        int    // length of metadata "pad"
	// Meta is the whole metadata map, canonically encoded (observed states only).
	Meta string
}

// String describes the state ("absent" or status/override, timestamp, metadata).
func (s State) String() string {
	if !s.Present {
		return "absent"
	}
	return fmt.Sprintf("%s/%s ldt=%d v=%s pad=%d", s.Status, s.Overridden, s.LDT, s.V, s.Pad)
}

// matches compares the modelled fields (not Meta, which only the nodes' mutual comparison uses).
func (s State) matches(o State) bool {
	if s.Present != o.Present {
		return false
	}
	return !s.Present || (s.Status == o.Status && s.Overridden == o.Overridden && s.LDT == o.LDT && s.V == o.V && s.Pad == o.Pad)
}

// same compares two observed states entirely.
func (s State) same(o State) bool { return s.matches(o) && s.Meta == o.Meta }

const (
	statusUp  = "UP"
	statusOOS = "OUT_OF_SERVICE"
	statusUnk = "UNKNOWN"
)

// fold applies the operations in order to an absent instance, following herald's (Eureka's) rules
// for a single writer:
//   - register: present; lastDirtyTimestamp and metadata from the registration (the writer's
//     timestamps only grow); the status is the override when there is one, else the status the
//     node already had (UP or OUT_OF_SERVICE), else UP;
//   - out-of-service (on a present instance not already OUT_OF_SERVICE): status and override
//     OUT_OF_SERVICE; lastDirtyTimestamp adopted when sent and larger;
//   - remove-override (when there is an override): status UP, no override; lastDirtyTimestamp
//     adopted when sent and larger;
//   - cancel: absent, override forgotten.
func fold(ops []*Op) State {
	var s State
	for _, o := range ops {
		s = step(s, o)
	}
	return s
}

// step applies one operation (see fold).
func step(s State, o *Op) State {
	switch o.Kind {
	case OpRegister, OpRegisterBig, OpConflict:
		if !s.Present {
			s = State{Present: true, Status: statusUp, Overridden: statusUnk}
		} else if s.Overridden == statusOOS {
			s.Status = statusOOS
		}
		if o.TS > s.LDT {
			s.LDT, s.V, s.Pad = o.TS, fmt.Sprint(o.TS), o.Pad
		}
	case OpOutOfService:
		if s.Present && s.Status != statusOOS {
			s.Status, s.Overridden = statusOOS, statusOOS
			s.LDT = max(s.LDT, o.TS)
		}
	case OpRemoveOverride:
		if s.Present && s.Overridden == statusOOS {
			s.Status, s.Overridden = statusUp, statusUnk
			s.LDT = max(s.LDT, o.TS)
		}
	case OpCancel:
		s = State{}
	}
	return s
}

// maxStates bounds the set of reachable states tracked per instance.
const maxStates = 1 << 12

// allowed returns the states an instance may end in, given its operations: strict are the states
// reachable when every acknowledged operation took effect (an operation of unknown outcome may or
// may not have); loose adds the states reachable when acknowledged operations that were exposed
// to a kill -9 of their acceptor were lost. It follows the set of reachable states operation by
// operation, so any number of uncertain operations is handled; ok=false only when that set grows
// beyond maxStates.
func allowed(ops []*Op) (strict, loose []State, ok bool) {
	// cur maps each reachable state to whether reaching it required losing an acknowledged
	// operation (false wins).
	cur := map[State]bool{{}: false}
	for _, o := range ops {
		if !o.effective() || o.Result == Failed {
			continue
		}
		next := make(map[State]bool, len(cur))
		add := func(s State, lossy bool) {
			if l, seen := next[s]; !seen || (l && !lossy) {
				next[s] = lossy
			}
		}
		for s, lossy := range cur {
			add(step(s, o), lossy)
			if o.Result == Unknown || o.Exposed {
				add(s, lossy || o.Result == OK)
				if (o.Kind == OpOutOfService || o.Kind == OpRemoveOverride) && o.TS != 0 {
					// The peers applied the status change but not the client's newer timestamp
					// (a herald peer's copy keeps its own), and the acceptor's copy, which had
					// it, was lost.
					bare := *o
					bare.TS = 0
					add(step(s, &bare), lossy || o.Result == OK)
				}
			}
		}
		if len(next) > maxStates {
			return nil, nil, false
		}
		cur = next
	}
	for s, lossy := range cur {
		if !lossy {
			strict = append(strict, s)
		}
		loose = append(loose, s)
	}
	return strict, loose, true
}

// allowedConflict is the rule for the conflict app: present, status UP, and the registration with
// the largest acknowledged, unexposed lastDirtyTimestamp wins, unless one with a larger timestamp
// (acknowledged and exposed, or of unknown outcome) won. Exposed acknowledged registrations may be
// lost, which only the loose set allows.
func allowedConflict(ops []*Op) (strict, loose []State) {
	var floor, looseFloor int64
	for _, o := range ops {
		if o.Result == OK && !o.Exposed {
			floor = max(floor, o.TS)
		}
	}
	looseFloor = floor
	for _, o := range ops {
		if o.Result == OK && o.Exposed && o.TS > floor {
			floor = o.TS
		}
	}
	for _, o := range ops {
		if o.Result == Failed {
			continue
		}
		s := State{Present: true, Status: statusUp, Overridden: statusUnk, LDT: o.TS, V: fmt.Sprint(o.TS)}
		if o.TS >= floor {
			strict = append(strict, s)
		}
		if o.TS >= looseFloor {
			loose = append(loose, s)
		}
	}
	if looseFloor == 0 { // nothing certain: it may be absent too
		loose = append(loose, State{})
	}
	if floor == 0 {
		strict = append(strict, State{})
	}
	return strict, loose
}

// History is every operation of a run, per instance ("APP/id"), in each writer's order.
type History struct {
	// T0 is when the run started: operations are shown with their start relative to it.
	T0         time.Time
	byInstance map[string][]*Op
	order      []string
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{byInstance: map[string][]*Op{}} }

// Add records an operation (callers serialise).
func (h *History) Add(o *Op) {
	k := o.App + "/" + o.ID
	if _, ok := h.byInstance[k]; !ok {
		h.order = append(h.order, k)
	}
	h.byInstance[k] = append(h.byInstance[k], o)
}

// Interval is a span of time during which a fault was active.
type Interval struct{ From, To time.Time }

// Expose marks the acknowledged operations that a kill -9 of their acceptor may have lost: the
// node was killed at k after the operation was sent, and the time between a and k outside of fault
// intervals (each extended by window) is shorter than window. Replication is asynchronous (as in
// Eureka), so a node killed before it sent a write loses it.
func (h *History) Expose(kills map[int][]time.Time, faults []Interval, window time.Duration) {
	for _, ops := range h.byInstance {
		for _, o := range ops {
			if o.Result != OK || !o.effective() {
				continue
			}
			for _, k := range kills[o.Node] {
				if k.Before(o.Start) {
					continue // a process started later acknowledged it
				}
				// k is when the killed process was seen gone; the client may read an answer sent
				// just before the kill after that.
				if k.Before(o.End) || healthy(o.End, k, faults, window) < window {
					o.Exposed = true
					break
				}
			}
		}
	}
}

// healthy is the length of [a, b] outside every fault interval extended by window.
func healthy(a, b time.Time, faults []Interval, window time.Duration) time.Duration {
	var iv []Interval
	for _, f := range faults {
		from, to := f.From, f.To.Add(window)
		if to.Before(a) || from.After(b) {
			continue
		}
		if from.Before(a) {
			from = a
		}
		if to.After(b) {
			to = b
		}
		iv = append(iv, Interval{from, to})
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i].From.Before(iv[j].From) })
	covered := time.Duration(0)
	var cur *Interval
	for i := range iv {
		if cur != nil && !iv[i].From.After(cur.To) {
			if iv[i].To.After(cur.To) {
				cur.To = iv[i].To
			}
			continue
		}
		if cur != nil {
			covered += cur.To.Sub(cur.From)
		}
		c := iv[i]
		cur = &c
	}
	if cur != nil {
		covered += cur.To.Sub(cur.From)
	}
	return b.Sub(a) - covered
}

// Verdict is the checker's finding for one snapshot of the nodes' registries.
type Verdict struct {
	Instances int // instances with at least one operation
	// Lost counts instances whose state, on some node, is allowed by no outcome of the history:
	// an acknowledged effect is missing and was not superseded.
	Lost int
	// CrashLost counts instances whose state is explained only by losing acknowledged writes that
	// a kill -9 of their acceptor may have destroyed before replicating them.
	CrashLost int
	// Diverged counts instances that the nodes do not hold identically.
	Diverged int
	// Unexpected counts instances present on a node but never written.
	Unexpected int
	// Unchecked counts instances with too many uncertain operations to enumerate their outcomes:
	// only the nodes' agreement is checked for them.
	Unchecked int
	// Of the instances lost or diverged: Resurrected were cancelled (every allowed outcome is
	// absent) but are on some node; Missing must be present but are absent from some node;
	// Differ are on every node, with different fields.
	Resurrected, Missing, Differ int
	// Problems details a few instances of each kind of problem.
	Problems []string
	shown    map[string]int
}

// OK reports whether the snapshot shows no loss, divergence or stray instance.
func (v *Verdict) OK() bool { return v.Lost == 0 && v.Diverged == 0 && v.Unexpected == 0 }

// maxPerKind bounds the detail kept in a verdict per kind of problem, maxShown the operations
// shown per instance.
const (
	maxPerKind = 7
	maxShown   = 12
)

func (v *Verdict) problem(kind, format string, args ...any) {
	if v.shown == nil {
		v.shown = map[string]int{}
	}
	if v.shown[kind] < maxPerKind {
		v.shown[kind]++
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// Check compares the nodes' registries (one map "APP/id" -> state per node) with the history.
func (h *History) Check(regs []map[string]State) *Verdict {
	v := &Verdict{Instances: len(h.order)}
	for i, r := range regs {
		for k := range r {
			if _, ok := h.byInstance[k]; !ok {
				v.Unexpected++
				v.problem("unexpected", "node%d holds %s, which no client wrote", i, k)
			}
		}
	}
	for _, k := range h.order {
		ops := h.byInstance[k]
		obs := make([]State, len(regs))
		for i, r := range regs {
			obs[i] = r[k] // the zero State is absent
		}
		diverged := false
		for i := 1; i < len(obs); i++ {
			if !obs[i].same(obs[0]) {
				diverged = true
			}
		}
		var strict, loose []State
		if ops[0].Kind == OpConflict {
			strict, loose = allowedConflict(ops)
		} else {
			var ok bool
			if strict, loose, ok = allowed(ops); !ok {
				v.Unchecked++
				if diverged {
					v.Diverged++
					v.problem("diverged", "%s diverged: %s", k, h.describe(obs, ops))
				}
				continue
			}
		}
		in := func(set []State) bool {
			for _, o := range obs {
				found := false
				for _, s := range set {
					found = found || s.matches(o)
				}
				if !found {
					return false
				}
			}
			return true
		}
		kind := ""
		if diverged || !in(loose) {
			kind = v.classify(strict, obs)
		}
		switch {
		case in(strict):
		case in(loose):
			v.CrashLost++
		default:
			v.Lost++
			v.problem(kind, "%s lost (%s): allowed %v, %s", k, kind, strict, h.describe(obs, ops))
		}
		if diverged {
			v.Diverged++
			if in(loose) {
				v.problem(kind, "%s diverged (%s): %s", k, kind, h.describe(obs, ops))
			}
		}
	}
	return v
}

// classify counts an instance that is lost or diverged by what is wrong with it, and names that.
func (v *Verdict) classify(allowed, obs []State) string {
	allAbsent, allPresent := true, true
	for _, s := range allowed {
		allAbsent = allAbsent && !s.Present
		allPresent = allPresent && s.Present
	}
	someAbsent, somePresent := false, false
	for _, o := range obs {
		someAbsent = someAbsent || !o.Present
		somePresent = somePresent || o.Present
	}
	switch {
	case allAbsent && somePresent:
		v.Resurrected++
		return "cancelled but present"
	case allPresent && someAbsent:
		v.Missing++
		return "missing"
	case !someAbsent:
		v.Differ++
		return "fields differ"
	}
	return "other"
}

func (h *History) describe(obs []State, ops []*Op) string {
	var b strings.Builder
	for i, o := range obs {
		fmt.Fprintf(&b, "node%d %v; ", i, o)
	}
	b.WriteString("history:")
	if len(ops) > maxShown {
		fmt.Fprintf(&b, " (last %d of %d)", maxShown, len(ops))
		ops = ops[len(ops)-maxShown:]
	}
	for _, o := range ops {
		fmt.Fprintf(&b, "\n\t\t%7.3fs %s +%dms", o.Start.Sub(h.T0).Seconds(), o, o.End.Sub(o.Start).Milliseconds())
	}
	return b.String()
}
