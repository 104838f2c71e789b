// Package faultcheck checks that a herald cluster of real processes keeps every acknowledged write
// and converges under faults, in the spirit of Jepsen. Run starts 3-5 nodes whose peer traffic goes
// through fault-injecting links, lets client goroutines register, heartbeat, change status and
// cancel while a seeded schedule kills (kill -9) and restarts nodes, pauses them (SIGSTOP/SIGCONT),
// partitions and slows links, then heals everything and checks the nodes' registries against the
// history of operations:
//
//   - every acknowledged (2xx) operation's effect is on every node, unless a later acknowledged
//     operation on the same instance superseded it;
//   - the nodes hold identical registries (status, overridden status, metadata and
//     lastDirtyTimestamp of every instance);
//   - cancelled instances are absent everywhere: heartbeats (including late ones) do not bring
//     them back;
//   - the resident memory of every node stayed under a bound.
//
// History model. Each instance of the owned app has exactly one writer, a client goroutine that
// sends its operations one at a time, mostly to its home node (it fails over to the next node when
// its home refuses connections, and sends a configurable fraction to a random node). The writer's
// lastDirtyTimestamps only grow, so the expected state of an instance is a fold of its acknowledged
// operations (see fold). An operation of unknown outcome (a timeout, typically against a paused
// node, or a 5xx) may take effect at any later time, so the writer retires the instance after one:
// the checker then allows both outcomes. Conflicting writes are explicit (OpConflict): several
// registrations of one instance sent at once to different nodes; the largest acknowledged
// lastDirtyTimestamp must win everywhere.
//
// Replication is asynchronous, as in Eureka: a node killed with kill -9 right after acknowledging
// a write may take it down before sending it. Acknowledged operations whose acceptor was killed
// within Config.CrashWindow of healthy time after the acknowledgement are "exposed": losing them
// is reported (CrashLost) but is not a failure. Every other loss is.
//
// The same seed gives the same fault schedule and the same choices of operations; the interleaving
// of operations with faults depends on timing and may differ between runs.
package faultcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config describes one run.
type Config struct {
	// Bin is the herald binary.
	Bin string
	// Nodes is the cluster size (3 to 5; default 3).
	Nodes int
	// Seed draws the schedule and the clients' choices.
	Seed int64
	// Duration is the length of the fault phase (default 40s).
	Duration time.Duration
	// Faults are the kinds of fault to draw from (nil: AllFaults; empty: none, a baseline run).
	Faults []FaultKind
	// Writers is the number of client goroutines (default 6).
	Writers int
	// Roam is the fraction of operations a writer sends to a random node instead of its home node.
	Roam float64
	// Settle bounds the wait, after healing, for the registries to converge (default 45s).
	Settle time.Duration
	// CrashWindow is how long a node is assumed to take to replicate an acknowledged write when
	// no fault is active (default 1s). See the package documentation.
	CrashWindow time.Duration
	// MaxRSS bounds every node's resident memory in bytes (default 256 MiB).
	MaxRSS int64
	// MaxBodyBytes is the nodes' http.max_body_bytes (default: herald's, 1 MiB). Big
	// registrations carry up to a fifth of it as metadata.
	MaxBodyBytes int
	// ExtraHCL is appended to every node's configuration.
	ExtraHCL string
	// Env is added to every node's environment (HERALD_<KEY__PATH>=value overrides the file).
	Env []string
	// LogDir, when set, receives each node's log (NAME.log) at the end of the run.
	LogDir string
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Duration == 0 {
		c.Duration = 40 * time.Second
	}
	if c.Faults == nil {
		c.Faults = AllFaults
	}
	if c.Writers == 0 {
		c.Writers = 6
	}
	if c.Settle == 0 {
		c.Settle = 45 * time.Second
	}
	if c.CrashWindow == 0 {
		c.CrashWindow = time.Second
	}
	if c.MaxRSS == 0 {
		c.MaxRSS = 256 << 20
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Result is what a run measured and found.
type Result struct {
	Seed     int64
	Schedule []Fault
	// Ops counts operations per kind and outcome ("register/ok").
	Ops map[string]int
	// Acked, Failed and Unknown count operations by outcome.
	Acked, Failed, Unknown int
	// Verdict is the check of the final registries.
	Verdict *Verdict
	// Converged is false when the registries never satisfied the check within Config.Settle.
	Converged bool
	// SettleTook is how long after healing the check first held for good.
	SettleTook time.Duration
	// PeakRSS is each node's largest resident set size seen, in bytes.
	PeakRSS []int64
	// MaxRSS is the bound the peaks were held to.
	MaxRSS int64
	// Errors lists every failed property (empty when the run passed).
	Errors []string
}

// Passed reports whether every property held.
func (r *Result) Passed() bool { return len(r.Errors) == 0 }

// Summary is a short account of the run.
func (r *Result) Summary() string {
	var b strings.Builder
	kinds := map[FaultKind]int{}
	for _, f := range r.Schedule {
		kinds[f.Kind]++
	}
	fmt.Fprintf(&b, "seed %d: %d faults %v; operations: %d acknowledged, %d failed, %d unknown; instances %d; ",
		r.Seed, len(r.Schedule), kinds, r.Acked, r.Failed, r.Unknown, r.Verdict.Instances)
	v := r.Verdict
	fmt.Fprintf(&b, "lost %d, lost to kill -9 of the acceptor (allowed) %d, diverged %d, unexpected %d "+
		"(cancelled but present %d, missing %d, fields differ %d); unchecked %d; converged %v in %v; peak RSS",
		v.Lost, v.CrashLost, v.Diverged, v.Unexpected, v.Resurrected, v.Missing, v.Differ, v.Unchecked,
		r.Converged, r.SettleTook.Round(time.Millisecond))
	for i, p := range r.PeakRSS {
		fmt.Fprintf(&b, " node%d %.1f MiB", i, float64(p)/(1<<20))
	}
	return b.String()
}

// Run runs one schedule against a fresh cluster. It fails t only when the cluster cannot be set
// up; the properties checked are reported in the result.
func Run(t testing.TB, cfg Config) *Result {
	t.Helper()
	cfg.defaults()
	if cfg.Nodes < 2 {
		t.Fatalf("faultcheck: %d nodes", cfg.Nodes)
	}
	res := &Result{Seed: cfg.Seed, Ops: map[string]int{}, MaxRSS: cfg.MaxRSS}
	res.Schedule = Schedule(cfg.Seed, cfg.Nodes, cfg.Duration, cfg.Faults)
	c := startCluster(t, cfg.Bin, cfg.Nodes, cfg.MaxBodyBytes, cfg.ExtraHCL, cfg.Env)

	// Memory: sample every node's RSS until the run ends.
	res.PeakRSS = make([]int64, cfg.Nodes)
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, n := range c.nodes { // read by Run only after rssDone
				res.PeakRSS[i] = max(res.PeakRSS[i], rss(n.Pid()))
			}
			select {
			case <-stopRSS:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopRSS:
		default:
			close(stopRSS)
			<-rssDone
		}
	}()

	if cfg.LogDir != "" {
		defer func() {
			for _, n := range c.nodes {
				if err := os.WriteFile(filepath.Join(cfg.LogDir, n.Name+".log"), []byte(n.Logs()), 0o644); err != nil {
					t.Errorf("faultcheck: %v", err)
				}
			}
		}()
	}
	hc := &http.Client{Timeout: clientTimeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 8, DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	defer hc.CloseIdleConnections()
	rec := &recorder{hist: NewHistory(), ops: res.Ops}

	t0 := time.Now()
	rec.hist.T0 = t0
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	writers := make([]*writer, cfg.Writers)
	for i := range writers {
		w := &writer{idx: i, cfg: &cfg, c: c, hc: hc, rec: rec, home: i % cfg.Nodes,
			rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i+1)))}
		writers[i] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	defer func() { stop(); wg.Wait() }() // also when a node fails to start and t fails

	kills, intervals := applySchedule(c, res.Schedule, t0, cfg.Duration, cfg.Logf)
	// Let the writers run a moment past the last fault, then stop them and heal.
	stop()
	wg.Wait()
	c.healLinks()
	for _, n := range c.nodes {
		if n.Pid() == 0 {
			n.Start()
		}
		n.Signal(sigCont)
	}
	healed := time.Now()
	cfg.Logf("faults over after %v; %d operations; settling", healed.Sub(t0).Round(time.Millisecond), rec.n)

	rec.hist.Expose(kills, intervals, cfg.CrashWindow)
	res.Verdict, res.Converged = settle(c, hc, rec.hist, writers, healed.Add(cfg.Settle), cfg.Logf)
	res.SettleTook = time.Since(healed)
	close(stopRSS)
	<-rssDone

	for _, ops := range rec.hist.byInstance {
		for _, o := range ops {
			switch o.Result {
			case OK:
				res.Acked++
			case Failed:
				res.Failed++
			case Unknown:
				res.Unknown++
			}
		}
	}
	v := res.Verdict
	if !v.OK() || !res.Converged {
		res.Errors = append(res.Errors, fmt.Sprintf("registries after %v: lost %d, diverged %d, unexpected %d",
			res.SettleTook.Round(time.Millisecond), v.Lost, v.Diverged, v.Unexpected))
		res.Errors = append(res.Errors, v.Problems...)
	}
	for i, p := range res.PeakRSS {
		if p > cfg.MaxRSS {
			res.Errors = append(res.Errors, fmt.Sprintf("node%d: peak RSS %.1f MiB over the bound of %.1f MiB",
				i, float64(p)/(1<<20), float64(cfg.MaxRSS)/(1<<20)))
		}
	}
	if res.Acked == 0 {
		res.Errors = append(res.Errors, "no operation was acknowledged")
	}
	return res
}

