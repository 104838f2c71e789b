package cluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openRecorder is a Registry that only records OpenForTraffic; the gate tests need nothing else.
type openRecorder struct {
	Registry
	mu     sync.Mutex
	counts []int
}

func (r *openRecorder) OpenForTraffic(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts = append(r.counts, n)
}

func TestReadGateAfterEmptySync(t *testing.T) {
	const wait = 5 * time.Minute
	// One unreachable peer: the sync copies nothing, so Eureka's gate applies.
	unreachable := []string{"http://127.0.0.1:1/eureka/"}
	tests := []struct {
		name    string
		peers   []string
		wait    time.Duration
		advance time.Duration
		want    bool
	}{
		{name: "gated right after opening", peers: unreachable, wait: wait, advance: 0, want: false},
		{name: "gated just before the window ends", peers: unreachable, wait: wait, advance: wait - time.Millisecond, want: false},
		{name: "open when the window ends", peers: unreachable, wait: wait, advance: wait, want: true},
		{name: "zero wait never gates", peers: unreachable, wait: 0, advance: 0, want: true},
		{name: "a standalone node is never gated", peers: nil, wait: wait, advance: 0, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			reg := &openRecorder{}
			cfg := DefaultConfig()
			cfg.Sync.WaitWhenEmpty = tt.wait
			cfg.Sync.Retries = 1
			cfg.Peers = tt.peers
			cfg.AntiEntropy.Enabled = false
			c, err := New(cfg, reg, nil, WithClock(clock), WithResolver(&fakeResolver{}))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AllowReads(); got != (tt.wait == 0) {
				t.Errorf("before Start AllowReads = %v, want %v", got, tt.wait == 0)
			}
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			select {
			case <-c.SyncDone():
			case <-time.After(5 * time.Second):
				t.Fatal("sync did not finish")
			}
			clock.Advance(tt.advance)
			if got := c.AllowReads(); got != tt.want {
				t.Errorf("AllowReads = %v, want %v", got, tt.want)
			}
			reg.mu.Lock()
			defer reg.mu.Unlock()
			if len(reg.counts) != 1 || reg.counts[0] != 0 {
				t.Errorf("OpenForTraffic calls = %v, want [0]", reg.counts)
			}
		})
	}
}
