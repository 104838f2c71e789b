package cluster

import (
	"context"
	"encoding/json"
	"fmt"
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
	// registered again on B later with a newer lastDirtyTimestamp (as an Eureka client does when
	// it registers again: setIsDirtyWithTime): a newer life that must survive and spread back to A.
	mustRegister(t, a.reg, testInstance("REBORN", "r1", 100, registry.StatusUp))
	if !a.reg.Cancel(ctx, "ZOMBIE", "z1", registry.FromClient) || !a.reg.Cancel(ctx, "REBORN", "r1", registry.FromClient) {
		t.Fatal("cancel on A failed")
	}
	mustRegister(t, a.reg, testInstance("ONLYA", "a1", 300, registry.StatusUp))
	clock.Advance(time.Second)
	mustRegister(t, b.reg, testInstance("REBORN", "r1", 150, registry.StatusUp))
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
		}{{"SHARED", "s1", 100}, {"OLD", "d1", 200}, {"ONLYA", "a1", 300}, {"ONLYB", "b1", 300}, {"REBORN", "r1", 150}} {
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

// TestAntiEntropyLeaseTravels checks that a node pulls an instance it lacks with the lease the peer
// holds: heartbeating or not, the copy expires when the peer's does, so it is evicted everywhere
// instead of living a fresh lease on each node that pulls it; and that a lease already expired on
// the peer is not pulled at all, so nodes that evict at different times cannot hand a dead instance
// back and forth.
func TestAntiEntropyLeaseTravels(t *testing.T) {
	tests := []struct {
		name       string
		renew      bool
		advance    time.Duration
		wantPulled uint64
	}{
		{name: "heartbeating instance", renew: true, wantPulled: 1},
		{name: "never renewed on the peer", renew: false, wantPulled: 1},
		{name: "lease expired on the peer", renew: true, advance: 10 * time.Minute, wantPulled: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			regCfg := registry.DefaultConfig()
			regCfg.EnableSelfPreservation = false
			nodes := startNodesWith(t, 2, clock, regCfg, nil)
			a, b := nodes[0], nodes[1]
			mustRegister(t, a.reg, testInstance("APP", "i1", 100, registry.StatusUp))
			clock.Advance(time.Second)
			if tt.renew {
				mustRenew(t, a.reg, "APP", "i1")
			}
			clock.Advance(tt.advance)
			b.c.round(context.Background())
			if got := b.c.Stats().Pulled; got != tt.wantPulled {
				t.Fatalf("pulled %d, want %d", got, tt.wantPulled)
			}
			if tt.wantPulled == 0 {
				return
			}
			pa, _ := a.reg.Instance("APP", "i1")
			pb, _ := b.reg.Instance("APP", "i1")
			end := func(i *registry.Instance) int64 {
				return i.LeaseInfo.LastRenewalTimestamp + int64(i.LeaseInfo.DurationSecs)*1000
			}
			if end(pa) != end(pb) {
				t.Fatalf("the pulled lease ends at %d, the peer's at %d", end(pb), end(pa))
			}
			// Past the end of the lease both nodes evict it, and neither pulls it back.
			clock.Advance(time.Duration(end(pa)-clock.Now().UnixMilli())*time.Millisecond + time.Second)
			if n := b.reg.Evict(); n != 1 {
				t.Fatalf("B evicted %d once the peer's lease ended, want 1", n)
			}
			b.c.round(context.Background())
			if _, ok := b.reg.Instance("APP", "i1"); ok {
				t.Fatal("B pulled back an instance whose lease expired on A")
			}
		})
	}
}

