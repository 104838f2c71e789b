package bench

import (
	"context"
	"net/http"
	"strconv"
	"sync"
)

// Scenario names.
const (
	ScenarioRegister    = "register"
	ScenarioHeartbeat   = "heartbeat"
	ScenarioMixed       = "mixed"
	ScenarioFetch       = "fetch"
	ScenarioPropagation = "propagation"
	ScenarioMemory      = "memory"
)

// Scenarios lists the scenario names in the order of the usage text.
var Scenarios = []string{ScenarioRegister, ScenarioHeartbeat, ScenarioMixed, ScenarioFetch, ScenarioPropagation, ScenarioMemory}

// Shares of mixed-scenario operations that are cancels and status changes; the rest are heartbeats
// (and re-registrations of cancelled instances).
const (
	mixedCancelShare = 0.01
	mixedStatusShare = 0.01
)

// baseFor is the node that instance k talks to: instances are spread over the URLs, and each
// instance always uses the same node, as a Eureka client does.
func (r *runner) baseFor(k int64) string { return r.bases[k%int64(len(r.bases))] }

func (r *runner) register(ctx context.Context, base string, k int64) (int, error) {
	status, _, err := r.c.do(ctx, http.MethodPost, base+"apps/"+r.inst.app(k), r.inst.body(k))
	if err == nil && status/100 == 2 {
		r.track(base, k)
	}
	return status, err
}

func (r *runner) instanceURL(base string, k int64) string {
	return base + "apps/" + r.inst.app(k) + "/" + r.inst.id(k)
}

func (r *runner) heartbeat(ctx context.Context, base string, k int64) (int, error) {
	status, _, err := r.c.do(ctx, http.MethodPut, r.instanceURL(base, k)+"?status=UP&lastDirtyTimestamp="+r.ts(), nil)
	return status, err
}

func (r *runner) ts() string { return strconv.FormatInt(r.inst.ts, 10) }

// execRegister registers instance i mod -instances: distinct instances first, then the same ones
// again.
func (r *runner) execRegister(ctx context.Context, i int64) (string, int, error) {
	k := i % int64(r.cfg.Instances)
	status, err := r.register(ctx, r.baseFor(k), k)
	return "register", status, err
}

// execPrefill registers instance i once (tickets 0..instances-1 of the warm-up).
func (r *runner) execPrefill(ctx context.Context, i int64) (string, int, error) {
	status, err := r.register(ctx, r.baseFor(i), i)
	if status/100 == 2 && err == nil && r.mixed != nil {
		r.mixed[i].registered = true
	}
	return "register", status, err
}

func (r *runner) execHeartbeat(ctx context.Context, i int64) (string, int, error) {
	k := i % int64(r.cfg.Instances)
	status, err := r.heartbeat(ctx, r.baseFor(k), k)
	return "heartbeat", status, err
}

func (r *runner) execFetch(ctx context.Context, i int64) (string, int, error) {
	base := r.bases[i%int64(len(r.bases))]
	kind, path := "fetch-full", "apps"
	if r.cfg.Fetch == "delta" || (r.cfg.Fetch == "both" && i%2 == 1) {
		kind, path = "fetch-delta", "apps/delta"
	}
	status, n, err := r.c.do(ctx, http.MethodGet, base+path, nil)
	r.fetched.Add(n)
	return kind, status, err
}

// mixedSlot is the state of one instance in the mixed scenario. Its lock is held for the whole
// request so that no heartbeat races the cancel of the same instance (with -instances well above
// -connections, two tickets never want the same instance at once).
type mixedSlot struct {
	mu           sync.Mutex
	registered   bool
	outOfService bool
}

// execMixed is one tick of a fleet heartbeating in turn: instance i mod -instances heartbeats,
// unless the draw makes it one of the ~1% cancels or ~1% status changes; a cancelled instance
// registers again on its next turn.
func (r *runner) execMixed(ctx context.Context, i int64) (string, int, error) {
	k := i % int64(r.cfg.Instances)
	s := &r.mixed[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	base := r.baseFor(k)
	if !s.registered {
		status, err := r.register(ctx, base, k)
		if err == nil && status/100 == 2 {
			s.registered, s.outOfService = true, false
		}
		return "register", status, err
	}
	switch x := unitFloat(r.cfg.Seed, i); {
	case x < mixedCancelShare:
		status, _, err := r.c.do(ctx, http.MethodDelete, r.instanceURL(base, k), nil)
		if err == nil && status/100 == 2 {
			s.registered = false
		}
		return "cancel", status, err
	case x < mixedCancelShare+mixedStatusShare:
		value := "OUT_OF_SERVICE"
		if s.outOfService {
			value = "UP"
		}
		status, _, err := r.c.do(ctx, http.MethodPut, r.instanceURL(base, k)+"/status?value="+value+"&lastDirtyTimestamp="+r.ts(), nil)
		if err == nil && status/100 == 2 {
			s.outOfService = !s.outOfService
		}
		return "status", status, err
	}
	status, err := r.heartbeat(ctx, base, k)
	return "heartbeat", status, err
}

// execPropagation registers a new instance at the first node and, when measuring, watches the
// other nodes until they show it.
func (r *runner) execPropagation(ctx context.Context, i int64) (string, int, error) {
	status, err := r.register(ctx, r.bases[0], i)
	if err == nil && status/100 == 2 && r.prop != nil && r.prop.active.Load() {
		r.prop.watch(ctx, r.inst.app(i), r.inst.id(i))
	}
	return "register", status, err
}

// execMemory registers instance i at the first node (tickets 0..instances-1).
func (r *runner) execMemory(ctx context.Context, i int64) (string, int, error) {
	status, err := r.register(ctx, r.bases[0], i)
	return "register", status, err
}

// unitFloat is a deterministic draw in [0, 1) for ticket i: the same seed gives the same sequence
// of operations whatever the goroutine scheduling.
func unitFloat(seed, i int64) float64 {
	z := uint64(seed) ^ (uint64(i) * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}
