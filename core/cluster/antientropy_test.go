package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

func roots(nodes ...*testNode) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i], _ = n.reg.Digest()
	}
	return out
}

func TestAntiEntropyConverges(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, nil)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()

	// Both know SHARED, ZOMBIE and OLD (B's copy of OLD older), registered now.
	for _, n := range nodes {
		mustRegister(t, n.reg, testInstance("SHARED", "s1", 100, registry.StatusUp))
		mustRegister(t, n.reg, testInstance("ZOMBIE", "z1", 100, registry.StatusUp))
	}
	mustRegister(t, a.reg, testInstance("OLD", "d1", 200, registry.StatusDown))
	mustRegister(t, b.reg, testInstance("OLD", "d1", 100, registry.StatusUp))
	clock.Advance(time.Second)

	// A cancels ZOMBIE; B missed it. A has ONLYA, B has ONLYB. REBORN: cancelled on A, then
	// registered again on B later: a newer life that must survive and spread back to A.
	mustRegister(t, a.reg, testInstance("REBORN", "r1", 100, registry.StatusUp))
	if !a.reg.Cancel(ctx, "ZOMBIE", "z1", registry.FromClient) || !a.reg.Cancel(ctx, "REBORN", "r1", registry.FromClient) {
		t.Fatal("cancel on A failed")
	}
	mustRegister(t, a.reg, testInstance("ONLYA", "a1", 300, registry.StatusUp))
	clock.Advance(time.Second)
	mustRegister(t, b.reg, testInstance("REBORN", "r1", 100, registry.StatusUp))
	mustRegister(t, b.reg, testInstance("ONLYB", "b1", 300, registry.StatusUp))
	clock.Advance(time.Second)
	mustRenew(t, a.reg, "ONLYA", "a1")
	mustRenew(t, b.reg, "ONLYB", "b1")
	mustRenew(t, b.reg, "REBORN", "r1")

	if r := roots(a, b); r[0] == r[1] {
		t.Fatal("registries do not differ before the round")
	}
	a.c.round(ctx)
	b.c.round(ctx)

	if r := roots(a, b); r[0] != r[1] {
		t.Errorf("roots differ after one round: %x != %x", r[0], r[1])
	}
	for _, n := range nodes {
		for _, want := range []struct {
			app, id string
			dirty   int64
		}{{"SHARED", "s1", 100}, {"OLD", "d1", 200}, {"ONLYA", "a1", 300}, {"ONLYB", "b1", 300}, {"REBORN", "r1", 100}} {
			got, ok := n.reg.Instance(want.app, want.id)
			if !ok {
				t.Errorf("%s lacks %s/%s", n.url(), want.app, want.id)
				continue
			}
			if got.LastDirtyTimestamp != want.dirty {
				t.Errorf("%s has %s/%s at lastDirty %d, want %d", n.url(), want.app, want.id, got.LastDirtyTimestamp, want.dirty)
			}
		}
		if _, ok := n.reg.Instance("ZOMBIE", "z1"); ok {
			t.Errorf("%s still has the cancelled ZOMBIE/z1", n.url())
		}
	}
	if got, _ := b.reg.Instance("OLD", "d1"); got.Status != registry.StatusDown {
		t.Errorf("B's OLD/d1 status = %s, want DOWN from A's newer copy", got.Status)
	}

	sa, sb := a.c.Stats(), b.c.Stats()
	if sa.Pulled != 2 || sa.Deleted != 0 { // ONLYB, REBORN
		t.Errorf("A pulled %d deleted %d, want 2 and 0", sa.Pulled, sa.Deleted)
	}
	if sb.Pulled != 2 || sb.Deleted != 1 { // ONLYA, OLD; ZOMBIE
		t.Errorf("B pulled %d deleted %d, want 2 and 1", sb.Pulled, sb.Deleted)
	}

	// Converged: a round is one root request per node and nothing else.
	a.hits.reset()
	b.hits.reset()
	a.c.round(ctx)
	b.c.round(ctx)
	for _, n := range nodes {
		if got, total := n.hits.get(DefaultAPIPrefix+pathDigest), n.hits.total(); got != 1 || total != 1 {
			t.Errorf("%s served %d requests (%d root) in a round without differences, want only 1 root", n.url(), total, got)
		}
	}
	if sa := a.c.Stats(); sa.Exchanges != 2 || sa.Mismatches != 1 {
		t.Errorf("A exchanges %d mismatches %d, want 2 and 1", sa.Exchanges, sa.Mismatches)
	}
}