// TestAntiEntropyLaterStatusChangeWins: an override reached both nodes, its removal (accepted
// later, same lastDirtyTimestamp) reached only one. The removal is the later status change, so it
// wins the tie on both nodes, although a copy with an override wins a tie between unversioned
// changes.
func TestAntiEntropyLaterStatusChangeWins(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, nil)
	ctx := context.Background()
	var last registry.Write
	for _, n := range nodes {
		mustRegister(t, n.reg, testInstance("APP", "i1", 100, registry.StatusUp))
		n.reg.Subscribe(func(_ context.Context, w registry.Write) { last = w })
	}
	if !nodes[0].reg.UpdateStatus(ctx, "APP", "i1", registry.StatusOutOfService, 0, 0, registry.FromClient) {
		t.Fatal("status update refused")
	}
	if !nodes[1].reg.UpdateStatus(ctx, "APP", "i1", last.Status, last.LastDirtyTimestamp, last.StatusVersion, registry.FromPeer) {
		t.Fatal("replicated status update refused")
	}
	clock.Advance(time.Second)
	// The removal is accepted by node 1 and lost on its way to node 0.
	if !nodes[1].reg.DeleteStatusOverride(ctx, "APP", "i1", registry.StatusUp, 0, 0, registry.FromClient) {
		t.Fatal("override removal refused")
	}
	for _, n := range nodes {
		n.c.round(ctx)
	}
	if r := roots(nodes...); r[0] != r[1] {
		t.Fatalf("roots differ after a round each: %x != %x", r[0], r[1])
	}
	for i, n := range nodes {
		got, _ := n.reg.Instance("APP", "i1")
		if got.Status != registry.StatusUp || got.OverriddenStatus != registry.StatusUnknown {
			t.Errorf("node %d: %s/%s, want UP without an override: the removal came last", i, got.Status, got.OverriddenStatus)
		}
		if _, ok := n.reg.Overrides()["i1"]; ok {
			t.Errorf("node %d: the override map still holds the override", i)
		}
	}
}

