// Package bench is herald's load generator: it drives one Eureka-compatible node or a cluster over
// real HTTP with a fixed number of keep-alive connections, closed-loop (as fast as possible) or
// open-loop at a fixed rate with latency measured from each request's intended start, and reports
// throughput, latency percentiles, errors by kind, replication propagation and memory per instance.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is a run's settings (the flags of `herald bench`).
type Config struct {
	Scenario          string
	URLs              []string
	Connections       int
	Rate              float64       // requests/s, 0 = closed loop
	Duration          time.Duration // 0 = until Requests
	Requests          int64         // 0 = until Duration
	Instances         int
	Apps              int
	Payload           int // approximate registration body size in bytes, 0 = natural size
	Format            string
	Fetch             string // full, delta or both
	HeartbeatInterval time.Duration
	Warmup            time.Duration
	Timeout           time.Duration
	Seed              int64
	Late              time.Duration // open-loop lateness threshold
	PollInterval      time.Duration // propagation polling
	WatchRate         float64       // propagation: writes watched per second, 0 = all
	Settle            time.Duration // memory: wait before the final scrapes
	CAFile            string        // PEM CA to trust for https targets
	Progress          time.Duration // progress line interval, 0 = none
	// Keep leaves the registered instances in the registry; by default the run deregisters
	// every instance it registered before it returns.
	Keep bool
}

// DefaultConfig holds the defaults of the flags.
func DefaultConfig() Config {
	return Config{Scenario: ScenarioRegister, Connections: 16, Duration: 10 * time.Second, Instances: 1000, Apps: 10,
		Format: "json", Fetch: "both", Warmup: time.Second, Timeout: 5 * time.Second, Seed: 1,
		Late: time.Millisecond, PollInterval: 250 * time.Microsecond, WatchRate: 100, Settle: 2 * time.Second, Progress: time.Second}
}

// UsageError is a bad setting: the command exits with status 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usageErr(format string, a ...any) error { return &UsageError{msg: fmt.Sprintf(format, a...)} }

