package faultcheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The apps the clients write: each writer owns its instances of ownedApp; conflictApp's instances
// are written concurrently through several nodes.
const (
	ownedApp    = "FC-OWNED"
	conflictApp = "FC-CONFLICT"
)

// maxLive bounds the registered instances of one writer.
const maxLive = 15

// recorder collects the operations of all writers.
type recorder struct {
	mu   sync.Mutex
	hist *History
	ops  map[string]int
	n    int
}

func (r *recorder) add(o *Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hist.Add(o)
	r.ops[string(o.Kind)+"/"+o.Result.String()]++
	r.n++
}

// inst is a writer's view of one of its instances.
type inst struct {
	app, id string
	regTS   int64 // lastDirtyTimestamp of the last acknowledged registration
}

type writer struct {
	idx  int
	cfg  *Config
	c    *cluster
	hc   *http.Client
	rec  *recorder
	rng  *rand.Rand
	home int

	live []*inst // registered (by the writer's acknowledged operations), not retired
	dead []*inst // cancelled (acknowledged)
	// retired are instances left after an operation of unknown outcome other than a cancel, and
	// conflicts the conflict app's instances: a client would go on heartbeating both.
	retired   []*inst
	conflicts []*inst
	lastTS    int64
	seq       int
	conflict  *inst
	rounds    int
}

// ts returns a fresh lastDirtyTimestamp: the wall clock in ms, strictly larger than the last.
func (w *writer) ts() int64 {
	w.lastTS = max(w.lastTS+1, time.Now().UnixMilli())
	return w.lastTS
}

func (w *writer) target() int {
	if w.cfg.Roam > 0 && w.rng.Float64() < w.cfg.Roam {
		return w.rng.IntN(len(w.c.nodes))
	}
	return w.home
}

// do sends one operation and records it. A refused connection moves the writer's home to the
// next node, as a Eureka client fails over.
func (w *writer) do(o *Op, method, path string, body []byte, okCodes ...int) *Op {
	o.Start = time.Now()
	code, err, dialFailed := send(w.hc, w.c, o.Node, method, path, body)
	o.End = time.Now()
	o.Code = code
	switch {
	case err != nil && dialFailed:
		o.Result, o.Err = Failed, "connection refused"
		if o.Node == w.home && o.Kind != OpConflict { // conflict requests run concurrently
			w.home = (w.home + 1) % len(w.c.nodes)
		}
	case err != nil:
		o.Result, o.Err = Unknown, shortErr(err)
	case code >= 500:
		o.Result = Unknown
	default:
		o.Result = Failed
		for _, c := range okCodes {
			if code == c {
				o.Result = OK
			}
		}
	}
	w.rec.add(o)
	return o
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = "…" + s[len(s)-80:]
	}
	return s
}

func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.step()
		tm := time.NewTimer(time.Duration(5+w.rng.IntN(20)) * time.Millisecond) // pacing
		select {
		case <-ctx.Done():
			tm.Stop()
		case <-tm.C:
		}
	}
}

func (w *writer) pick() (int, *inst) {
	i := w.rng.IntN(len(w.live))
	return i, w.live[i]
}

func (w *writer) retire(i int) {
	w.retired = append(w.retired, w.live[i])
	w.live = append(w.live[:i], w.live[i+1:]...)
}

// beating returns the instances whose client would still be heartbeating them.
func (w *writer) beating() []*inst {
	return append(append(append([]*inst(nil), w.live...), w.retired...), w.conflicts...)
}