// TestAntiEntropyTie checks that two copies with the same lastDirtyTimestamp and different content
// converge on both nodes, override map included: a status override that never reached the other
// node wins over its absence, a metadata update is decided by the content hash, and later rounds
// change nothing (no flapping).
func TestAntiEntropyTie(t *testing.T) {
	for _, oosOn := range []int{0, 1} {
		t.Run(fmt.Sprintf("override on node %d", oosOn), func(t *testing.T) {
			clock := newFakeClock()
			nodes := startNodes(t, 2, clock, nil)
			ctx := context.Background()
			for _, n := range nodes {
				mustRegister(t, n.reg, testInstance("APP", "i1", 100, registry.StatusUp))
				mustRegister(t, n.reg, testInstance("APP", "i2", 100, registry.StatusUp))
			}
			// The OUT_OF_SERVICE of i1 was lost on its way; so was a metadata change of i2 on the
			// other node. Neither moves lastDirtyTimestamp.
			if !nodes[oosOn].reg.UpdateStatus(ctx, "APP", "i1", registry.StatusOutOfService, 0, 0, registry.FromClient) {
				t.Fatal("status update refused")
			}
			if !nodes[1-oosOn].reg.UpdateMetadata(ctx, "APP", "i2", map[string]string{"k": "v"}, registry.FromClient) {
				t.Fatal("metadata update refused")
			}
			if r := roots(nodes...); r[0] == r[1] {
				t.Fatal("the digests do not see the difference")
			}
			for _, n := range nodes {
				n.c.round(ctx)
			}
			if r := roots(nodes...); r[0] != r[1] {
				t.Fatalf("roots differ after a round each: %x != %x", r[0], r[1])
			}
			a, _ := nodes[0].reg.Instance("APP", "i1")
			b, _ := nodes[1].reg.Instance("APP", "i1")
			// A copy with an override wins a tie over one without: the OUT_OF_SERVICE is repaired.
			for _, got := range []*registry.Instance{a, b} {
				if got.Status != registry.StatusOutOfService || got.OverriddenStatus != registry.StatusOutOfService {
					t.Fatalf("i1: %s/%s and %s/%s, want OUT_OF_SERVICE on both", a.Status, a.OverriddenStatus, b.Status, b.OverriddenStatus)
				}
			}
			a2, _ := nodes[0].reg.Instance("APP", "i2")
			b2, _ := nodes[1].reg.Instance("APP", "i2")
			if a2.Metadata["k"] != b2.Metadata["k"] {
				t.Fatalf("i2 metadata differs: %v vs %v", a2.Metadata, b2.Metadata)
			}
			// The override map follows the copy kept, so heartbeats keep the two nodes equal.
			for _, n := range nodes {
				if got, want := n.reg.Overrides()["i1"], a.OverriddenStatus; got != want && !(got == "" && want == registry.StatusUnknown) {
					t.Errorf("%s: override map has %q for i1, instance says %s", n.url(), got, want)
				}
				mustRenew(t, n.reg, "APP", "i1")
			}
			if r := roots(nodes...); r[0] != r[1] {
				t.Fatalf("roots differ after heartbeats: %x != %x", r[0], r[1])
			}
			var ties, pulled uint64
			for _, n := range nodes {
				st := n.c.Stats()
				ties += st.Ties
				pulled += st.Pulled
			}
			// Each instance is pulled once, by the node that had the losing copy; a tie is counted by
			// each node that saw it (the second node sees none if the first already pulled).
			if ties < 2 || pulled != 2 {
				t.Errorf("ties %d pulled %d, want at least 2 and exactly 2", ties, pulled)
			}
			for i := 0; i < 3; i++ {
				for _, n := range nodes {
					n.c.round(ctx)
				}
			}
			var after uint64
			for _, n := range nodes {
				after += n.c.Stats().Pulled
			}
			if after != pulled {
				t.Errorf("later rounds pulled %d more", after-pulled)
			}
		})
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

// TestAntiEntropyPulledCopyHashesLikeTheOriginal checks that a copy pulled through the wire format
// has the content hash of the original, whatever the codec normalises (absent leaseInfo, sid "na",
// no dataCenterInfo class, empty maps, Amazon metadata), so that the digests agree after one pull
// instead of pulling the same instance every round.
func TestAntiEntropyPulledCopyHashesLikeTheOriginal(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, nil)
	a, b := nodes[0], nodes[1]
	plain := testInstance("WIRE", "w1", 100, registry.StatusUp)
	plain.Sid = "na"
	plain.DataCenterInfo.Class = ""
	plain.LeaseInfo = registry.LeaseInfo{}
	plain.HasLeaseInfo = false
	plain.Metadata = map[string]string{}
	plain.AppGroupName = "group"
	amazon := testInstance("WIRE", "w2", 100, registry.StatusDown)
	amazon.DataCenterInfo = registry.DataCenterInfo{Name: "Amazon", Metadata: map[string]string{"instance-id": "i-1", "az": "z"}}
	amazon.Metadata = map[string]string{"a": "1", "b": "<&>"}
	amazon.ASGName = "asg"
	for _, inst := range []*registry.Instance{plain, amazon} {
		mustRegister(t, a.reg, inst)
	}
	clock.Advance(time.Second)
	mustRenew(t, a.reg, "WIRE", "w1")
	mustRenew(t, a.reg, "WIRE", "w2")
	b.c.round(context.Background())
	if got := b.c.Stats().Pulled; got != 2 {
		t.Fatalf("pulled %d, want 2", got)
	}
	if r := roots(a, b); r[0] != r[1] {
		t.Fatalf("roots differ after the pull: %x != %x", r[0], r[1])
	}
	a.c.round(context.Background())
	b.c.round(context.Background())
	if st := a.c.Stats(); st.Pulled != 0 {
		t.Errorf("A pulled %d back", st.Pulled)
	}
}

// A node that copied an instance after it was cancelled elsewhere (its startup sync ran while
// the cancel was on its way, and the cancel never reached it) holds the cancelled copy: same
// lastDirtyTimestamp, registered later, even renewed. Anti-entropy cancels it there and never
// copies it back to the others.
func TestAntiEntropyCancelsACopyOfACancelledInstance(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 2, clock, nil)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	mustRegister(t, a.reg, testInstance("GHOST", "g1", 100, registry.StatusUp))
	if !a.reg.Cancel(ctx, "GHOST", "g1", registry.FromClient) {
		t.Fatal("cancel on A failed")
	}
	clock.Advance(time.Second)
	mustRegister(t, b.reg, testInstance("GHOST", "g1", 100, registry.StatusUp)) // B's late copy
	clock.Advance(time.Second)
	mustRenew(t, b.reg, "GHOST", "g1")
	a.c.round(ctx)
	b.c.round(ctx)
	for _, n := range nodes {
		if _, ok := n.reg.Instance("GHOST", "g1"); ok {
			t.Errorf("%s still has the cancelled GHOST/g1", n.url())
		}
	}
}