// applySchedule runs the faults on the calling goroutine, in time order, and returns when the last
// one has ended and d has passed: the kill times per node and the intervals during which any fault
// was active.
func applySchedule(c *cluster, sched []Fault, t0 time.Time, d time.Duration, logf func(string, ...any)) (map[int][]time.Time, []Interval) {
	type event struct {
		at    time.Duration
		end   bool
		fault int
	}
	var evs []event
	var last time.Duration
	for i, f := range sched {
		evs = append(evs, event{f.At, false, i})
		if f.Kind != FaultRestart {
			evs = append(evs, event{f.At + f.Dur, true, i})
		}
		last = max(last, f.At+f.Dur)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	kills := map[int][]time.Time{}
	started := make([]time.Time, len(sched))
	var intervals []Interval
	wait := func(at time.Duration) {
		if d := time.Until(t0.Add(at)); d > 0 {
			tm := time.NewTimer(d)
			<-tm.C
		}
	}
	for _, e := range evs {
		wait(e.at)
		f := sched[e.fault]
		n := c.nodes[f.Node]
		if !e.end {
			started[e.fault] = time.Now()
			logf("%v", f)
		}
		switch {
		case f.Kind == FaultKill && !e.end, f.Kind == FaultRestart:
			n.Kill()
			// When the process is gone, not when the signal went: a node being killed can still
			// acknowledge a write, which it then dies without replicating.
			kills[f.Node] = append(kills[f.Node], time.Now())
			if f.Kind == FaultRestart {
				n.Start()
			}
		case f.Kind == FaultKill:
			n.Start()
		case f.Kind == FaultPause && !e.end:
			n.Signal(sigStop)
		case f.Kind == FaultPause:
			n.Signal(sigCont)
		case f.Kind == FaultPartition && !e.end:
			for _, l := range c.linksOf(f.Node) {
				l.Cut()
			}
		case f.Kind == FaultLink && !e.end:
			c.links[f.Node][f.Peer].Cut()
		case f.Kind == FaultSlow && !e.end:
			for _, l := range c.linksOf(f.Node) {
				l.Slow(f.Delay)
			}
		case f.Kind == FaultPartition, f.Kind == FaultSlow:
			for _, l := range c.linksOf(f.Node) {
				l.Heal()
			}
		case f.Kind == FaultLink:
			c.links[f.Node][f.Peer].Heal()
		}
		if e.end || f.Kind == FaultRestart {
			intervals = append(intervals, Interval{started[e.fault], time.Now()})
		}
	}
	wait(max(last+500*time.Millisecond, d))
	return kills, intervals
}

// settle waits until the registries pass the check and keep passing for stableFor, heartbeating
// the live instances meanwhile as Eureka clients do (never re-registering: that would hide a
// loss). It returns the last verdict.
func settle(c *cluster, hc *http.Client, h *History, writers []*writer, deadline time.Time, logf func(string, ...any)) (*Verdict, bool) {
	const stableFor = 3 * time.Second
	var v *Verdict
	var okSince time.Time
	var lastBeat time.Time
	round := 0
	for {
		if time.Since(lastBeat) >= time.Second {
			lastBeat = time.Now()
			heartbeatAll(c, hc, writers, round)
			round++
		}
		regs := make([]map[string]State, len(c.nodes))
		var err error
		for i, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			regs[i], err = registry(ctx, hc, n)
			cancel()
			if err != nil {
				break
			}
		}
		if err == nil {
			v = h.Check(regs)
			switch {
			case !v.OK():
				okSince = time.Time{}
			case okSince.IsZero():
				okSince = time.Now()
			case time.Since(okSince) >= stableFor:
				return v, true
			}
		} else {
			okSince = time.Time{}
		}
		if time.Now().After(deadline) {
			if v == nil {
				v = &Verdict{Problems: []string{fmt.Sprintf("registries unreadable: %v", err)}, Diverged: 1}
			}
			return v, false
		}
		logf("settling: %v", verdictLine(v, err))
		tm := time.NewTimer(250 * time.Millisecond) // poll interval
		<-tm.C
	}
}

