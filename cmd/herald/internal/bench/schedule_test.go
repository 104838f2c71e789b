package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestIntendedTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		rate float64
		n    int64
		want time.Duration
	}{
		{1000, 0, 0}, {1000, 1, time.Millisecond}, {1000, 2500, 2500 * time.Millisecond},
		{3, 1, time.Second / 3}, {0.5, 3, 6 * time.Second}, {200000, 1e6, 5 * time.Second},
	} {
		if got := intended(t0, c.rate, c.n).Sub(t0); got != c.want {
			t.Errorf("rate %v ticket %d: due at +%v, want +%v", c.rate, c.n, got, c.want)
		}
	}
}

// Requests of an open-loop phase are never sent before their intended time, and not much after
// when the target is fast.
func TestOpenLoopSendsAtIntendedTimes(t *testing.T) {
	const rate, n = 200.0, 40
	var mu sync.Mutex
	sent := map[int64]time.Time{}
	st := runPhase(context.Background(), phase{name: "t", workers: 4, rate: rate, requests: n, late: time.Millisecond},
		func(ctx context.Context, i int64) (string, int, error) {
			mu.Lock()
			sent[i] = time.Now()
			mu.Unlock()
			return "op", 200, nil
		})
	if st.requests != n || len(sent) != n {
		t.Fatalf("%d requests, %d sent, want %d", st.requests, len(sent), n)
	}
	var lags []time.Duration
	for i, at := range sent {
		due := intended(st.start, rate, i)
		if at.Before(due) {
			t.Errorf("ticket %d sent %v before its intended time", i, due.Sub(at))
		}
		lags = append(lags, at.Sub(due))
	}
	slices.Sort(lags)
	if med := lags[len(lags)/2]; med > 5*time.Millisecond {
		t.Errorf("median lag %v behind the schedule with an instant target", med)
	}
	if d := st.elapsed; d < (n-1)*time.Second/rate {
		t.Errorf("phase took %v, shorter than the schedule", d)
	}
}