// Validate checks the settings, normalizes the URLs (an empty path becomes /eureka/, a trailing
// slash is added) and derives the rate from -heartbeat-interval; errors are *UsageError.
func (c *Config) Validate() error {
	if !slices.Contains(Scenarios, c.Scenario) {
		return usageErr("unknown scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if len(c.URLs) == 0 {
		return usageErr("no URL: give the Eureka base URL of at least one node, e.g. http://127.0.0.1:8761/eureka/")
	}
	for i, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return usageErr("bad URL %q: %v", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return usageErr("bad URL %q: want http(s)://host:port/eureka-base-path/", raw)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/eureka/"
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		c.URLs[i] = u.String()
	}
	switch {
	case c.Connections < 1:
		return usageErr("-connections must be at least 1")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return usageErr("-rate must be a finite number >= 0 (0 = as fast as possible)")
	case c.Duration < 0:
		return usageErr("-duration must be >= 0")
	case c.Requests < 0:
		return usageErr("-requests must be >= 0")
	case c.Duration == 0 && c.Requests == 0 && c.Scenario != ScenarioMemory:
		return usageErr("give -duration or -requests")
	case c.Instances < 1:
		return usageErr("-instances must be at least 1")
	case c.Apps < 1:
		return usageErr("-apps must be at least 1")
	case c.Payload < 0:
		return usageErr("-payload must be >= 0")
	case c.Format != "json" && c.Format != "xml":
		return usageErr("-format must be json or xml, not %q", c.Format)
	case c.Fetch != "full" && c.Fetch != "delta" && c.Fetch != "both":
		return usageErr("-fetch must be full, delta or both, not %q", c.Fetch)
	case c.Warmup < 0:
		return usageErr("-warmup must be >= 0")
	case c.Timeout <= 0:
		return usageErr("-timeout must be > 0")
	case c.HeartbeatInterval < 0:
		return usageErr("-heartbeat-interval must be >= 0")
	case c.Late <= 0:
		return usageErr("-late must be > 0")
	case c.PollInterval <= 0:
		return usageErr("-poll-interval must be > 0")
	case c.WatchRate < 0 || math.IsNaN(c.WatchRate) || math.IsInf(c.WatchRate, 0):
		return usageErr("-watch-rate must be a finite number >= 0 (0 = watch every write)")
	case c.Settle < 0:
		return usageErr("-settle must be >= 0")
	case c.Scenario == ScenarioPropagation && len(c.URLs) < 2:
		return usageErr("the propagation scenario needs at least two URLs: it writes at the first and polls the others")
	}
	if c.HeartbeatInterval > 0 {
		if c.Scenario != ScenarioMixed && c.Scenario != ScenarioHeartbeat {
			return usageErr("-heartbeat-interval applies to the mixed and heartbeat scenarios only")
		}
		derived := float64(c.Instances) / c.HeartbeatInterval.Seconds()
		if c.Rate > 0 && math.Abs(c.Rate-derived) > 0.01*derived {
			return usageErr("-rate %g and -heartbeat-interval %v disagree: with %d instances the interval gives %.6g req/s (give one of them)",
				c.Rate, c.HeartbeatInterval, c.Instances, derived)
		}
		c.Rate = derived
	}
	return nil
}

// runner holds what the scenarios share during one run.
type runner struct {
	cfg     Config
	c       *client
	bases   []string // Eureka base URLs, ending in "/"
	origins []string // scheme://host of each base, for /metrics
	inst    instances
	stderr  io.Writer
	tickets int64 // the next phase's first ticket
	mixed   []mixedSlot
	prop    *propagation
	fetched atomic.Int64 // response bytes of fetches

	regMu      sync.Mutex
	registered map[int64]string // instance -> the base URL it was registered at
}

// Run validates cfg and runs the scenario. Progress and phase messages go to stderr; the caller
// prints the result. Errors other than *UsageError mean the run could not be carried out.
func Run(ctx context.Context, cfg Config, stderr io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, c: newClient(cfg.Connections, cfg.Timeout, cfg.Format), stderr: stderr}
	if cfg.CAFile != "" {
		if err := r.c.trust(cfg.CAFile); err != nil {
			return nil, usageErr("-ca-file: %v", err)
		}
	}
	defer r.c.close()
	for _, b := range cfg.URLs {
		u, _ := url.Parse(b)
		r.bases = append(r.bases, b)
		r.origins = append(r.origins, u.Scheme+"://"+u.Host)
	}
	r.inst = instances{prefix: "bench-" + strconv.FormatInt(time.Now().UnixNano()/int64(time.Millisecond)%(36*36*36*36*36), 36),
		apps: cfg.Apps, ts: time.Now().UnixMilli(), format: cfg.Format}
	r.inst.padding = paddingFor(r.inst, cfg.Payload)
	if err := r.preflight(ctx); err != nil {
		return nil, err
	}

	var exec execFunc
	prefill := false
	switch cfg.Scenario {
	case ScenarioRegister:
		exec = r.execRegister
	case ScenarioHeartbeat:
		exec, prefill = r.execHeartbeat, true
	case ScenarioMixed:
		r.mixed = make([]mixedSlot, cfg.Instances)
		exec, prefill = r.execMixed, true
	case ScenarioFetch:
		exec, prefill = r.execFetch, true
	case ScenarioPropagation:
		exec = r.execPropagation
		r.prop = newPropagation(r, r.bases[1:], cfg.Connections, cfg.PollInterval, cfg.WatchRate)
	case ScenarioMemory:
		exec = r.execMemory
	}
	if prefill {
		if err := r.prefill(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Warmup > 0 && cfg.Scenario != ScenarioMemory && ctx.Err() == nil {
		st := runPhase(ctx, r.phase("warm-up", cfg.Rate, cfg.Warmup, 0), exec)
		r.tickets += st.tickets
		if n := st.errorCount(); n > 0 {
			fmt.Fprintf(stderr, "warm-up: %d of %d requests failed (%s)\n", n, st.requests, kv(st.errors))
		}
	}

	var memory []*NodeMemory
	measured := r.phase(cfg.Scenario, cfg.Rate, cfg.Duration, cfg.Requests)
	if cfg.Scenario == ScenarioMemory {
		memory = r.memoryBefore(ctx)
		measured.duration, measured.requests, measured.firstTicket = 0, int64(cfg.Instances), 0
	}
	if r.prop != nil {
		r.prop.active.Store(true)
	}
	r.fetched.Store(0)
	st := runPhase(ctx, measured, exec)
	if r.prop != nil {
		r.prop.active.Store(false)
		fmt.Fprintln(stderr, "propagation: waiting for the last pollers")
		r.prop.wait()
	}
	if memory != nil && ctx.Err() == nil {
		r.memoryAfter(ctx, memory, st.kinds["register"]-st.errorCount())
	}
	res := r.result(st, memory)
	r.cleanup(ctx, res)
	return res, nil
}

// track records that instance k was registered at base.
func (r *runner) track(base string, k int64) {
	r.regMu.Lock()
	if r.registered == nil {
		r.registered = map[int64]string{}
	}
	r.registered[k] = base
	r.regMu.Unlock()
}

// cleanup deregisters every instance the run registered, at the node it registered it with (the
// cluster replicates the cancels), unless -keep. It runs after an interrupt too, bounded by a
// minute.
func (r *runner) cleanup(ctx context.Context, res *Result) {
	r.regMu.Lock()
	left := r.registered
	r.registered = nil
	r.regMu.Unlock()
	if len(left) == 0 {
		return
	}
	if r.cfg.Keep {
		res.Kept = len(left)
		fmt.Fprintf(r.stderr, "kept %d instances under apps %s* (-keep)\n", len(left), AppPrefix)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	start := time.Now()
	work := make(chan int64)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				status, _, err := r.c.do(ctx, http.MethodDelete, r.instanceURL(left[k], k), nil)
				// 404: already gone (a cancel of the mixed scenario, or eviction).
				if err == nil && (status/100 == 2 || status == http.StatusNotFound) {
					done.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for k := range left {
		if ctx.Err() != nil {
			break
		}
		work <- k
	}
	close(work)
	wg.Wait()
	res.Deregistered = int(done.Load())
	fmt.Fprintf(r.stderr, "cleanup: deregistered %d instances in %.2fs", done.Load(), time.Since(start).Seconds())
	if n := int64(len(left)) - done.Load(); n > 0 {
		res.Kept = int(n)
		fmt.Fprintf(r.stderr, "; %d could not be deregistered and remain under apps %s*", n, AppPrefix)
	}
	fmt.Fprintln(r.stderr)
}

func (r *runner) phase(name string, rate float64, d time.Duration, n int64) phase {
	return phase{name: name, workers: r.cfg.Connections, rate: rate, duration: d, requests: n, firstTicket: r.tickets,
		late: r.cfg.Late, drain: r.cfg.Timeout, progress: r.cfg.Progress, progressOut: r.stderr}
}

// preflight checks that every node answers HTTP at its Eureka base (any status will do: an
// unknown instance is a 404 on every Eureka server).
func (r *runner) preflight(ctx context.Context) error {
	for _, b := range r.bases {
		_, _, err := r.c.do(ctx, http.MethodGet, b+"apps/HERALD-BENCH-PROBE/probe", nil)
		if err != nil {
			return fmt.Errorf("cannot reach %s: %w", b, err)
		}
	}
	return nil
}

// prefill registers -instances instances (closed loop, not measured) for the scenarios that need
// a populated registry.
func (r *runner) prefill(ctx context.Context) error {
	start := time.Now()
	st := runPhase(ctx, r.phase("warm-up", 0, 0, int64(r.cfg.Instances)), r.execPrefill)
	r.tickets += st.tickets
	failed := st.errorCount()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed == st.requests {
		return fmt.Errorf("warm-up: every registration failed (%s)", kv(st.errors))
	}
	if failed > 0 {
		fmt.Fprintf(r.stderr, "warm-up: %d of %d registrations failed (%s)\n", failed, st.requests, kv(st.errors))
	}
	fmt.Fprintf(r.stderr, "warm-up: registered %d instances in %.2fs\n", st.requests-failed, time.Since(start).Seconds())
	return nil
}

func (r *runner) result(st *stats, memory []*NodeMemory) *Result {
	cfg := r.cfg
	res := &Result{Scenario: cfg.Scenario, Targets: r.bases, Format: cfg.Format, Connections: cfg.Connections, Rate: cfg.Rate,
		Instances: cfg.Instances, Apps: cfg.Apps, PayloadBytes: len(r.inst.body(int64(cfg.Instances) / 2)),
		DurationSeconds: st.elapsed.Seconds(), Requests: st.requests, Latency: latencyOf(st.latency),
		ByKind: st.kinds, Errors: st.errors, ErrorCount: st.errorCount(), Memory: memory}
	if st.elapsed > 0 {
		res.Throughput = float64(st.requests) / st.elapsed.Seconds()
	}
	if cfg.Rate > 0 {
		svc := latencyOf(st.service)
		res.Service = &svc
		res.Late = &Late{ThresholdMs: ms(cfg.Late), Count: st.late, Unsent: st.unsent, LagP99Ms: ms(st.lag.Quantile(0.99)), LagMaxMs: ms(st.lag.Max())}
	}
	switch cfg.Scenario {
	case ScenarioFetch:
		if st.requests > 0 {
			res.ResponseBytes = float64(r.fetched.Load()) / float64(st.requests)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("the registry was pre-filled with %d instances (plus what the server held before)", cfg.Instances))
	case ScenarioMixed, ScenarioHeartbeat:
		if hb := st.kinds["heartbeat"]; hb > 0 && st.elapsed > 0 {
			perSec := float64(hb) / st.elapsed.Seconds()
			res.HeartbeatInterval = float64(cfg.Instances) / res.Throughput
			res.Notes = append(res.Notes, fmt.Sprintf("%.0f heartbeats/s is the load of about %.0f Eureka clients renewing every 30s",
				perSec, perSec*30))
		}
	case ScenarioPropagation:
		p := r.prop
		res.Propagation = &Propagation{Latency: latencyOf(p.all), Watched: p.watched.Load(), Skipped: p.skipped.Load(), Timeouts: p.timeouts.Load(),
			Polls: p.polls.Load(), PollErrors: p.pollErrs.Load()}
		for i, t := range p.targets {
			res.Propagation.PerTarget = append(res.Propagation.PerTarget, TargetPropagation{Target: t, Latency: latencyOf(p.hists[i])})
		}
		if k, ok := p.lastError.Load().(string); ok {
			res.Notes = append(res.Notes, "last propagation poll error: "+k)
		}
	case ScenarioMemory:
		if st.requests < int64(cfg.Instances) {
			res.Notes = append(res.Notes, fmt.Sprintf("interrupted after %d of %d registrations", st.requests, cfg.Instances))
		}
	}
	return res
}

// IsUsage reports whether err is a bad-settings error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
