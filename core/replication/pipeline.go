package replication

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Config tunes one peer's pipeline. Zero values take Eureka's numbers (see DefaultConfig).
type Config struct {
	// MaxBatchSize is the most tasks in one batch (Eureka: 250).
	MaxBatchSize int
	// BatchingDelay is how long the oldest task may wait for a batch to fill (Eureka: 500 ms).
	BatchingDelay time.Duration
	// MaxBatchBytes is the most encoded bytes in one batch, its envelope included; a single task
	// larger than that is sent alone. Keep it below the peers' request body limit, so that no batch
	// is refused for its size (Eureka cuts by count only: maxBatchingSize).
	MaxBatchBytes int64
	// MaxBufferSize is the most tasks pending; past it the oldest is dropped (Eureka: 10000).
	MaxBufferSize int
	// MaxBufferBytes is the most encoded bytes pending, counted as MaxBatchBytes counts them; past it
	// the oldest tasks are dropped as overflow. The acceptor queue is bounded by the same figure.
	MaxBufferBytes int64
	// Workers send batches concurrently (Eureka: 20).
	Workers int
	// CongestionRetryDelay pauses the peer after a 503 or read timeout (Eureka: 1 s);
	// NetworkFailureRetryDelay after a connection failure (Eureka: 100 ms); both capped by MaxDelay.
	CongestionRetryDelay     time.Duration
	NetworkFailureRetryDelay time.Duration
	MaxDelay                 time.Duration
	// MaxTimeForReplication is the life of cancel and status tasks (Eureka: 30 s).
	MaxTimeForReplication time.Duration
}

// DefaultMaxBatchBytes is MaxBatchBytes when unset: 1 MiB (herald's default request body limit)
// less 64 KiB of margin.
const DefaultMaxBatchBytes = 1<<20 - 64<<10

// DefaultMaxBufferBytes is MaxBufferBytes when unset.
const DefaultMaxBufferBytes = 64 << 20