func (w *writer) step() {
	x := w.rng.IntN(100)
	if len(w.live) == 0 || (x < 10 && len(w.live) < maxLive) {
		w.seq++
		in := &inst{app: ownedApp, id: fmt.Sprintf("w%d-%d", w.idx, w.seq)}
		w.live = append(w.live, in)
		w.register(len(w.live)-1, in, w.rng.IntN(10) == 0)
		return
	}
	i, in := w.pick()
	switch {
	case x < 30:
		w.register(i, in, false)
	case x < 33:
		w.register(i, in, true)
	case x < 55:
		w.heartbeat(in, OpHeartbeat, w.target())
	case x < 67:
		w.status(i, in, OpOutOfService)
	case x < 77:
		w.status(i, in, OpRemoveOverride)
	case x < 85:
		o := w.do(&Op{Kind: OpCancel, App: in.app, ID: in.id, Node: w.target()}, "DELETE",
			fmt.Sprintf("apps/%s/%s", in.app, in.id), nil, 200)
		switch o.Result {
		case OK:
			w.live = append(w.live[:i], w.live[i+1:]...)
			w.dead = append(w.dead, in)
		case Unknown: // a client that sent a cancel stops heartbeating, whatever the answer
			w.live = append(w.live[:i], w.live[i+1:]...)
		}
	case x < 90 && len(w.dead) > 0:
		w.heartbeat(w.dead[w.rng.IntN(len(w.dead))], OpZombieHeartbeat, w.rng.IntN(len(w.c.nodes)))
	case x < 95:
		w.conflictRound()
	default:
		w.heartbeat(in, OpHeartbeat, w.target())
	}
}

func (w *writer) register(i int, in *inst, big bool) {
	o := &Op{Kind: OpRegister, App: in.app, ID: in.id, Node: w.target(), TS: w.ts()}
	if big {
		o.Kind = OpRegisterBig
		o.Pad = 1 + w.rng.IntN(w.cfg.MaxBodyBytes/5)
	}
	w.do(o, "POST", "apps/"+in.app, instanceJSON(in.app, in.id, o.TS, w.idx, o.Pad), 204)
	switch o.Result {
	case OK:
		in.regTS = o.TS
	case Unknown:
		w.retire(i)
	}
}

func (w *writer) heartbeat(in *inst, kind OpKind, node int) {
	w.do(&Op{Kind: kind, App: in.app, ID: in.id, Node: node}, "PUT",
		fmt.Sprintf("apps/%s/%s?status=UP&lastDirtyTimestamp=%d", in.app, in.id, in.regTS), nil, 200)
}

// status sets or removes the OUT_OF_SERVICE override; half of the requests carry the writer's
// lastDirtyTimestamp, half none (then the instance's lastDirtyTimestamp does not change).
func (w *writer) status(i int, in *inst, kind OpKind) {
	o := &Op{Kind: kind, App: in.app, ID: in.id, Node: w.target()}
	path := fmt.Sprintf("apps/%s/%s/status?value=", in.app, in.id)
	method := "PUT"
	if kind == OpOutOfService {
		path += statusOOS
	} else {
		method = "DELETE"
		path += statusUp
	}
	if w.rng.IntN(2) == 0 {
		o.TS = w.ts()
		path += fmt.Sprintf("&lastDirtyTimestamp=%d", o.TS)
	}
	w.do(o, method, path, nil, 200)
	if o.Result == Unknown {
		w.retire(i)
	}
}

// conflictRound registers one instance of the conflict app through 2 or more nodes at once, each
// request with its own lastDirtyTimestamp. A writer moves to a new conflict instance every few
// rounds.
func (w *writer) conflictRound() {
	if w.conflict == nil || w.rounds >= 4 {
		w.seq++
		w.conflict = &inst{app: conflictApp, id: fmt.Sprintf("w%d-c%d", w.idx, w.seq)}
		w.conflicts = append(w.conflicts, w.conflict)
		w.rounds = 0
	}
	w.rounds++
	n := len(w.c.nodes)
	nodes := w.rng.Perm(n)[:2+w.rng.IntN(n-1)]
	ops := make([]*Op, len(nodes))
	for i, node := range nodes {
		ops[i] = &Op{Kind: OpConflict, App: conflictApp, ID: w.conflict.id, Node: node, TS: w.ts()}
	}
	w.rng.Shuffle(len(ops), func(i, j int) { ops[i].TS, ops[j].TS = ops[j].TS, ops[i].TS })
	var wg sync.WaitGroup
	for _, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.do(o, "POST", "apps/"+conflictApp, instanceJSON(conflictApp, o.ID, o.TS, w.idx, 0), 204)
		}()
	}
	wg.Wait()
}