// stallServer answers at once, except the first request, which it holds for stall.
func stallServer(t *testing.T, stall time.Duration) *httptest.Server {
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			select {
			case <-time.After(stall):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// With one connection at 100 requests/s and a server that stalls 200 ms once, the ~19 requests due
// during the stall wait for the connection; an open-loop measurement charges that wait to them
// (latency from the intended time), where a closed loop would see a single slow request.
func TestOpenLoopCountsStallFromIntendedTime(t *testing.T) {
	const stall = 200 * time.Millisecond
	run := func(rate float64) *stats {
		srv := stallServer(t, stall)
		c := newClient(1, 5*time.Second, "json")
		defer c.close()
		return runPhase(context.Background(), phase{name: "t", workers: 1, rate: rate, requests: 40, late: time.Millisecond},
			func(ctx context.Context, i int64) (string, int, error) {
				status, _, err := c.do(ctx, http.MethodGet, srv.URL, nil)
				return "get", status, err
			})
	}

	open := run(100)
	if open.requests != 40 || open.errorCount() != 0 {
		t.Fatalf("open loop: %d requests, errors %v", open.requests, open.errors)
	}
	// Tickets 0..~9 finish more than 100 ms after they were due: a quarter of the 40.
	if p80 := open.latency.Quantile(0.8); p80 < 80*time.Millisecond {
		t.Errorf("open loop p80 latency %v: the stall is not charged to the requests that waited", p80)
	}
	if p80 := open.service.Quantile(0.8); p80 > 50*time.Millisecond {
		t.Errorf("open loop p80 service time %v: want the fast send-to-reply times", p80)
	}
	if open.latency.Max() < stall {
		t.Errorf("max latency %v below the stall", open.latency.Max())
	}
	if open.late < 15 {
		t.Errorf("%d late requests, want the ~19 that were due during the stall", open.late)
	}

	closed := run(0)
	if p80 := closed.latency.Quantile(0.8); p80 > 50*time.Millisecond {
		t.Errorf("closed loop p80 %v: only the stalled request should be slow", p80)
	}
	if closed.late != 0 {
		t.Errorf("closed loop counted %d late requests", closed.late)
	}
}

func TestClosedLoopStopsAtRequestCount(t *testing.T) {
	var calls atomic.Int64
	st := runPhase(context.Background(), phase{name: "t", workers: 8, requests: 1000},
		func(ctx context.Context, i int64) (string, int, error) {
			calls.Add(1)
			if i%10 == 0 {
				return "odd", 503, nil
			}
			return "op", 204, nil
		})
	if st.requests != 1000 || calls.Load() != 1000 {
		t.Fatalf("%d requests, %d calls, want 1000", st.requests, calls.Load())
	}
	if st.kinds["op"] != 900 || st.kinds["odd"] != 100 || st.errors["http 503"] != 100 || st.errorCount() != 100 {
		t.Fatalf("kinds %v errors %v", st.kinds, st.errors)
	}
	if st.latency.Count() != 1000 || st.lag.Count() != 0 {
		t.Fatalf("latency count %d, lag count %d", st.latency.Count(), st.lag.Count())
	}
}

func TestOpenLoopStopsAtDuration(t *testing.T) {
	// Tickets due before 300 ms at 100/s: exactly 0..29.
	st := runPhase(context.Background(), phase{name: "t", workers: 4, rate: 100, duration: 300 * time.Millisecond, late: time.Millisecond},
		func(ctx context.Context, i int64) (string, int, error) { return "op", 200, nil })
	if st.requests != 30 {
		t.Fatalf("%d requests, want 30", st.requests)
	}
}

func TestClosedLoopStopsAtDuration(t *testing.T) {
	st := runPhase(context.Background(), phase{name: "t", workers: 4, duration: 200 * time.Millisecond},
		func(ctx context.Context, i int64) (string, int, error) {
			time.Sleep(time.Millisecond)
			return "op", 200, nil
		})
	if st.elapsed < 200*time.Millisecond || st.elapsed > 2*time.Second || st.requests == 0 {
		t.Fatalf("%d requests in %v", st.requests, st.elapsed)
	}
}

// Requests cut short by the end of the run (Ctrl-C) are neither successes nor errors.
func TestInterruptedRequestsAreNotCounted(t *testing.T) {
	srv := stallServer(t, 5*time.Second)
	c := newClient(1, 10*time.Second, "json")
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st := runPhase(ctx, phase{name: "t", workers: 1, duration: time.Minute},
		func(ctx context.Context, i int64) (string, int, error) {
			status, _, err := c.do(ctx, http.MethodGet, srv.URL, nil)
			return "get", status, err
		})
	if st.requests != 0 || st.errorCount() != 0 {
		t.Fatalf("%d requests, errors %v", st.requests, st.errors)
	}
}

func TestErrorKinds(t *testing.T) {
	if k := errorKind(204, nil); k != "" {
		t.Errorf("204: %q", k)
	}
	if k := errorKind(503, nil); k != "http 503" {
		t.Errorf("503: %q", k)
	}
	slow := stallServer(t, 2*time.Second)
	c := newClient(1, 50*time.Millisecond, "json")
	defer c.close()
	if status, _, err := c.do(context.Background(), http.MethodGet, slow.URL, nil); errorKind(status, err) != "timeout" {
		t.Errorf("timed-out request: %q (%v)", errorKind(status, err), err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if status, _, err := c.do(context.Background(), http.MethodGet, "http://"+addr+"/", nil); errorKind(status, err) != "connection" {
		t.Errorf("refused connection: %q (%v)", errorKind(status, err), err)
	}
}

// An open-loop phase far behind its schedule stops at duration+drain and reports what it never
// sent, rather than draining an ever longer backlog.
func TestOpenLoopGivesUpWhenHopelesslyBehind(t *testing.T) {
	srv := stallServer(t, 500*time.Millisecond)
	c := newClient(1, 5*time.Second, "json")
	defer c.close()
	st := runPhase(context.Background(), phase{name: "t", workers: 1, rate: 100, duration: 200 * time.Millisecond,
		drain: 100 * time.Millisecond, late: time.Millisecond},
		func(ctx context.Context, i int64) (string, int, error) {
			status, _, err := c.do(ctx, http.MethodGet, srv.URL, nil)
			return "get", status, err
		})
	// Ticket 0 holds the only connection for 500 ms, past the 300 ms cutoff: the other 19 of the
	// 20 due tickets are never sent.
	if st.requests != 1 || st.unsent != 19 {
		t.Fatalf("%d requests, %d unsent; want 1 and 19", st.requests, st.unsent)
	}
}
