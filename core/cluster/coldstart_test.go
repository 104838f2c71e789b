package cluster

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

// coldConfig is Eureka's sync and gate timing, stretched so that only a cold start can open reads
// within a test.
func coldConfig(c *Config) {
	c.Sync.Retries = 5
	c.Sync.RetryWait = time.Hour
	c.Sync.WaitWhenEmpty = time.Hour
	c.AntiEntropy.Enabled = false
}

func startAll(t *testing.T, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		if err := n.c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.c.Stop)
	}
}

// TestColdStartOpensReads checks that nodes started together, each finding only starting peers,
// open reads at once instead of refusing them for the retry rounds and the empty-sync window.
func TestColdStartOpensReads(t *testing.T) {
	nodes := startNodes(t, 3, registry.SystemClock{}, coldConfig)
	startAll(t, nodes...)
	for _, n := range nodes {
		waitFor(t, 10*time.Second, func() bool { return n.c.AllowReads() })
		ok, why := n.c.Ready()
		if !ok || !strings.Contains(why, "cold start") {
			t.Errorf("%s: Ready() = %v, %q; want true, cold start", n.url(), ok, why)
		}
		if st := n.c.Stats(); !st.SyncDone || !st.ColdStart {
			t.Errorf("%s: stats %+v, want a finished cold-start sync", n.url(), st)
		}
	}
}

// TestColdStartPeerFoundBetweenRounds checks that a node whose peers did not answer yet starts the
// next round as soon as one answers, not a whole retry wait later.
func TestColdStartPeerFoundBetweenRounds(t *testing.T) {
	nodes := startNodes(t, 2, registry.SystemClock{}, coldConfig)
	a, b := nodes[0], nodes[1]
	var down atomic.Bool
	down.Store(true)
	b.setHook(func(r *http.Request) {
		if down.Load() {
			// Not started yet: the connection dies without an answer.
			panic(http.ErrAbortHandler)
		}
	})
	startAll(t, a)
	waitFor(t, 5*time.Second, func() bool { return b.hits.get(DefaultAPIPrefix+pathSyncState) >= 1 })
	if a.c.AllowReads() {
		t.Fatal("reads open while the only peer is unreachable: that is Eureka's gate, not a cold start")
	}
	down.Store(false)
	startAll(t, b)
	waitFor(t, 10*time.Second, func() bool { return a.c.AllowReads() && b.c.AllowReads() })
	if !a.c.Stats().ColdStart {
		t.Error("A opened without a cold start")
	}
}

// TestJoiningRunningClusterStillGates checks that a node whose peer has finished its own start
// (not a cold start) keeps Eureka's rules: it copies a non-empty registry, and gates reads when the
// registry it found is empty.
func TestJoiningRunningClusterStillGates(t *testing.T) {
	for _, withData := range []bool{false, true} {
		name := "empty running peer gates"
		if withData {
			name = "running peer with instances is copied"
		}
		t.Run(name, func(t *testing.T) {
			nodes := startNodes(t, 2, registry.SystemClock{}, func(c *Config) {
				coldConfig(c)
				c.Sync.Retries = 2
				c.Sync.RetryWait = 10 * time.Millisecond
			})
			running, joining := nodes[0], nodes[1]
			// The running node finished its start long ago, without a cold start.
			running.c.mu.Lock()
			running.c.syncOver = true
			running.c.mu.Unlock()
			running.c.gate.lift("test")
			if withData {
				mustRegister(t, running.reg, testInstance("APP", "i1", 1, registry.StatusUp))
			}
			startAll(t, joining)
			select {
			case <-joining.c.SyncDone():
			case <-time.After(10 * time.Second):
				t.Fatal("sync did not finish")
			}
			st := joining.c.Stats()
			if st.ColdStart {
				t.Error("joining a running cluster was taken for a cold start")
			}
			if got := joining.c.AllowReads(); got != withData {
				t.Errorf("AllowReads = %v, want %v", got, withData)
			}
			if ok, why := joining.c.Ready(); ok != withData || why == "" {
				t.Errorf("Ready() = %v, %q", ok, why)
			}
			if withData && st.SyncedInstances != 1 {
				t.Errorf("synced %d, want 1", st.SyncedInstances)
			}
		})
	}
}
