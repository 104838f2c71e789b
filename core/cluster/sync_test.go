package cluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

// eurekaPeer is a stand-in for a peer's Eureka API: GET /eureka/apps from its own registry.
type eurekaPeer struct {
	reg  *registry.Registry
	srv  *httptest.Server
	hits atomic.Int32
	// onHit runs before the answer, with the number of the request (1-based).
	onHit func(n int32)
}

func newEurekaPeer(t *testing.T, clock registry.Clock) *eurekaPeer {
	t.Helper()
	p := &eurekaPeer{reg: newRegistry(t, clock)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/eureka/apps" {
			http.NotFound(w, r)
			return
		}
		n := p.hits.Add(1)
		if p.onHit != nil {
			p.onHit(n)
		}
		eurekaApps(p.reg)(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *eurekaPeer) url() string { return p.srv.URL + "/eureka/" }

// unreachableURL is the URL of a server that was started and closed: connections are refused.
func unreachableURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL + "/eureka/"
	s.Close()
	return u
}

func TestStartupSync(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		name    string
		retries int
		// fillAfter: the second peer is empty until it has answered this many times (0: stays empty).
		fillAfter  int32
		wantCount  int
		wantSecond int32 // requests the second (initially empty) peer saw
		wantThird  int32 // requests the full peer saw
	}{
		{name: "unreachable, empty, full: copies the full one", retries: 1, wantCount: 3, wantSecond: 1, wantThird: 1},
		{name: "empty peer fills in the second round", retries: 3, fillAfter: 1, wantCount: 2, wantSecond: 2, wantThird: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			empty := newEurekaPeer(t, clock)
			full := newEurekaPeer(t, clock)
			for i, id := range []string{"a1", "a2", "a3"} {
				mustRegister(t, full.reg, testInstance("APP", id, int64(1000+i), registry.StatusUp))
			}
			if tt.fillAfter > 0 {
				empty.onHit = func(n int32) {
					if n == tt.fillAfter+1 {
						mustRegister(t, empty.reg, testInstance("OTHER", "o1", 1, registry.StatusUp))
						mustRegister(t, empty.reg, testInstance("OTHER", "o2", 1, registry.StatusUp))
					}
				}
				// The full peer is unreachable in this case, so the second round is what copies.
				full.srv.Close()
			}

			local := newRegistry(t, clock)
			cfg := DefaultConfig()
			cfg.Peers = []string{unreachableURL(t), empty.url(), full.url()}
			cfg.Sync.Retries = tt.retries
			cfg.Sync.RetryWait = 10 * time.Millisecond
			cfg.AntiEntropy.Enabled = false
			c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}), WithClock(clock))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			select {
			case <-c.SyncDone():
			case <-time.After(10 * time.Second):
				t.Fatal("sync did not finish")
			}
			st := c.Stats()
			if st.SyncedInstances != tt.wantCount {
				t.Errorf("synced %d instances, want %d", st.SyncedInstances, tt.wantCount)
			}
			if got := local.Stats().Instances; got != tt.wantCount {
				t.Errorf("local registry has %d instances, want %d", got, tt.wantCount)
			}
			if got := empty.hits.Load(); got != tt.wantSecond {
				t.Errorf("empty peer asked %d times, want %d", got, tt.wantSecond)
			}
			if tt.fillAfter == 0 {
				if got := full.hits.Load(); got != tt.wantThird {
					t.Errorf("full peer asked %d times, want %d", got, tt.wantThird)
				}
			}
			if !c.AllowReads() {
				t.Error("reads gated after a sync that copied instances")
			}
		})
	}
}

func TestStartupSyncPreservesInstanceState(t *testing.T) {
	clock := newFakeClock()
	peer := newEurekaPeer(t, clock)
	inst := testInstance("ORDERS", "o1", 1_700_000_000_123, registry.StatusUp)
	inst.LeaseInfo.DurationSecs = 45
	mustRegister(t, peer.reg, inst)
	ctx := context.Background()
	if !peer.reg.UpdateStatus(ctx, "ORDERS", "o1", registry.StatusOutOfService, 1_700_000_000_456, 0, registry.FromClient) {
		t.Fatal("status update refused")
	}

	local := newRegistry(t, clock)
	cfg := DefaultConfig()
	cfg.Peers = []string{peer.url()}
	cfg.AntiEntropy.Enabled = false
	c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	<-c.SyncDone()

	want, _ := peer.reg.Instance("ORDERS", "o1")
	got, ok := local.Instance("ORDERS", "o1")
	if !ok {
		t.Fatal("instance not copied")
	}
	if got.LastDirtyTimestamp != want.LastDirtyTimestamp {
		t.Errorf("lastDirtyTimestamp = %d, want %d", got.LastDirtyTimestamp, want.LastDirtyTimestamp)
	}
	if got.Status != registry.StatusOutOfService || got.OverriddenStatus != registry.StatusOutOfService {
		t.Errorf("status %s overridden %s, want OUT_OF_SERVICE twice", got.Status, got.OverriddenStatus)
	}
	if got.LeaseInfo.DurationSecs != 45 {
		t.Errorf("lease duration = %d s, want 45", got.LeaseInfo.DurationSecs)
	}
	if s := local.Overrides()["o1"]; s != registry.StatusOutOfService {
		t.Errorf("override map entry = %q, want OUT_OF_SERVICE", s)
	}
}

// TestStartupSyncDoesNotBlock checks that Start returns while the sync waits between rounds, that
// writes work and reads are gated meanwhile, and that Stop ends the wait.
func TestStartupSyncDoesNotBlock(t *testing.T) {
	clock := newFakeClock()
	empty := newEurekaPeer(t, clock)
	local := newRegistry(t, clock)
	cfg := DefaultConfig()
	cfg.Peers = []string{empty.url()}
	cfg.Sync.RetryWait = time.Hour
	c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Start took %s", d)
	}
	waitFor(t, 5*time.Second, func() bool { return empty.hits.Load() == 1 })
	mustRegister(t, local, testInstance("APP", "w1", 1, registry.StatusUp))
	if c.AllowReads() {
		t.Error("reads allowed during the sync")
	}
	select {
	case <-c.SyncDone():
		t.Fatal("sync finished although it should be waiting an hour")
	default:
	}
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the sync")
	}
}
