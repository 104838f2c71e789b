package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka/codec"
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

// badPeer serves, as a herald node would, one app with a valid instance and one whose metadata
// key XML cannot carry: on the startup sync's GET /eureka/apps, on the digest endpoints and on the
// pull endpoint.
func badPeer(t *testing.T) string {
	t.Helper()
	good := testInstance("APP", "good", 1, registry.StatusUp)
	bad := testInstance("APP", "bad", 1, registry.StatusUp)
	bad.Metadata = map[string]string{"a:b": "v"}
	doc := &registry.Applications{VersionsDelta: "1", Applications: []*registry.Application{
		{Name: "APP", Instances: []*registry.Instance{bad, good}}}}
	body := codec.AppendApplications(nil, codec.JSON, doc, codec.Options{})
	mux := http.NewServeMux()
	serve := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("GET /eureka/apps", serve(body))
	mux.HandleFunc("GET "+DefaultAPIPrefix+pathApp+"APP", serve(body))
	mux.HandleFunc("GET "+DefaultAPIPrefix+pathSyncState, serve([]byte(`{"state":"synced","instances":2,"readsOpen":true}`)))
	mux.HandleFunc("GET "+DefaultAPIPrefix+pathDigest, serve([]byte(`{"root":"1","count":2}`)))
	mux.HandleFunc("GET "+DefaultAPIPrefix+pathDigestApps, serve([]byte(`{"apps":{"APP":"1"}}`)))
	mux.HandleFunc("GET "+DefaultAPIPrefix+pathDigestApp+"APP", serve([]byte(
		`{"app":"APP","instances":[{"id":"bad","lastDirtyTimestamp":1,"hash":"1","renewed":true,"registered":1},`+
			`{"id":"good","lastDirtyTimestamp":1,"hash":"2","renewed":true,"registered":1}]}`)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/eureka/"
}

// TestPeerInstancesAreValidated checks that instances copied by the startup sync or pulled by
// anti-entropy go through the registry's validation (and the node's own check) like replicated
// writes: the bad one is refused, the good one stored.
func TestPeerInstancesAreValidated(t *testing.T) {
	for _, viaSync := range []bool{true, false} {
		name := "anti-entropy pull"
		if viaSync {
			name = "startup sync"
		}
		t.Run(name, func(t *testing.T) {
			local := newRegistry(t, registry.SystemClock{})
			cfg := DefaultConfig()
			cfg.Peers = []string{badPeer(t)}
			cfg.AntiEntropy.Grace = -1
			cfg.AntiEntropy.Enabled = false
			if !viaSync {
				cfg.Sync.Retries = 0
			}
			var checked atomic.Int32
			c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}),
				WithInstanceValidator(func(_ context.Context, insts []*registry.Instance) ([]string, error) {
					checked.Add(int32(len(insts)))
					return make([]string, len(insts)), nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			<-c.SyncDone()
			if !viaSync {
				c.round(context.Background())
				if st := c.Stats(); st.Pulled != 1 || st.Failures != 1 {
					t.Errorf("pulled %d failures %d, want 1 and 1 (the refusal is reported)", st.Pulled, st.Failures)
				}
			}
			if _, ok := local.Instance("APP", "bad"); ok {
				t.Error("the invalid instance was stored")
			}
			if _, ok := local.Instance("APP", "good"); !ok {
				t.Error("the valid instance was not stored")
			}
			if checked.Load() != 2 {
				t.Errorf("node check ran %d times, want 2", checked.Load())
			}
		})
	}
}

// TestPeerInstancesNotAppliedWhenValidatorsDown checks that when the validators cannot run (an
// action handler is down), nothing a peer sends is applied, by the sync or by a pull.
func TestPeerInstancesNotAppliedWhenValidatorsDown(t *testing.T) {
	local := newRegistry(t, registry.SystemClock{})
	cfg := DefaultConfig()
	cfg.Peers = []string{badPeer(t)}
	cfg.Sync.Retries = 1
	cfg.AntiEntropy.Grace = -1
	cfg.AntiEntropy.Enabled = false
	down := func(context.Context, []*registry.Instance) ([]string, error) {
		return nil, errors.New("action handler unavailable")
	}
	c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}), WithInstanceValidator(down))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	<-c.SyncDone()
	c.round(context.Background())
	if n := local.Stats().Instances; n != 0 {
		t.Errorf("%d instances applied while the validators were down", n)
	}
	if st := c.Stats(); st.SyncedInstances != 0 || st.Pulled != 0 || st.Failures != 1 {
		t.Errorf("stats %+v, want nothing synced or pulled and one failed exchange", st)
	}
}
