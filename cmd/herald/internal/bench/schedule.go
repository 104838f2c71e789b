package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// execFunc performs ticket i (one logical operation: usually one request) and returns its kind
// (register, heartbeat, ...), the HTTP status and the transport error.
type execFunc func(ctx context.Context, i int64) (kind string, status int, err error)

// phase describes one run of the load loop.
type phase struct {
	name        string
	workers     int           // concurrent requests: one per connection
	rate        float64       // requests per second; 0 = closed loop, as fast as the workers go
	duration    time.Duration // 0 = no time limit
	requests    int64         // 0 = no count limit
	firstTicket int64         // tickets handed to exec are firstTicket, firstTicket+1, ...
	late        time.Duration // a request starting later than this after its intended time is late
	drain       time.Duration // open loop with a duration: requests not started by duration+drain are dropped
	progress    time.Duration // interval of the progress line; 0 = none
	progressOut io.Writer
}

// stats is what a phase measured. Workers fill their own and the phase merges them.
type stats struct {
	latency  *Histogram // from the intended start (open loop) or the actual start (closed loop)
	service  *Histogram // from the actual send
	lag      *Histogram // how late requests started after their intended time (open loop)
	errors   map[string]int64
	kinds    map[string]int64
	late     int64
	unsent   int64     // open loop: due before the end but not started by the cutoff
	requests int64     // completed, successful or not
	tickets  int64     // tickets claimed (the next phase starts after them)
	start    time.Time // t0: ticket n of an open-loop phase is due at start + n/rate
	elapsed  time.Duration
}

func newStats() *stats {
	return &stats{latency: NewHistogram(), service: NewHistogram(), lag: NewHistogram(),
		errors: map[string]int64{}, kinds: map[string]int64{}}
}

func (s *stats) merge(o *stats) {
	s.latency.Merge(o.latency)
	s.service.Merge(o.service)
	s.lag.Merge(o.lag)
	for k, v := range o.errors {
		s.errors[k] += v
	}
	for k, v := range o.kinds {
		s.kinds[k] += v
	}
	s.late += o.late
	s.requests += o.requests
}

func (s *stats) errorCount() int64 {
	var n int64
	for _, v := range s.errors {
		n += v
	}
	return n
}

// intended returns the intended start of ticket n of an open-loop phase started at t0.
func intended(t0 time.Time, rate float64, n int64) time.Time {
	return t0.Add(time.Duration(float64(n) * float64(time.Second) / rate))
}

// runPhase drives exec from p.workers goroutines until the phase's duration or request count is
// reached, or ctx ends (requests cut short by ctx are not counted).
//
// Open loop (p.rate > 0): ticket n is due at t0 + n/rate whatever happened before. A free worker
// claims the next ticket and waits for its due time; when every worker is busy the due time
// passes and the ticket is sent as soon as a worker frees up, and that wait counts in its
// latency, which is always measured from the due time (no coordinated omission).
func runPhase(ctx context.Context, p phase, exec execFunc) *stats {
	var next, done, failed atomic.Int64
	t0 := time.Now()
	results := make([]*stats, p.workers)
	var wg sync.WaitGroup
	for w := range p.workers {
		st := newStats()
		results[w] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, p, t0, &next, &done, &failed, st, exec)
		}()
	}
	stopProgress := startProgress(p, t0, &done, &failed)
	wg.Wait()
	elapsed := time.Since(t0)
	stopProgress()
	total := newStats()
	for _, st := range results {
		total.merge(st)
	}
	total.tickets = next.Load() // may overshoot by up to p.workers: later phases just skip them
	total.start, total.elapsed = t0, elapsed
	if p.rate > 0 && p.duration > 0 {
		due := int64(math.Ceil(p.duration.Seconds() * p.rate))
		if p.requests > 0 {
			due = min(due, p.requests)
		}
		total.unsent = max(0, due-total.requests)
	}
	return total
}

func worker(ctx context.Context, p phase, t0 time.Time, next, done, failed *atomic.Int64, st *stats, exec execFunc) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for ctx.Err() == nil {
		n := next.Add(1) - 1
		if p.requests > 0 && n >= p.requests {
			return
		}
		var due time.Time
		if p.rate > 0 {
			due = intended(t0, p.rate, n)
			if p.duration > 0 && due.Sub(t0) >= p.duration {
				return
			}
			if p.duration > 0 && p.drain > 0 && time.Since(t0) > p.duration+p.drain {
				return // hopelessly behind: what is left is reported as unsent
			}
			if !sleepUntil(ctx, timer, due) {
				return
			}
		} else if p.duration > 0 && time.Since(t0) >= p.duration {
			return
		}
		start := time.Now()
		if p.rate == 0 {
			due = start
		}
		kind, status, err := exec(ctx, p.firstTicket+n)
		end := time.Now()
		if err != nil && ctx.Err() != nil {
			return // the run was interrupted: neither a success nor a server error
		}
		st.requests++
		st.kinds[kind]++
		st.latency.Record(end.Sub(due))
		st.service.Record(end.Sub(start))
		if p.rate > 0 {
			lag := start.Sub(due)
			st.lag.Record(lag)
			if lag > p.late {
				st.late++
			}
		}
		done.Add(1)
		if k := errorKind(status, err); k != "" {
			st.errors[k]++
			failed.Add(1)
		}
	}
}

// preciseWindow is the last stretch before a due time slept with sleepPrecise.
const preciseWindow = 2 * time.Millisecond

// sleepUntil waits for due: a Go timer (which ctx can interrupt) for all but the last
// preciseWindow, then a precise sleep. It returns false when ctx ended first.
func sleepUntil(ctx context.Context, timer *time.Timer, due time.Time) bool {
	if d := time.Until(due) - preciseWindow; d > 0 {
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
	if d := time.Until(due); d > 0 {
		sleepPrecise(d)
	}
	return ctx.Err() == nil
}

// startProgress prints a progress line every p.progress until the returned function is called.
func startProgress(p phase, t0 time.Time, done, failed *atomic.Int64) func() {
	if p.progress <= 0 || p.progressOut == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(p.progress)
		defer t.Stop()
		var last int64
		lastAt := t0
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				fmt.Fprintf(p.progressOut, "%-10s %7.1fs %10d requests %10.0f req/s %8d errors\n",
					p.name, now.Sub(t0).Seconds(), n, rate, failed.Load())
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(stop); <-finished }
}