func verdictLine(v *Verdict, err error) string {
	if err != nil {
		return err.Error()
	}
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("lost %d diverged %d unexpected %d", v.Lost, v.Diverged, v.Unexpected)
}

// heartbeatAll sends one heartbeat for every instance a client would still heartbeat (all but
// those it cancelled), to the
// writer's home node in round 0, the next node in round 1, and so on: a heartbeat to a node that
// has the instance is replicated, and a peer that lacks it answers 404, which makes the sender
// register it there (a Eureka client would re-register on its own 404; these clients never do).
func heartbeatAll(c *cluster, hc *http.Client, writers []*writer, round int) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, w := range writers {
		for _, in := range w.beating() {
			path := fmt.Sprintf("apps/%s/%s?status=UP", in.app, in.id)
			if in.regTS != 0 {
				path += fmt.Sprintf("&lastDirtyTimestamp=%d", in.regTS)
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, _, _ = send(hc, c, (w.home+round)%len(c.nodes), "PUT", path, nil)
			}()
		}
	}
	wg.Wait()
}

// send makes one request; code is 0 on a transport error, and dialFailed tells a request that
// never left (connection refused) from one that may have been processed.
func send(hc *http.Client, c *cluster, node int, method, path string, body []byte) (code int, err error, dialFailed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var rd *strings.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	var req *http.Request
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, c.nodes[node].URL()+path, rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, c.nodes[node].URL()+path, nil)
	}
	if err != nil {
		return 0, err, true
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var oe *net.OpError
		return 0, err, errors.As(err, &oe) && oe.Op == "dial"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil, false
}