// Tombstones spread: a node that neither holds an instance nor knows it was cancelled takes the
// peer's tombstone, so the cancel outlives a restart of the node that saw it, and a late copy of the
// instance is cancelled where it lingers. Here node 0 cancels g1 and "restarts" (a fresh registry
// in its place is simulated by node 0 never taking part again); node 1 learns the tombstone from
// node 0; node 2, which copied g1 before the cancel and heard nothing of it, learns from node 1.
func TestAntiEntropySpreadsTombstones(t *testing.T) {
	clock := newFakeClock()
	nodes := startNodes(t, 3, clock, nil)
	ctx := context.Background()
	mustRegister(t, nodes[0].reg, testInstance("GHOST", "g1", 100, registry.StatusUp))
	mustRegister(t, nodes[2].reg, testInstance("GHOST", "g1", 100, registry.StatusUp))
	if !nodes[0].reg.Cancel(ctx, "GHOST", "g1", registry.FromClient) {
		t.Fatal("cancel failed")
	}
	// Something else differs in the app, so that node 1 compares it with node 0 at all.
	mustRegister(t, nodes[0].reg, testInstance("GHOST", "other", 100, registry.StatusUp))
	clock.Advance(time.Second)
	mustRenew(t, nodes[0].reg, "GHOST", "other")
	exchangeWith(ctx, t, nodes[1], nodes[0])
	if !hasTomb(nodes[1].reg, "GHOST", "g1") {
		t.Fatal("node 1 did not take node 0's tombstone")
	}
	exchangeWith(ctx, t, nodes[2], nodes[1])
	if _, ok := nodes[2].reg.Instance("GHOST", "g1"); ok {
		t.Fatal("node 2 kept its copy of the cancelled instance after comparing with node 1")
	}
	// A tombstone older than the TTL is not taken.
	if nodes[1].reg.AdoptTombstone("GHOST", "old", 1, registry.StatusUp, clock.Now().Add(-time.Hour).UnixMilli()) {
		t.Error("a tombstone older than the TTL was adopted")
	}
	// Nor one of an instance the node holds: the cancel rule decides that.
	if nodes[1].reg.AdoptTombstone("GHOST", "other", 100, registry.StatusUp, clock.Now().UnixMilli()) {
		t.Error("a tombstone of a live instance was adopted")
	}
}

func hasTomb(r *registry.Registry, app, id string) bool {
	for _, d := range r.AppDigest(app) {
		if d.ID == id && d.Deleted {
			return true
		}
	}
	return false
}

// exchangeWith runs one anti-entropy exchange of asker against one peer.
func exchangeWith(ctx context.Context, t *testing.T, asker, peer *testNode) {
	t.Helper()
	for _, p := range asker.c.peers.List() {
		if p.URL == peer.url() {
			if _, err := asker.c.ae.exchange(ctx, p); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s is not a peer of %s", peer.url(), asker.url())
}