// TestAntiEntropyGrace checks that a difference which disappears before the confirmation (a write
// that was in flight) is not repaired, and one that persists is.
func TestAntiEntropyGrace(t *testing.T) {
	tests := []struct {
		name       string
		grace      time.Duration
		inFlight   bool
		wantPulled uint64
	}{
		{name: "no confirmation pulls at once", grace: -1, inFlight: true, wantPulled: 1},
		{name: "persisting difference is pulled", grace: time.Millisecond, wantPulled: 1},
		{name: "difference gone at confirmation is left alone", grace: time.Millisecond, inFlight: true, wantPulled: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			nodes := startNodes(t, 2, clock, func(c *Config) { c.AntiEntropy.Grace = tt.grace })
			a, b := nodes[0], nodes[1]
			inst := testInstance("APP", "i1", 100, registry.StatusUp)
			mustRegister(t, a.reg, inst)
			clock.Advance(time.Second)
			mustRenew(t, a.reg, "APP", "i1")
			if tt.inFlight {
				// The replication pipeline delivers the register to B while B waits out the grace:
				// just before A answers B's second look at the app.
				var seen atomic.Int32
				a.setHook(func(r *http.Request) {
					if r.URL.Path == DefaultAPIPrefix+pathDigestApp+"APP" {
						if seen.Add(1) == 2 {
							if err := b.reg.Register(r.Context(), inst.Clone(), registry.FromPeer); err != nil {
								t.Error(err)
							}
						}
					}
				})
			}
			b.c.round(context.Background())
			st := b.c.Stats()
			if st.Pulled != tt.wantPulled {
				t.Errorf("pulled %d, want %d", st.Pulled, tt.wantPulled)
			}
			if _, ok := b.reg.Instance("APP", "i1"); !ok {
				t.Error("B lacks APP/i1")
			}
			fetches := a.hits.get(DefaultAPIPrefix + pathApp + "APP")
			if want := int(tt.wantPulled); fetches != want {
				t.Errorf("A served %d instance fetches, want %d", fetches, want)
			}
		})
	}
}

// TestAntiEntropyNoResurrection checks that an instance a peer holds without heartbeats (a copy it
// pulled, or one whose client died) is not pulled by a node that lacks it, and that one whose lease
// expired on the peer is not either.
func TestAntiEntropyNoResurrection(t *testing.T) {
	tests := []struct {
		name       string
		renew      bool
		advance    time.Duration
		wantPulled uint64
	}{
		{name: "heartbeating instance is pulled", renew: true, wantPulled: 1},
		{name: "never renewed on the peer", renew: false, wantPulled: 0},
		{name: "lease expired on the peer", renew: true, advance: 10 * time.Minute, wantPulled: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			nodes := startNodes(t, 2, clock, nil)
			a, b := nodes[0], nodes[1]
			mustRegister(t, a.reg, testInstance("APP", "i1", 100, registry.StatusUp))
			clock.Advance(time.Second)
			if tt.renew {
				mustRenew(t, a.reg, "APP", "i1")
			}
			clock.Advance(tt.advance)
			b.c.round(context.Background())
			if got := b.c.Stats().Pulled; got != tt.wantPulled {
				t.Errorf("pulled %d, want %d", got, tt.wantPulled)
			}
		})
	}
}