// DefaultConfig returns Eureka's numbers, and herald's byte limits.
func DefaultConfig() Config {
	return Config{
		MaxBatchSize:             250,
		MaxBatchBytes:            DefaultMaxBatchBytes,
		BatchingDelay:            500 * time.Millisecond,
		MaxBufferSize:            10000,
		MaxBufferBytes:           DefaultMaxBufferBytes,
		Workers:                  20,
		CongestionRetryDelay:     time.Second,
		NetworkFailureRetryDelay: 100 * time.Millisecond,
		MaxDelay:                 30 * time.Second,
		MaxTimeForReplication:    30 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = d.MaxBatchSize
	}
	if c.BatchingDelay < 0 {
		c.BatchingDelay = 0
	}
	if c.MaxBufferSize <= 0 {
		c.MaxBufferSize = d.MaxBufferSize
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.MaxBufferBytes <= 0 {
		c.MaxBufferBytes = d.MaxBufferBytes
	}
	// A batch never holds more than the buffer can.
	c.MaxBatchBytes = min(c.MaxBatchBytes, c.MaxBufferBytes)
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.CongestionRetryDelay <= 0 {
		c.CongestionRetryDelay = d.CongestionRetryDelay
	}
	if c.NetworkFailureRetryDelay <= 0 {
		c.NetworkFailureRetryDelay = d.NetworkFailureRetryDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.MaxTimeForReplication <= 0 {
		c.MaxTimeForReplication = d.MaxTimeForReplication
	}
	return c
}

// hooks are what a pipeline needs from its replicator.
type hooks struct {
	encode     func(*registry.Instance) []byte
	onConflict func(ctx context.Context, peer sdk.Peer, entity []byte)
	lookup     func(app, id string) (*registry.Instance, bool)
	observer   Observer
	clock      registry.Clock
	logger     hclog.Logger
	batchSeq   *atomic.Uint64
}

// pipeline is one peer's three queues and workers.
type pipeline struct {
	peer      sdk.Peer
	cfg       Config
	transport sdk.Transport
	policy    sdk.FlushPolicy
	h         hooks
	c         counters

	// acceptor queue: appended by writers under inMu, swapped out whole by the acceptor loop. It is
	// bounded at 2×MaxBufferSize tasks and MaxBufferBytes bytes (oldest dropped) so a stuck acceptor
	// cannot grow memory unbounded.
	inMu    sync.Mutex
	in      []*Task
	inBytes int64
	retryQ  [][]*Task
	wake    chan struct{}
	// inFlight counts, per instance (app/id), the tasks in batches being sent or waiting to be
	// retried. A task for an instance with work in flight is not cut into another batch: batches
	// to one peer are sent by several workers at once and may be applied in any order, and a
	// register overtaking a cancel of the same instance would bring it back. Guarded by inMu.
	inFlight map[string]int
	released atomic.Uint64 // bumped whenever inFlight loses keys

	// owned by the acceptor loop
	pending  *pendingStage
	shaper   shaper
	decision sdk.FlushDecision
	decided  bool
	recheck  int64 // ms; 0 = until the next cut
	// slowPolicy: the last Decide took asyncDecideAfter or more; asking: a Decide runs in the
	// background, its answer comes on answers.
	slowPolicy bool
	asking     bool
	answers    chan policyAnswer
	// blockedAt is released's value when a cut found only tasks of instances in flight: no batch
	// is cut again until something is released or new work arrives (blocked reports it).
	blockedAt uint64
	blocked   bool

	ready chan struct{}   // a token per idle worker
	work  chan *sentBatch // cut batches, taken by workers

	latency atomic.Int64 // moving average send latency, ns
	errs    atomic.Int64 // failed sends in the current window
	busy    atomic.Int64 // workers sending a batch (and its halves after a refusal)

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool
}

type sentBatch struct {
	id    string
	tasks []*Task
}

func newPipeline(peer sdk.Peer, cfg Config, tr sdk.Transport, pol sdk.FlushPolicy, h hooks) *pipeline {
	cfg = cfg.withDefaults()
	p := &pipeline{
		peer:      peer,
		cfg:       cfg,
		transport: tr,
		policy:    pol,
		h:         h,
		wake:      make(chan struct{}, 1),
		answers:   make(chan policyAnswer, 1),
		ready:     make(chan struct{}, cfg.Workers),
		work:      make(chan *sentBatch, cfg.Workers),
		shaper: shaper{congestionDelay: cfg.CongestionRetryDelay.Milliseconds(),
			failureDelay: cfg.NetworkFailureRetryDelay.Milliseconds(), cap: cfg.MaxDelay.Milliseconds()},
	}
	p.c.batchSize = newHistogram(BatchSizeBuckets)
	p.c.latency = newHistogram(LatencyBuckets)
	p.c.propagation = newHistogram(LatencyBuckets)
	p.pending = newPendingStage(cfg.MaxBufferSize, cfg.MaxBufferBytes, &p.c)
	p.inFlight = map[string]int{}
	if p.policy == nil {
		p.policy = SizeOrAge{MaxBatch: cfg.MaxBatchSize, Delay: cfg.BatchingDelay}
	}
	return p
}

func (p *pipeline) start() {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1 + p.cfg.Workers)
	go p.acceptLoop()
	for i := 0; i < p.cfg.Workers; i++ {
		go p.worker()
	}
}

func (p *pipeline) nowMs() int64 { return p.h.clock.Now().UnixMilli() }

func (p *pipeline) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// accept hands a task to the acceptor queue. It never blocks on the network or on the pending
// stage: it appends under a short lock.
func (p *pipeline) accept(t *Task) {
	if p.closing.Load() {
		return
	}
	p.inMu.Lock()
	for len(p.in) > 0 && (len(p.in) >= 2*p.cfg.MaxBufferSize || p.inBytes+t.size() > p.cfg.MaxBufferBytes) {
		dropped := p.in[0]
		p.in[0] = nil
		p.in = p.in[1:]
		p.inBytes -= dropped.size()
		p.c.overflow.Add(1)
		p.h.observer.Dropped(p.peer.Name, dropped, "overflow")
	}
	p.in = append(p.in, t)
	p.inBytes += t.size()
	p.c.acceptorDepth.Store(int64(len(p.in)))
	p.c.acceptorBytes.Store(p.inBytes)
	p.inMu.Unlock()
	p.c.accepted.Add(1)
	p.h.observer.Accepted(p.peer.Name, t)
	p.poke()
}

// retry hands a failed batch's tasks back; the acceptor loop puts them at the pending front.
func (p *pipeline) retry(ts []*Task) {
	p.inMu.Lock()
	p.retryQ = append(p.retryQ, ts)
	p.inMu.Unlock()
	p.poke()
}

// drain moves retried and newly accepted tasks into the pending stage.
func (p *pipeline) drain(now int64) {
	p.inMu.Lock()
	in, retries := p.in, p.retryQ
	p.in, p.retryQ, p.inBytes = nil, nil, 0
	// Count the tasks as pending before they leave the acceptor queue, so idle never sees them
	// nowhere; storeDepth below sets the exact figure.
	moving := int64(len(in))
	for _, r := range retries {
		moving += int64(len(r))
	}
	p.c.pendingDepth.Add(moving)
	p.c.acceptorDepth.Store(0)
	p.c.acceptorBytes.Store(0)
	p.inMu.Unlock()
	// Retries first, newest failure first so that older work ends up in front. Their instances
	// stay in flight until they are back in the pending stage, ahead of anything newer for them.
	for i := len(retries) - 1; i >= 0; i-- {
		sup, exp, ovf := p.pending.requeue(retries[i], now)
		p.dropped(sup, "superseded")
		p.dropped(exp, "expired")
		p.dropped(ovf, "overflow")
		p.release(retries[i])
	}
	if len(in) > 0 || len(retries) > 0 {
		p.blocked = false
	}
	for _, t := range in {
		replaced, dropped := p.pending.add(t)
		if replaced != nil {
			p.h.observer.Dropped(p.peer.Name, replaced, "superseded")
		}
		p.dropped(dropped, "overflow")
	}
	p.dropped(p.pending.dropExpiredFront(now), "expired")
	p.storeDepth()
}

// storeDepth publishes the pending stage's depth and bytes for Stats.
func (p *pipeline) storeDepth() {
	p.c.pendingDepth.Store(int64(p.pending.len()))
	p.c.pendingBytes.Store(p.pending.bytes)
}

func (p *pipeline) dropped(ts []*Task, reason string) {
	for _, t := range ts {
		p.h.observer.Dropped(p.peer.Name, t, reason)
	}
}

// asyncDecideAfter is how long a Decide call may take before the pipeline stops waiting for
// the policy: a policy in a plugin process answers in hundreds of microseconds, during which the
// acceptor loop would cut nothing. Past it, a decision that carries RecheckAfter stays in force
// until the next one arrives, and the next one is asked for in the background.
const asyncDecideAfter = 50 * time.Microsecond

// A slow policy's decision holds for at least slowPolicyHold times the time it took to give, up
// to slowPolicyMaxHold, even when it asks to be asked again sooner (RecheckAfter). Asking a
// policy in a plugin process costs both processes a gRPC call and a wakeup each (a few hundred
// microseconds of CPU); every pipeline asking every 5 ms made an out-of-process flush policy cost
// 15% of the cluster's throughput at saturation (BENCHMARKS.md, "The flush policy out of
// process"). Holding a 300 µs answer for 30 ms makes asking about 1% of the pipeline's time, and a
// policy that answers slower because the machine is busy is asked less often still. The host
// enforces the decision's thresholds meanwhile, so only the reaction to a change of load is later.
const (
	slowPolicyHold    = 100
	slowPolicyMaxHold = 100 * time.Millisecond
)

// policyAnswer is a Decide made in the background.
type policyAnswer struct {
	d    sdk.FlushDecision
	err  error
	st   sdk.PendingState
	took time.Duration
	now  int64
}

// decide returns the flush policy's current decision, asking the policy only when the last answer
// is due for a recheck: once after each cut, or after RecheckAfter. A slow policy (see
// asyncDecideAfter) whose decision carries RecheckAfter is asked without waiting: its previous
// decision holds until the answer arrives (the answer pokes the loop).
func (p *pipeline) decide(now int64) sdk.FlushDecision {
	select {
	case a := <-p.answers:
		p.asking = false
		p.slowPolicy = a.took >= asyncDecideAfter
		p.adopt(a.d, a.err, a.st, a.now, a.took)
	default:
	}
	if p.decided && (p.recheck == 0 || now < p.recheck) {
		return p.decision
	}
	st := p.pendingState(now)
	if p.decided && p.recheck != 0 && p.slowPolicy {
		if !p.asking {
			p.asking = true
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				start := time.Now()
				d, err := p.policy.Decide(p.ctx, st)
				p.answers <- policyAnswer{d: d, err: err, st: st, took: time.Since(start), now: p.nowMs()}
				p.poke()
			}()
		}
		return p.decision
	}
	start := time.Now()
	d, err := p.policy.Decide(p.ctx, st)
	took := time.Since(start)
	p.slowPolicy = took >= asyncDecideAfter
	p.adopt(d, err, st, now, took)
	return p.decision
}

