package bench

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// propagationWait is how long a write may take to show up at a node before it counts as lost.
const propagationWait = 10 * time.Second

// propagation watches writes made at the first node: for each one and each other node, a poller
// GETs apps/{APP}/{ID} at that node until it answers 200 and records the time since the first
// node's 204 (so the figure includes one poll's round trip, as a client would see it).
//
// At most -watch-rate writes per second are watched (evenly spaced), since polling every write
// would add a load of its own to what is measured. Polls are spaced by -poll-interval, widened
// to a tenth of the time already waited, so slow replication costs few polls while the
// resolution stays within about 10%. At most -connections pollers run per node; a watched write
// that finds them all busy is not sampled there (counted as skipped).
type propagation struct {
	r        *runner
	targets  []string
	interval time.Duration
	sems     []chan struct{}
	active   atomic.Bool  // only writes of the measured phase are watched
	every    int64        // nanoseconds between watched writes (0 = watch all)
	last     atomic.Int64 // when the last watched write was acknowledged
	watched  atomic.Int64

	mu    sync.Mutex
	hists []*Histogram
	all   *Histogram

	wg        sync.WaitGroup
	skipped   atomic.Int64
	timeouts  atomic.Int64
	polls     atomic.Int64
	pollErrs  atomic.Int64
	lastError atomic.Value // string
}

func newPropagation(r *runner, targets []string, perTarget int, interval time.Duration, watchRate float64) *propagation {
	p := &propagation{r: r, targets: targets, interval: interval, all: NewHistogram()}
	if watchRate > 0 {
		p.every = int64(float64(time.Second) / watchRate)
	}
	for range targets {
		p.sems = append(p.sems, make(chan struct{}, perTarget))
		p.hists = append(p.hists, NewHistogram())
	}
	return p
}

// watch starts a poller for app/id at each target node; call it right after the write's 2xx.
// Writes closer than p.every to the last watched one are left alone, so the polls stay a small
// load next to the writes.
func (p *propagation) watch(ctx context.Context, app, id string) {
	acked := time.Now()
	if p.every > 0 {
		last := p.last.Load()
		if acked.UnixNano()-last < p.every || !p.last.CompareAndSwap(last, acked.UnixNano()) {
			return
		}
	}
	p.watched.Add(1)
	for t := range p.targets {
		select {
		case p.sems[t] <- struct{}{}:
		default:
			p.skipped.Add(1)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.sems[t] }()
			p.poll(ctx, t, p.targets[t]+"apps/"+app+"/"+id, acked)
		}()
	}
}

func (p *propagation) poll(ctx context.Context, t int, url string, acked time.Time) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		status, _, err := p.r.c.do(ctx, http.MethodGet, url, nil)
		p.polls.Add(1)
		now := time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && status == http.StatusOK:
			p.mu.Lock()
			p.hists[t].Record(now.Sub(acked))
			p.all.Record(now.Sub(acked))
			p.mu.Unlock()
			return
		case err != nil || status != http.StatusNotFound:
			p.pollErrs.Add(1)
			p.lastError.Store(errorKind(status, err))
			return
		}
		waited := now.Sub(acked)
		if waited > propagationWait {
			p.timeouts.Add(1)
			return
		}
		timer.Reset(max(p.interval, waited/10))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// wait blocks until every poller has finished.
func (p *propagation) wait() { p.wg.Wait() }