// TestAntiEntropyTie checks that equal lastDirtyTimestamps with different statuses are counted and
// left alone rather than swapped back and forth.
func TestAntiEntropyTie(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, nil)
	a, b := nodes[0], nodes[1]
	mustRegister(t, a.reg, testInstance("APP", "i1", 100, registry.StatusUp))
	mustRegister(t, b.reg, testInstance("APP", "i1", 100, registry.StatusDown))
	a.c.round(context.Background())
	b.c.round(context.Background())
	for _, n := range nodes {
		st := n.c.Stats()
		if st.Ties != 1 || st.Pulled != 0 {
			t.Errorf("%s: ties %d pulled %d, want 1 and 0", n.url(), st.Ties, st.Pulled)
		}
	}
	if got, _ := a.reg.Instance("APP", "i1"); got.Status != registry.StatusUp {
		t.Errorf("A's status changed to %s", got.Status)
	}
}

// TestAntiEntropyLiftsReadGate checks that an exchange with a peer that has instances opens reads
// on a node whose startup sync copied nothing.
func TestAntiEntropyLiftsReadGate(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, func(c *Config) { c.Sync.WaitWhenEmpty = time.Hour })
	a, b := nodes[0], nodes[1]
	mustRegister(t, a.reg, testInstance("APP", "i1", 100, registry.StatusUp))
	b.c.gate.opened(0)
	if b.c.AllowReads() {
		t.Fatal("reads allowed right after an empty sync")
	}
	b.c.round(context.Background())
	if !b.c.AllowReads() {
		t.Error("reads still gated after catching up with a non-empty peer")
	}
}

// TestAntiEntropyNonHeraldPeer checks that a peer without the endpoints (an Eureka server) is a
// counted failure, not a crash or a repair.
func TestAntiEntropyNonHeraldPeer(t *testing.T) {
	clock := newFakeClock()
	eureka := newEurekaPeer(t, clock)
	local := newRegistry(t, clock)
	cfg := DefaultConfig()
	cfg.Peers = []string{eureka.url()}
	c, err := New(cfg, local, nil, WithResolver(&fakeResolver{}), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.peers.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.round(context.Background())
	if st := c.Stats(); st.Failures != 1 || st.Exchanges != 0 {
		t.Errorf("failures %d exchanges %d, want 1 and 0", st.Failures, st.Exchanges)
	}
}

func TestHandlerAppDigest(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 1, clock, nil)
	n := nodes[0]
	mustRegister(t, n.reg, testInstance("APP", "live", 100, registry.StatusUp))
	mustRegister(t, n.reg, testInstance("APP", "gone", 100, registry.StatusUp))
	clock.Advance(time.Second)
	mustRenew(t, n.reg, "APP", "live")
	if !n.reg.Cancel(context.Background(), "APP", "gone", registry.FromClient) {
		t.Fatal("cancel failed")
	}

	resp, err := http.Get(n.srv.URL + DefaultAPIPrefix + pathDigestApp + "app")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	var d appDigest
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]instanceDigest{}
	for _, e := range d.Instances {
		got[e.ID] = e
	}
	if e := got["live"]; e.Deleted || e.LastDirtyTimestamp != 100 || e.Status != "UP" || !e.Renewed || e.Registered != clock.Now().Add(-time.Second).UnixMilli() {
		t.Errorf("live entry = %+v", e)
	}
	if e := got["gone"]; !e.Deleted || e.DeletedAt != clock.Now().UnixMilli() {
		t.Errorf("tombstone entry = %+v, want deleted at %d", e, clock.Now().UnixMilli())
	}
	if d.App != "APP" {
		t.Errorf("app = %q, want APP", d.App)
	}

	for _, path := range []string{pathDigest + "x", "unknown"} {
		resp, err := http.Get(n.srv.URL + DefaultAPIPrefix + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, err := http.Post(n.srv.URL+DefaultAPIPrefix+pathDigest, "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST digest: HTTP %d, want 405", resp.StatusCode)
		}
	}
}