// pendingState is what the flush policy is told.
func (p *pipeline) pendingState(now int64) sdk.PendingState {
	st := sdk.PendingState{
		Count:         p.pending.len(),
		Bytes:         p.pending.bytes,
		IdleWorkers:   len(p.ready),
		InFlight:      int(p.c.inFlight.Load()),
		RecentLatency: time.Duration(p.latency.Load()),
		RecentErrors:  int(p.errs.Load()),
		MaxBatchSize:  p.cfg.MaxBatchSize,
		MaxBufferSize: p.cfg.MaxBufferSize,
	}
	if o := p.pending.oldest(); o != nil {
		st.OldestAge = time.Duration(now-o.Accepted) * time.Millisecond
	}
	return st
}

// adopt makes the policy's answer, which took took to come, the current decision (Eureka's rule
// when the policy failed).
func (p *pipeline) adopt(d sdk.FlushDecision, err error, st sdk.PendingState, now int64, took time.Duration) {
	if err != nil {
		// A failing policy must not stop replication: fall back to Eureka's rule.
		p.h.logger.Warn("flush policy failed; using size-or-age", "peer", p.peer.Name, "error", err)
		d, _ = SizeOrAge{MaxBatch: p.cfg.MaxBatchSize, Delay: p.cfg.BatchingDelay}.Decide(p.ctx, st)
	}
	if d.MaxBatch <= 0 || d.MaxBatch > p.cfg.MaxBatchSize {
		d.MaxBatch = p.cfg.MaxBatchSize
	}
	p.decision, p.decided = d, true
	p.recheck = 0
	if d.RecheckAfter > 0 {
		hold := d.RecheckAfter
		if took >= asyncDecideAfter && err == nil {
			hold = max(hold, min(slowPolicyHold*took, slowPolicyMaxHold))
		}
		p.recheck = now + hold.Milliseconds()
	}
}

// readyIn says whether a batch may be cut now (0), or in how many ms something may change: the
// oldest task reaching MaxAge, or the policy's recheck (-1: nothing timed).
func (p *pipeline) readyIn(d sdk.FlushDecision, now int64) int64 {
	n := p.pending.len()
	if n == 0 {
		return -1
	}
	// A full buffer, or enough bytes for a full batch, cuts at once as a full count does.
	b := p.pending.bytes
	if d.CutNow || n >= p.cfg.MaxBufferSize || b+batchEnvelope >= p.cfg.MaxBatchBytes || (d.MinCount > 0 && n >= d.MinCount) {
		return 0
	}
	wait := d.MaxAge.Milliseconds() - (now - p.pending.oldest().Accepted)
	if wait <= 0 {
		return 0
	}
	if p.recheck > 0 && p.recheck-now < wait {
		wait = max(p.recheck-now, 1)
	}
	return wait
}

// probing reports whether the last send failed and a batch is still out: then no other batch is
// cut. Eureka's workers all retry a failing peer at once; each send rebuilds the batch's body, so
// twenty workers retrying a peer that is down churn twenty bodies every retry delay for nothing.
// One batch probes the peer; once a send succeeds, every worker sends again.
func (p *pipeline) probing() bool {
	return p.errs.Load() > 0 && p.busy.Load()+p.c.batchQueueDepth.Load() > 0
}

func (p *pipeline) shaperDelay(now int64) int64 {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	return p.shaper.delay(now)
}

func (p *pipeline) acceptLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := p.nowMs()
		p.drain(now)
		var readyCh chan struct{}
		wait := int64(-1)
		if p.blocked && p.released.Load() != p.blockedAt {
			p.blocked = false
		}
		if p.pending.len() > 0 && !p.blocked {
			if pause := p.shaperDelay(now); pause > 0 {
				wait = pause
			} else if !p.probing() { // a failing peer gets one batch at a time; the worker pokes
				d := p.decide(now)
				switch in := p.readyIn(d, now); {
				case in == 0:
					select {
					case <-p.ready:
						p.dispatch(d, now)
						continue
					default:
						readyCh = p.ready // wait for a worker; tasks stay replaceable meanwhile
					}
				case in > 0:
					wait = in
				}
			}
		}
		var timerC <-chan time.Time
		if wait >= 0 {
			timer.Reset(time.Duration(max(wait, 1)) * time.Millisecond)
			timerC = timer.C
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-readyCh:
			now = p.nowMs()
			p.drain(now)
			if p.pending.len() > 0 {
				p.dispatch(p.decide(now), now)
			} else {
				p.ready <- struct{}{} // nothing to send after all: give the token back
			}
		case <-timerC:
		}
		if timerC != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// dispatch cuts a batch for the worker whose token was taken.
func (p *pipeline) dispatch(d sdk.FlushDecision, now int64) {
	p.inMu.Lock()
	batch, expired := p.pending.cut(d.MaxBatch, p.cfg.MaxBatchBytes, now, func(t *Task) bool { return p.inFlight[t.key()] > 0 })
	for _, t := range batch {
		p.inFlight[t.key()]++
	}
	if len(batch) == 0 && p.pending.len() > 0 {
		// Every pending task waits for its instance's batch in flight: cut nothing until a
		// batch ends (the worker pokes) or new work comes.
		p.blocked, p.blockedAt = true, p.released.Load()
	}
	p.inMu.Unlock()
	p.dropped(expired, "expired")
	if len(batch) > 0 {
		p.c.batchQueueDepth.Add(1) // before the pending depth drops, so idle never sees the batch nowhere
	}
	p.storeDepth()
	if len(batch) == 0 {
		p.ready <- struct{}{}
		return
	}
	p.decided = p.decided && p.recheck != 0 // RecheckAfter 0: ask again after every cut
	b := &sentBatch{id: p.peer.Name + "#" + strconv.FormatUint(p.h.batchSeq.Add(1), 10), tasks: batch}
	p.h.observer.Batched(p.peer.Name, b.id, batch)
	p.work <- b // never blocks: one slot per worker, and a token was taken
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	for {
		select {
		case p.ready <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		select {
		case b := <-p.work:
			p.busy.Add(1) // until the batch and any halves of it are sent
			p.c.batchQueueDepth.Add(-1)
			p.send(b)
			p.busy.Add(-1)
			p.poke() // a probe ended: the acceptor loop may send again
		case <-p.ctx.Done():
			return
		}
	}
}

func (p *pipeline) send(b *sentBatch) {
	items := make([]sdk.Item, len(b.tasks))
	tp, traced := p.h.observer.(interface{ TraceParent(string, *Task) string })
	var bytes int64
	for i, t := range b.tasks {
		items[i] = t.item(p.h.encode) // a prepared task shares its encoded instance: nothing is encoded here
		bytes += t.size()
		if traced {
			if s := tp.TraceParent(p.peer.Name, t); s != "" {
				items[i].TraceParent = s
			}
		}
	}
	ctx := p.ctx
	if bc, ok := p.h.observer.(interface {
		BatchContext(context.Context, string) context.Context
	}); ok {
		ctx = bc.BatchContext(ctx, b.id) // the transport's work (a plugin call) joins the batch's trace
	}
	p.c.inFlight.Add(1)
	p.c.inFlightBytes.Add(bytes)
	start := time.Now()
	results, err := p.transport.Send(ctx, p.peer, sdk.Batch{ID: b.id, Items: items})
	el := time.Since(start)
	p.c.inFlightBytes.Add(-bytes)
	p.c.inFlight.Add(-1)
	p.c.batches.Add(1)
	p.c.items.Add(int64(len(items)))
	p.c.batchSize.observe(float64(len(items)))
	p.c.latency.observeTraced(el.Seconds(), sampledTraceID(trace.SpanContextFromContext(ctx)))
	p.c.latencyNanos.Add(int64(el))
	p.c.latencyCount.Add(1)
	// Exponential moving average (1/8) of the send latency, for adaptive flush policies.
	old := p.latency.Load()
	p.latency.Store(old + (int64(el)-old)/8)
	if err == nil && len(results) != len(items) {
		err = sdk.Fail(sdk.Permanent, errWrongCount{len(results), len(items)})
	}
	p.h.observer.Sent(p.peer.Name, b.id, b.tasks, items, err)
	if err != nil {
		p.errs.Add(1)
		p.failed(b, err)
		return
	}
	p.errs.Store(0)
	p.c.success.Add(1)
	for i, r := range results {
		p.itemResult(b.tasks[i], r)
	}
	p.release(b.tasks)
}

// release ends the tasks' time in flight: later tasks of their instances may be cut again.
func (p *pipeline) release(ts []*Task) {
	if len(ts) == 0 {
		return
	}
	p.inMu.Lock()
	for _, t := range ts {
		k := t.key()
		if n := p.inFlight[k]; n > 1 {
			p.inFlight[k] = n - 1
		} else {
			delete(p.inFlight, k)
		}
	}
	p.inMu.Unlock()
	p.released.Add(1)
}

type errWrongCount struct{ got, want int }

func (e errWrongCount) Error() string {
	return "peer answered " + strconv.Itoa(e.got) + " results for " + strconv.Itoa(e.want) + " items"
}

func (p *pipeline) failed(b *sentBatch, err error) {
	class := sdk.ClassOf(err)
	if p.ctx.Err() != nil && !p.closing.Load() {
		p.release(b.tasks)
		return
	}
	switch class {
	case sdk.Congestion, sdk.Transient:
		if class == sdk.Congestion {
			p.c.congestion.Add(1)
		} else {
			p.c.transient.Add(1)
		}
		p.c.retries.Add(int64(len(b.tasks)))
		p.shaperRecord(class)
		for _, t := range b.tasks {
			p.h.observer.Retried(p.peer.Name, t, class)
		}
		p.h.logger.Debug("batch failed; retrying", "peer", p.peer.Name, "batch", b.id, "tasks", len(b.tasks),
			"class", class.String(), "error", err)
		p.retry(b.tasks)
	default:
		p.c.permanent.Add(1)
		if len(b.tasks) > 1 && p.ctx.Err() == nil {
			p.split(b, err)
			return
		}
		// One task the peer refuses whatever else is in the batch: only it is dropped.
		p.c.permanentDropped.Add(int64(len(b.tasks)))
		p.dropped(b.tasks, "permanent")
		p.release(b.tasks)
		for _, t := range b.tasks {
			args := []any{"peer", p.peer.Name, "app", t.App, "id", t.Instance, "action", string(t.Action),
				"bytes", t.size(), "batch", b.id, "error", err}
			if errors.Is(err, sdk.ErrTooLarge) {
				args = append(args, "hint", "larger than the peer's request body limit (http.max_body_bytes there)")
			}
			p.h.logger.Warn("peer refused a replicated task; dropping it", args...)
		}
	}
}

// split re-sends the halves of a batch a peer refused with a permanent error: a refusal of the
// whole batch (413 for its size, a 400 for one bad item) must cost only the task that causes it,
// never the other clients' writes that travelled with it. Each half that fails again is split in
// turn, so a batch of n tasks with one such task costs about 2·log2(n) sends, and at most 2n-1.
// Halves go out at once from this worker, before anything newer.
func (p *pipeline) split(b *sentBatch, err error) {
	h := len(b.tasks) / 2
	p.h.logger.Debug("peer refused a batch; sending it in halves", "peer", p.peer.Name, "batch", b.id,
		"tasks", len(b.tasks), "error", err)
	for i, part := range [][]*Task{b.tasks[:h], b.tasks[h:]} {
		sb := &sentBatch{id: b.id + "." + strconv.Itoa(i+1), tasks: part}
		p.h.observer.Batched(p.peer.Name, sb.id, part)
		p.send(sb)
	}
}

// shaperRecord records a failure for the traffic shaper. The shaper is owned by the acceptor
// loop, so the failure is handed over through the retry queue's lock.
func (p *pipeline) shaperRecord(class sdk.FailureClass) {
	c := classTransient
	if class == sdk.Congestion {
		c = classCongestion
	}
	p.inMu.Lock()
	p.shaper.record(c, p.nowMs())
	p.inMu.Unlock()
}

func (p *pipeline) itemResult(t *Task, r sdk.ItemResult) {
	p.h.observer.Acked(p.peer.Name, t, r.StatusCode)
	if !t.born.IsZero() {
		p.c.propagation.observeTraced(time.Since(t.born).Seconds(), sampledTraceID(t.Span))
	}
	if r.StatusCode >= 200 && r.StatusCode < 300 {
		return
	}
	p.c.itemFailures.Add(1)
	switch {
	case t.Action == registry.ActionHeartbeat && r.StatusCode == 404:
		// The peer lacks the instance (or has an older copy): send it a register of the current
		// copy, unless the instance is gone since.
		snap := t.Snapshot
		if p.h.lookup != nil {
			cur, ok := p.h.lookup(t.App, t.Instance)
			if !ok {
				p.h.logger.Debug("peer lacks an instance this node no longer holds; no register sent", "peer", p.peer.Name,
					"app", t.App, "id", t.Instance)
				return
			}
			snap = cur
		}
		if snap != nil {
			reg := *t
			reg.ID = TaskID(registry.ActionRegister, t.App, t.Instance)
			reg.Action = registry.ActionRegister
			reg.Snapshot = snap
			reg.LastDirty = snap.LastDirtyTimestamp
			reg.Status = snap.Status
			reg.StatusVersion = snap.StatusVersion // the version of the override the copy shows
			reg.instance, reg.wire = nil, 0
			p.accept(reg.prepare(p.h.encode)) // a new task of this peer alone: encoded once here
		}
	case len(r.Entity) > 0:
		// The peer holds a newer copy (409): adopt it locally, as a replicated write.
		if p.h.onConflict != nil {
			p.h.onConflict(p.ctx, p.peer, r.Entity)
		}
	case t.Action == registry.ActionCancel && r.StatusCode == 404:
		p.h.logger.Debug("peer had no entry to cancel", "peer", p.peer.Name, "task", t.ID)
	default:
		p.h.logger.Warn("peer refused a replicated item", "peer", p.peer.Name, "task", t.ID, "status", r.StatusCode)
	}
}

// idle reports whether nothing is queued or being sent.
func (p *pipeline) idle() bool {
	p.inMu.Lock()
	n := len(p.in) + len(p.retryQ)
	p.inMu.Unlock()
	return n == 0 && p.c.pendingDepth.Load() == 0 && p.busy.Load() == 0 && p.c.inFlight.Load() == 0 && p.c.batchQueueDepth.Load() == 0
}

// stop waits, within ctx, for the queues to drain, then stops the goroutines.
func (p *pipeline) stop(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !p.idle() {
		select {
		case <-ctx.Done():
			p.closing.Store(true)
			p.cancel()
			p.wg.Wait()
			return
		case <-t.C:
		}
	}
	p.closing.Store(true)
	p.cancel()
	p.wg.Wait()
}

func (p *pipeline) stats() PeerStats {
	c := &p.c
	s := PeerStats{
		Peer:          p.peer.Name,
		AcceptorDepth: c.acceptorDepth.Load(), PendingDepth: c.pendingDepth.Load(),
		AcceptorBytes: c.acceptorBytes.Load(), PendingBytes: c.pendingBytes.Load(), InFlightBytes: c.inFlightBytes.Load(),
		BatchQueueDepth: c.batchQueueDepth.Load(), InFlight: c.inFlight.Load(),
		Accepted: c.accepted.Load(), Batches: c.batches.Load(), Items: c.items.Load(), Retries: c.retries.Load(),
		Success: c.success.Load(), Congestion: c.congestion.Load(), Transient: c.transient.Load(), Permanent: c.permanent.Load(),
		Superseded: c.superseded.Load(), Expired: c.expired.Load(), Overflow: c.overflow.Load(),
		PermanentDropped: c.permanentDropped.Load(), ItemFailures: c.itemFailures.Load(),
		BatchSize: c.batchSize.snapshot(), Latency: c.latency.snapshot(), Propagation: c.propagation.snapshot(),
	}
	if n := c.latencyCount.Load(); n > 0 {
		s.AvgLatency = time.Duration(c.latencyNanos.Load() / n)
	}
	p.inMu.Lock()
	s.Paused = time.Duration(p.shaper.delay(p.nowMs())) * time.Millisecond
	s.RetryDepth = int64(len(p.retryQ))
	p.inMu.Unlock()
	s.Sending = p.busy.Load()
	return s
}

// sampledTraceID is the trace id of a sampled span context, for exemplars; "" otherwise.
func sampledTraceID(sc trace.SpanContext) string {
	if !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}
