package registry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ ms atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *fakeClock) Set(ms int64)            { c.ms.Store(ms) }
func (c *fakeClock) nowMs() int64            { return c.ms.Load() }
func inst(app, id string, s Status, ts int64) *Instance {
	return &Instance{InstanceID: id, HostName: "h-" + id, App: app, IPAddr: "10.0.0.1", Status: s,
		OverriddenStatus: StatusUnknown, Port: Port{8080, true}, VIPAddress: "vip-" + app,
		DataCenterInfo: DataCenterInfo{Name: "MyOwn"}, HasDataCenterInfo: true,
		LeaseInfo: LeaseInfo{RenewalIntervalSecs: 30, DurationSecs: 90}, HasLeaseInfo: true,
		LastDirtyTimestamp: ts}
}

func newReg(t *testing.T, mod func(*Config)) (*Registry, *fakeClock) {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c := newClock()
	return New(cfg, WithClock(c)), c
}

var ctx = context.Background()

func mustRegister(t *testing.T, r *Registry, i *Instance, o Origin) {
	t.Helper()
	if err := r.Register(ctx, i, o); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, r *Registry, app, id string) *Instance {
	t.Helper()
	i, ok := r.Instance(app, id)
	if !ok {
		t.Fatalf("%s/%s not found", app, id)
	}
	return i
}

func TestRegisterAndRead(t *testing.T) {
	r, c := newReg(t, nil)
	mustRegister(t, r, inst("demo", "a1", StatusUp, 1000), FromClient)
	i := get(t, r, "DEMO", "a1")
	if i.App != "DEMO" || i.Status != StatusUp || i.ActionType != ActionAdded || i.LastDirtyTimestamp != 1000 {
		t.Fatalf("got %+v", i)
	}
	if i.LeaseInfo.RegistrationTimestamp != c.nowMs() || i.LeaseInfo.DurationSecs != 90 || i.LeaseInfo.ServiceUpTimestamp != c.nowMs() {
		t.Fatalf("lease info %+v", i.LeaseInfo)
	}
	if _, ok := r.Instance("demo", "a1"); !ok {
		t.Fatal("app lookup must be case-insensitive")
	}
	if r.Application("DEMO") == nil || r.Application("NOPE") != nil {
		t.Fatal("Application")
	}
	if a := r.Applications(); a.VersionsDelta != "1" || a.AppsHashCode != "UP_1_" || len(a.Applications) != 1 {
		t.Fatalf("apps %+v", a)
	}
}

func TestReadsAreCopies(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 1), FromClient)
	i := get(t, r, "A", "1")
	i.Status = StatusDown
	if get(t, r, "A", "1").Status != StatusUp {
		t.Fatal("mutating a read changed the registry")
	}
}

func TestHashCodeOverAllStatuses(t *testing.T) {
	r, _ := newReg(t, nil)
	for i, s := range []Status{StatusUp, StatusUp, StatusDown, StatusStarting} {
		mustRegister(t, r, inst("A", fmt.Sprint(i), s, 1), FromClient)
	}
	mustRegister(t, r, inst("B", "oos", StatusUp, 1), FromClient)
	r.UpdateStatus(ctx, "B", "oos", StatusOutOfService, 0, 0, FromClient)
	if got := r.Applications().AppsHashCode; got != "DOWN_1_OUT_OF_SERVICE_1_STARTING_1_UP_2_" {
		t.Fatalf("hash %q", got)
	}
	empty, _ := newReg(t, nil)
	if got := empty.Applications(); got.AppsHashCode != "" || len(got.Applications) != 0 {
		t.Fatalf("empty %+v", got)
	}
}

func TestRegisterConflictKeepsNewer(t *testing.T) {
	r, _ := newReg(t, nil)
	a := inst("A", "1", StatusUp, 22222)
	mustRegister(t, r, a, FromPeer)
	old := inst("A", "1", StatusStarting, 11111)
	old.Metadata = map[string]string{"v": "old"}
	mustRegister(t, r, old, FromPeer)
	if i := get(t, r, "A", "1"); i.LastDirtyTimestamp != 22222 || i.Status != StatusUp || i.Metadata["v"] == "old" {
		t.Fatalf("older copy won: %+v", i)
	}
	// Tie: the incoming copy wins.
	tie := inst("A", "1", StatusUp, 22222)
	tie.Metadata = map[string]string{"v": "tie"}
	mustRegister(t, r, tie, FromPeer)
	if i := get(t, r, "A", "1"); i.Metadata["v"] != "tie" {
		t.Fatalf("tie must go to the incoming copy: %+v", i.Metadata)
	}
}

func TestStatusRules(t *testing.T) {
	cases := []struct {
		name     string
		steps    func(r *Registry)
		want     Status
		wantOver Status
	}{
		{"override beats client re-register UP with newer ts", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
			mustRegister(t, r, inst("A", "1", StatusUp, 3000), FromClient)
		}, StatusOutOfService, StatusOutOfService},
		{"client DOWN beats override", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
			mustRegister(t, r, inst("A", "1", StatusDown, 4000), FromClient)
		}, StatusDown, StatusOutOfService},
		{"STARTING beats override", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
			mustRegister(t, r, inst("A", "1", StatusStarting, 4000), FromClient)
		}, StatusStarting, StatusOutOfService},
		{"lease exists keeps UP against client OUT_OF_SERVICE", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			mustRegister(t, r, inst("A", "1", StatusOutOfService, 2000), FromClient)
		}, StatusUp, StatusUnknown},
		{"lease exists keeps OUT_OF_SERVICE against client UP", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusOutOfService, 1000), FromClient)
			mustRegister(t, r, inst("A", "1", StatusUp, 2000), FromClient)
		}, StatusOutOfService, StatusUnknown},
		{"replicated re-register skips LeaseExists", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			mustRegister(t, r, inst("A", "1", StatusOutOfService, 2000), FromPeer)
		}, StatusOutOfService, StatusUnknown},
		{"delete override with value", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
			r.DeleteStatusOverride(ctx, "A", "1", StatusDown, 0, 0, FromClient)
		}, StatusDown, StatusUnknown},
		{"delete override then re-register UP", func(r *Registry) {
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
			r.DeleteStatusOverride(ctx, "A", "1", StatusDown, 0, 0, FromClient)
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
		}, StatusUp, StatusUnknown},
		{"override carried by a registration is installed", func(r *Registry) {
			i := inst("A", "1", StatusUp, 1000)
			i.OverriddenStatus = StatusOutOfService
			mustRegister(t, r, i, FromPeer)
		}, StatusOutOfService, StatusOutOfService},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := newReg(t, nil)
			c.steps(r)
			i := get(t, r, "A", "1")
			if i.Status != c.want || i.OverriddenStatus != c.wantOver {
				t.Fatalf("status %s overridden %s, want %s %s", i.Status, i.OverriddenStatus, c.want, c.wantOver)
			}
		})
	}
}

func TestDeleteOverrideWithoutValueForcesReRegistration(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	if r.Overrides()["1"] != StatusOutOfService {
		t.Fatal("override map")
	}
	if !r.DeleteStatusOverride(ctx, "A", "1", "", 0, 0, FromClient) {
		t.Fatal("delete override")
	}
	if i := get(t, r, "A", "1"); i.Status != StatusUnknown || i.OverriddenStatus != StatusUnknown {
		t.Fatalf("%+v", i)
	}
	if res := r.Heartbeat(ctx, "A", "1", HeartbeatRequest{LastDirtyTimestamp: 1000, HasLastDirty: true}); res.Code != 404 {
		t.Fatalf("heartbeat after delete: %d, want 404", res.Code)
	}
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	if get(t, r, "A", "1").Status != StatusUp {
		t.Fatal("re-register must restore the client's status")
	}
	if res := r.Heartbeat(ctx, "A", "1", HeartbeatRequest{}); res.Code != 200 {
		t.Fatalf("heartbeat %d", res.Code)
	}
}

func TestStatusUpdateEdgeCases(t *testing.T) {
	r, _ := newReg(t, nil)
	if r.UpdateStatus(ctx, "A", "zz", StatusUp, 0, 0, FromClient) || r.DeleteStatusOverride(ctx, "A", "zz", "", 0, 0, FromClient) {
		t.Fatal("status ops on unknown instance must fail")
	}
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	// Same status: nothing recorded, no override entry.
	r.UpdateStatus(ctx, "A", "1", StatusUp, 0, 0, FromClient)
	if _, ok := r.Overrides()["1"]; ok {
		t.Fatal("same-status update must not create an override")
	}
	r.UpdateStatus(ctx, "A", "1", StatusDown, 5000, 0, FromClient)
	if i := get(t, r, "A", "1"); i.LastDirtyTimestamp != 5000 || i.ActionType != ActionModified {
		t.Fatalf("dirty ts adoption: %+v", i)
	}
	r.UpdateStatus(ctx, "A", "1", StatusUp, 10, 0, FromClient)
	if get(t, r, "A", "1").LastDirtyTimestamp != 5000 {
		t.Fatal("an older dirty ts must not be adopted")
	}
}

func TestHeartbeat(t *testing.T) {
	cases := []struct {
		name   string
		hb     HeartbeatRequest
		want   int
		entity bool
	}{
		{"no timestamp", HeartbeatRequest{}, 200, false},
		{"equal", HeartbeatRequest{LastDirtyTimestamp: 1000, HasLastDirty: true}, 200, false},
		{"client newer", HeartbeatRequest{LastDirtyTimestamp: 2000, HasLastDirty: true}, 404, false},
		{"client older", HeartbeatRequest{LastDirtyTimestamp: 500, HasLastDirty: true}, 200, false},
		{"peer older", HeartbeatRequest{LastDirtyTimestamp: 500, HasLastDirty: true, Origin: FromPeer}, 409, true},
		{"peer newer", HeartbeatRequest{LastDirtyTimestamp: 2000, HasLastDirty: true, Origin: FromPeer}, 404, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := newReg(t, nil)
			mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
			res := r.Heartbeat(ctx, "A", "1", c.hb)
			if res.Code != c.want || (res.Instance != nil) != c.entity {
				t.Fatalf("got %d entity=%v", res.Code, res.Instance != nil)
			}
			if c.entity && res.Instance.LastDirtyTimestamp != 1000 {
				t.Fatalf("409 entity must be the stored copy: %+v", res.Instance)
			}
			if _, ok := r.Instance("A", "1"); !ok {
				t.Fatal("instance must stay")
			}
		})
	}
	r, _ := newReg(t, nil)
	if r.Heartbeat(ctx, "A", "nope", HeartbeatRequest{}).Code != 404 {
		t.Fatal("unknown instance must be 404")
	}
}

func TestReplicatedHeartbeatStoresNewerOverride(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	res := r.Heartbeat(ctx, "A", "1", HeartbeatRequest{LastDirtyTimestamp: 2000, HasLastDirty: true,
		OverriddenStatus: StatusOutOfService, Origin: FromPeer})
	if res.Code != 404 {
		t.Fatalf("code %d", res.Code)
	}
	if r.Overrides()["1"] != StatusOutOfService || get(t, r, "A", "1").OverriddenStatus != StatusOutOfService {
		t.Fatal("override from the newer replicated heartbeat not stored")
	}

	// Once the copy's status changes are versioned, an unversioned heartbeat does not change its
	// override state: the register that answers the 404 carries the sender's, with its version.
	r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient)
	res = r.Heartbeat(ctx, "A", "1", HeartbeatRequest{LastDirtyTimestamp: 3000, HasLastDirty: true,
		OverriddenStatus: StatusOutOfService, Origin: FromPeer})
	if got := get(t, r, "A", "1"); res.Code != 404 || got.OverriddenStatus != StatusUnknown || len(r.Overrides()) != 0 {
		t.Fatalf("versioned copy after a newer heartbeat with an override: code %d, %s, overrides %v", res.Code, got.OverriddenStatus, r.Overrides())
	}
}

func TestLeaseExpiry(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("fixed=%v", fixed), func(t *testing.T) {
			r, c := newReg(t, func(cfg *Config) { cfg.EnableSelfPreservation = false; cfg.FixLeaseDurationBug = fixed })
			i := inst("A", "1", StatusUp, 1)
			i.LeaseInfo.DurationSecs = 3
			mustRegister(t, r, i, FromClient)
			r.Heartbeat(ctx, "A", "1", HeartbeatRequest{})
			renewedAt := c.nowMs()
			if got := get(t, r, "A", "1").LeaseInfo.LastRenewalTimestamp; fixed && got != renewedAt || !fixed && got != renewedAt+3000 {
				t.Fatalf("lastRenewalTimestamp %d (renewed at %d)", got, renewedAt)
			}
			c.Advance(3500 * time.Millisecond)
			_, visible := r.Instance("A", "1")
			if visible == fixed {
				t.Fatalf("at 3.5s after renew: visible=%v (fixed=%v)", visible, fixed)
			}
			c.Advance(3 * time.Second)
			if _, ok := r.Instance("A", "1"); ok {
				t.Fatal("at 6.5s after renew the lease must be expired in both modes")
			}
			if r.Evict() != 1 {
				t.Fatal("expected one eviction")
			}
			if r.Application("A") != nil {
				t.Fatal("evicted instance still listed")
			}
		})
	}
}

func TestEvictionCapAndCompensation(t *testing.T) {
	r, c := newReg(t, func(cfg *Config) { cfg.EnableSelfPreservation = false })
	for i := 0; i < 20; i++ {
		mustRegister(t, r, inst("A", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	c.Advance(91 * time.Second)
	if n := r.Evict(); n != 3 {
		t.Fatalf("20 leases, all expired: evicted %d, want 3 (15%% cap)", n)
	}
	if got := r.Stats().Instances; got != 17 {
		t.Fatalf("instances %d", got)
	}
}

func TestEvictionCompensation(t *testing.T) {
	// The first run sets the reference; a run that is late by L treats a lease as expired only
	// when it expired more than L ago (Eureka's compensation for GC pauses and clock jumps).
	cases := []struct {
		name      string
		renewAt   time.Duration // 0: never renewed
		runAt     time.Duration
		wantEvict int
	}{
		{"on time, expired", 0, 30 * time.Second, 1},
		{"on time, live", 0, 5 * time.Second, 0},
		{"40s late, expired 90s ago", 0, 100 * time.Second, 1},
		{"9m late, expired 5s ago after a renew", 590 * time.Second, 615 * time.Second, 0},
		{"9m late, expired 10m ago", 0, 615 * time.Second, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, clk := newReg(t, func(cfg *Config) { cfg.EnableSelfPreservation = false })
			start := clk.nowMs()
			r.Evict()
			i := inst("A", "1", StatusUp, 1)
			i.LeaseInfo.DurationSecs = 10
			mustRegister(t, r, i, FromClient)
			if c.renewAt > 0 {
				clk.Set(start + c.renewAt.Milliseconds())
				r.Heartbeat(ctx, "A", "1", HeartbeatRequest{})
			}
			clk.Set(start + c.runAt.Milliseconds())
			if got := r.Evict(); got != c.wantEvict {
				t.Fatalf("evicted %d, want %d", got, c.wantEvict)
			}
		})
	}
}

func TestSelfPreservation(t *testing.T) {
	r, c := newReg(t, func(cfg *Config) { cfg.EvictionInterval = time.Second })
	r.OpenForTraffic(0) // expected 1, as Spring Cloud
	for i := 0; i < 10; i++ {
		mustRegister(t, r, inst("A", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	st := r.Stats()
	if st.ExpectedClientsRenewing != 11 || st.RenewsThresholdPerMin != 18 { // floor(11*2*0.85)
		t.Fatalf("expected %d threshold %d", st.ExpectedClientsRenewing, st.RenewsThresholdPerMin)
	}
	if !st.SelfPreservationActive {
		t.Fatal("no renewals yet: self-preservation must be active")
	}
	c.Advance(100 * time.Second)
	if r.Evict() != 0 {
		t.Fatal("self-preservation must block eviction")
	}
	if _, ok := r.Instance("A", "0"); !ok {
		t.Fatal("expired lease must stay visible while expiry is disabled")
	}
	// 19 renewals in one complete minute (> 18) enable expiry.
	c.Set((c.nowMs()/60000 + 1) * 60000)
	for i := 0; i < 19; i++ {
		r.Heartbeat(ctx, "A", fmt.Sprint(i%9), HeartbeatRequest{})
	}
	c.Advance(60 * time.Second)
	if r.Stats().RenewsLastMin != 19 || r.Stats().SelfPreservationActive {
		t.Fatalf("stats %+v", r.Stats())
	}
	if _, ok := r.Instance("A", "9"); ok {
		t.Fatal("expired lease must be hidden while expiry is enabled")
	}
}

func TestMaxProtectionTime(t *testing.T) {
	r, c := newReg(t, func(cfg *Config) { cfg.MaxProtectionTime = 10 * time.Minute })
	r.OpenForTraffic(1)
	mustRegister(t, r, inst("A", "1", StatusUp, 1), FromClient)
	// The timer runs every minute; the lease expires after 90 s.
	for m := 1; m <= 11; m++ {
		c.Advance(time.Minute)
		if r.Evict() != 0 {
			t.Fatalf("minute %d: within the protection time nothing is evicted", m)
		}
	}
	c.Advance(time.Minute)
	if r.Evict() != 1 {
		t.Fatal("past the protection time an unrenewed lease must be evicted")
	}
}

func TestRecountExpected(t *testing.T) {
	r, _ := newReg(t, nil)
	r.OpenForTraffic(100)
	for i := 0; i < 90; i++ {
		mustRegister(t, r, inst("A", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	r.RecountExpected() // 90 > 0.85*190? no → unchanged
	if r.Stats().ExpectedClientsRenewing != 190 {
		t.Fatalf("expected %d", r.Stats().ExpectedClientsRenewing)
	}
	r2, _ := newReg(t, nil)
	r2.OpenForTraffic(10)
	for i := 0; i < 9; i++ {
		mustRegister(t, r2, inst("A", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	r2.RecountExpected() // 9 > 0.85*19 = 16.15? no
	for i := 9; i < 17; i++ {
		mustRegister(t, r2, inst("A", fmt.Sprint(i), StatusUp, 1), FromClient)
	}
	r2.RecountExpected() // 17 > 0.85*27=22.95? no. Still unchanged: the fall is limited.
	if got := r2.Stats().ExpectedClientsRenewing; got != 27 {
		t.Fatalf("expected %d", got)
	}
}

func TestDeltaAndRetention(t *testing.T) {
	r, c := newReg(t, func(cfg *Config) {
		cfg.DeltaRetention = 2 * time.Second
		cfg.DeltaRetentionInterval = 500 * time.Millisecond
	})
	mustRegister(t, r, inst("A", "d1", StatusUp, 1), FromClient)
	d := r.Delta()
	if len(d.Applications) != 1 || d.Applications[0].Instances[0].ActionType != ActionAdded || d.AppsHashCode != "UP_1_" {
		t.Fatalf("delta %+v", d)
	}
	v1 := d.VersionsDelta
	r.UpdateStatus(ctx, "A", "d1", StatusDown, 0, 0, FromClient)
	r.Cancel(ctx, "A", "d1", FromClient)
	d = r.Delta()
	if len(d.Applications[0].Instances) != 1 {
		t.Fatal("delta must be de-duplicated per instance")
	}
	if got := d.Applications[0].Instances[0]; got.ActionType != ActionDeleted || got.LeaseInfo.EvictionTimestamp == 0 {
		t.Fatalf("deleted item %+v", got)
	}
	if d.VersionsDelta <= v1 || d.AppsHashCode != "" {
		t.Fatalf("version %s→%s hash %q", v1, d.VersionsDelta, d.AppsHashCode)
	}
	c.Advance(3 * time.Second)
	mustRegister(t, r, inst("A", "d9", StatusUp, 1), FromClient)
	r.Prune()
	d = r.Delta()
	if len(d.Applications) != 1 || len(d.Applications[0].Instances) != 1 || d.Applications[0].Instances[0].InstanceID != "d9" {
		t.Fatalf("after retention: %+v", d.Applications)
	}
	r2, _ := newReg(t, func(cfg *Config) { cfg.DisableDelta = true })
	if r2.Delta() != nil {
		t.Fatal("disabled delta must be nil")
	}
}

func TestVIP(t *testing.T) {
	r, _ := newReg(t, nil)
	v1 := inst("A", "v1", StatusUp, 1)
	v1.VIPAddress, v1.SecureVIPAddress = "alpha,beta", "sec"
	v2 := inst("B", "v2", StatusUp, 1)
	v2.VIPAddress = "beta"
	mustRegister(t, r, v1, FromClient)
	mustRegister(t, r, v2, FromClient)
	count := func(a *Applications) int {
		n := 0
		for _, app := range a.Applications {
			n += len(app.Instances)
		}
		return n
	}
	for _, c := range []struct {
		vip    string
		secure bool
		want   int
	}{{"beta", false, 2}, {"alpha", false, 1}, {"Beta", false, 0}, {"sec", true, 1}, {"nosuch", false, 0}, {"alpha,beta", false, 0}} {
		a := r.VIP(c.vip, c.secure)
		if count(a) != c.want || a.VersionsDelta != "-1" {
			t.Errorf("VIP(%q,%v) = %d instances (version %s), want %d", c.vip, c.secure, count(a), a.VersionsDelta, c.want)
		}
	}
}

func TestCancelAndOverrideRemoval(t *testing.T) {
	r, _ := newReg(t, nil)
	if r.Cancel(ctx, "A", "1", FromClient) {
		t.Fatal("cancel of unknown must be false")
	}
	mustRegister(t, r, inst("A", "1", StatusUp, 1), FromClient)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	if !r.Cancel(ctx, "A", "1", FromClient) || r.Cancel(ctx, "A", "1", FromClient) {
		t.Fatal("cancel")
	}
	if len(r.Overrides()) != 0 || r.Application("A") != nil {
		t.Fatal("cancel must remove the override and the instance")
	}
}

func TestOverrideExpiry(t *testing.T) {
	r, c := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 1), FromClient)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	c.Advance(59 * time.Minute)
	r.Heartbeat(ctx, "A", "1", HeartbeatRequest{}) // an access
	c.Advance(59 * time.Minute)
	r.Prune()
	if len(r.Overrides()) != 1 {
		t.Fatal("an accessed override must not expire")
	}
	c.Advance(61 * time.Minute)
	r.Prune()
	if len(r.Overrides()) != 0 {
		t.Fatal("an override unread for an hour must expire")
	}
}

func TestWritesToListeners(t *testing.T) {
	r, _ := newReg(t, nil)
	var got []Write
	r.Subscribe(func(_ context.Context, w Write) { got = append(got, w) })
	var changes []Change
	r.OnChange(func(c Change) { changes = append(changes, c) })
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	r.Heartbeat(ctx, "A", "1", HeartbeatRequest{})
	r.Heartbeat(ctx, "A", "nope", HeartbeatRequest{})
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 2000, 0, FromClient)
	r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromPeer)
	r.UpdateMetadata(ctx, "A", "1", map[string]string{"k": "v"}, FromClient)
	r.Cancel(ctx, "A", "1", FromClient)
	r.Cancel(ctx, "A", "1", FromClient)
	want := []struct {
		a      Action
		o      Origin
		status Status
		ts     int64
	}{
		{ActionRegister, FromClient, StatusUp, 1000},
		{ActionHeartbeat, FromClient, StatusUp, 1000},
		{ActionStatusUpdate, FromClient, StatusOutOfService, 2000},
		{ActionDeleteStatusOverride, FromPeer, StatusUp, 2000},
		{ActionRegister, FromClient, StatusUp, 2000},
		{ActionCancel, FromClient, "", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d writes: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Action != w.a || g.Origin != w.o || g.Status != w.status || g.LastDirtyTimestamp != w.ts || g.App != "A" || g.ID != "1" {
			t.Errorf("write %d: %+v, want %+v", i, g, w)
		}
		if (g.Action == ActionCancel) != (g.Instance == nil) {
			t.Errorf("write %d: instance presence", i)
		}
	}
	if got[4].Instance.Metadata["k"] != "v" {
		t.Error("metadata update must replicate the merged instance")
	}
	if len(changes) != 5 { // register, status, delete override, metadata re-register, cancel
		t.Errorf("changes %d: %+v", len(changes), changes)
	}
	// Eviction produces no write.
	n := len(got)
	r2, c := newReg(t, func(cfg *Config) { cfg.EnableSelfPreservation = false })
	r2.Subscribe(func(_ context.Context, w Write) { got = append(got, w) })
	mustRegister(t, r2, inst("A", "1", StatusUp, 1), FromClient)
	c.Advance(time.Hour)
	if r2.Evict() != 1 || len(got) != n+1 {
		t.Fatal("eviction must not be handed to listeners")
	}
}

func TestRegisterReplicatesIncomingEvenWhenItLoses(t *testing.T) {
	r, _ := newReg(t, nil)
	var got []Write
	r.Subscribe(func(_ context.Context, w Write) { got = append(got, w) })
	mustRegister(t, r, inst("A", "1", StatusUp, 2000), FromPeer)
	mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromClient)
	if got[1].LastDirtyTimestamp != 1000 {
		t.Fatalf("the incoming copy is what Eureka replicates: %+v", got[1])
	}
}

func TestDigestIncremental(t *testing.T) {
	r, c := newReg(t, func(cfg *Config) { cfg.EnableSelfPreservation = false })
	rnd := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 3000; step++ {
		app := fmt.Sprint("APP", rnd.IntN(5))
		id := fmt.Sprint(rnd.IntN(40))
		switch rnd.IntN(7) {
		case 0, 1:
			mustRegister(t, r, inst(app, id, []Status{StatusUp, StatusDown, StatusOutOfService}[rnd.IntN(3)], int64(rnd.IntN(100))), Origin(rnd.IntN(2)))
		case 2:
			r.Cancel(ctx, app, id, FromClient)
		case 3:
			r.UpdateStatus(ctx, app, id, StatusOutOfService, int64(rnd.IntN(100)), 0, FromClient)
		case 4:
			r.DeleteStatusOverride(ctx, app, id, StatusUp, 0, 0, FromClient)
		case 5:
			r.Heartbeat(ctx, app, id, HeartbeatRequest{LastDirtyTimestamp: int64(rnd.IntN(100)), HasLastDirty: true, OverriddenStatus: StatusOutOfService, Origin: FromPeer})
		case 6:
			c.Advance(time.Duration(rnd.IntN(20)) * time.Second)
			r.Evict()
		}
	}
	root, apps := r.Digest()
	var wantRoot uint64
	wantApps := map[string]uint64{}
	n := 0
	// Recomputed from the decorated copies the API serves: the hash ignores what decoration adds.
	for _, a := range r.Applications().Applications {
		for _, i := range a.Instances {
			h := ContentHash(i)
			wantRoot ^= h
			wantApps[a.Name] ^= h
			n++
		}
	}
	if root != wantRoot || len(apps) != len(wantApps) {
		t.Fatalf("root %x want %x; apps %d want %d", root, wantRoot, len(apps), len(wantApps))
	}
	for a, h := range wantApps {
		if apps[a] != h {
			t.Fatalf("app %s hash %x want %x", a, apps[a], h)
		}
	}
	if _, cnt := r.DigestRoot(); cnt != n {
		t.Fatalf("count %d want %d", cnt, n)
	}
}

func TestDigestOrderIndependentAndTombstones(t *testing.T) {
	a, ca := newReg(t, nil)
	b, _ := newReg(t, nil)
	mustRegister(t, a, inst("A", "1", StatusUp, 1), FromPeer)
	mustRegister(t, a, inst("A", "2", StatusUp, 2), FromPeer)
	mustRegister(t, b, inst("A", "2", StatusUp, 2), FromPeer)
	mustRegister(t, b, inst("A", "1", StatusUp, 1), FromPeer)
	ra, _ := a.Digest()
	rb, _ := b.Digest()
	if ra != rb {
		t.Fatal("same instances must give the same root")
	}
	a.Cancel(ctx, "A", "1", FromClient)
	var tomb *InstanceDigest
	for _, d := range a.AppDigest("a") {
		if d.Deleted {
			d := d
			tomb = &d
		}
	}
	if tomb == nil || tomb.ID != "1" || tomb.DeletedAt != ca.nowMs() {
		t.Fatalf("tombstone %+v", tomb)
	}
	ca.Advance(6 * time.Minute)
	a.Prune()
	for _, d := range a.AppDigest("A") {
		if d.Deleted {
			t.Fatal("tombstone must expire after its TTL")
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	r := New(DefaultConfig())
	r.Subscribe(func(context.Context, Write) {})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				id := fmt.Sprint(i % 20)
				switch i % 6 {
				case 0:
					_ = r.Register(ctx, inst("A", id, StatusUp, int64(i)), FromClient)
				case 1:
					r.Heartbeat(ctx, "A", id, HeartbeatRequest{LastDirtyTimestamp: int64(i), HasLastDirty: true})
				case 2:
					r.UpdateStatus(ctx, "A", id, StatusOutOfService, 0, 0, FromClient)
				case 3:
					r.Applications()
					r.Delta()
				case 4:
					r.Cancel(ctx, "A", id, FromPeer)
				case 5:
					r.Evict()
					r.Digest()
					r.Stats()
				}
			}
		}(g)
	}
	wg.Wait()
	// After concurrent writes the counters, the documents and the digest must still agree.
	listed := 0
	for _, a := range r.Applications().Applications {
		listed += len(a.Instances)
	}
	root, cnt := r.DigestRoot()
	var want uint64
	for _, a := range r.Applications().Applications {
		for _, i := range a.Instances {
			want ^= ContentHash(i)
		}
	}
	if st := r.Stats(); st.Instances != listed || cnt != listed || root != want {
		t.Fatalf("stats %d, listed %d, digest count %d, root %x want %x", st.Instances, listed, cnt, root, want)
	}
}

// TestAdopt checks the anti-entropy write: a peer's copy is stored exactly (status, override map,
// lastDirtyTimestamp) only when it wins in the Newer order, and is never handed to listeners as a
// client write.
func TestAdopt(t *testing.T) {
	r, _ := newReg(t, nil)
	var writes []Write
	r.Subscribe(func(_ context.Context, w Write) { writes = append(writes, w) })
	mustRegister(t, r, inst("A", "1", StatusUp, 100), FromClient)
	local := get(t, r, "A", "1")

	// A peer copy with the same lastDirtyTimestamp and an OUT_OF_SERVICE override: it wins the tie
	// over the local copy, which has none (and, for good measure, hashes larger too).
	var peer *Instance
	for i := 0; peer == nil; i++ {
		c := local.Clone()
		c.Status, c.OverriddenStatus = StatusOutOfService, StatusOutOfService
		c.Metadata = map[string]string{"try": fmt.Sprint(i)}
		if VersionOf(c).Newer(VersionOf(local)) && ContentHash(c) > ContentHash(local) {
			peer = c
		}
	}
	// A copy without override whose hash is the smaller: it loses.
	loser := local.Clone()
	loser.Metadata = map[string]string{"lose": "start"}
	for i := 0; VersionOf(loser).Newer(VersionOf(local)); i++ {
		loser.Metadata = map[string]string{"lose": fmt.Sprint(i)}
	}
	if ok, err := r.Adopt(ctx, loser, 0); err != nil || ok {
		t.Fatalf("copy with the smaller hash adopted: %v %v", ok, err)
	}
	older := peer.Clone()
	older.LastDirtyTimestamp = 99
	if ok, err := r.Adopt(ctx, older, 0); err != nil || ok {
		t.Fatalf("older copy adopted: %v %v", ok, err)
	}
	if ok, err := r.Adopt(ctx, peer, 0); err != nil || !ok {
		t.Fatalf("winning copy not adopted: %v %v", ok, err)
	}
	got := get(t, r, "A", "1")
	if got.Status != StatusOutOfService || got.OverriddenStatus != StatusOutOfService || got.LastDirtyTimestamp != 100 {
		t.Errorf("adopted %s/%s at %d", got.Status, got.OverriddenStatus, got.LastDirtyTimestamp)
	}
	if r.Overrides()["1"] != StatusOutOfService {
		t.Errorf("override map %v", r.Overrides())
	}
	if ContentHash(got) != ContentHash(peer) {
		t.Error("stored copy does not hash like the peer's")
	}
	// Adopting the same copy again changes nothing; the override map follows a copy without one.
	if ok, _ := r.Adopt(ctx, peer, 0); ok {
		t.Error("same copy adopted twice")
	}
	if last := writes[len(writes)-1]; last.Origin != FromPeer || last.Action != ActionRegister {
		t.Errorf("last write %+v, want a peer Register", last)
	}
	newer := local.Clone()
	newer.LastDirtyTimestamp = 200
	if ok, _ := r.Adopt(ctx, newer, 0); !ok {
		t.Fatal("newer copy refused")
	}
	if _, has := r.Overrides()["1"]; has || get(t, r, "A", "1").Status != StatusUp {
		t.Errorf("override map %v after adopting a copy without override", r.Overrides())
	}
}

// A peer's register of an instance this node cancelled, with a lastDirtyTimestamp no newer than
// the cancelled copy's, is that copy coming back (a register that raced the cancel, or the answer
// to a heartbeat that did): it is ignored. A newer life of the instance, or a client's own
// registration, is applied.
func TestPeerRegisterDoesNotRaiseACancelledInstance(t *testing.T) {
	r, _ := newReg(t, nil)
	ctx := context.Background()
	mustRegister(t, r, inst("APP", "i1", StatusUp, 100), FromClient)
	if !r.Cancel(ctx, "APP", "i1", FromClient) {
		t.Fatal("cancel failed")
	}
	mustRegister(t, r, inst("APP", "i1", StatusUp, 100), FromPeer)
	if _, ok := r.Instance("APP", "i1"); ok {
		t.Fatal("a peer's copy of the cancelled instance brought it back")
	}
	mustRegister(t, r, inst("APP", "i1", StatusUp, 101), FromPeer)
	if _, ok := r.Instance("APP", "i1"); !ok {
		t.Fatal("a newer life of the instance from a peer was not applied")
	}
	if !r.Cancel(ctx, "APP", "i1", FromClient) {
		t.Fatal("second cancel failed")
	}
	mustRegister(t, r, inst("APP", "i1", StatusUp, 101), FromClient)
	if _, ok := r.Instance("APP", "i1"); !ok {
		t.Fatal("a client's registration after a cancel was not applied")
	}
}

// replay applies a client's status write to another registry as the replication receiver does.
func replay(r *Registry, w Write) bool {
	if w.Action == ActionDeleteStatusOverride {
		return r.DeleteStatusOverride(ctx, w.App, w.ID, w.Status, w.LastDirtyTimestamp, w.StatusVersion, FromPeer)
	}
	return r.UpdateStatus(ctx, w.App, w.ID, w.Status, w.LastDirtyTimestamp, w.StatusVersion, FromPeer)
}

// TestStatusChangesOrderedAcrossNodes is the race the fault-schedule checker found: a client sets
// OUT_OF_SERVICE at node A, then (after A's answer) removes the override at node B, which has not
// heard of the override yet. Both writes carry the same lastDirtyTimestamp. Whatever order the
// replicated writes arrive in, every node must end with the override removed.
func TestStatusChangesOrderedAcrossNodes(t *testing.T) {
	a, clock := newReg(t, nil)
	b := New(DefaultConfig(), WithClock(clock))
	c := New(DefaultConfig(), WithClock(clock))
	clock.Set(1_000_000)
	var writes []Write
	for i, r := range []*Registry{a, b, c} {
		o := FromPeer
		if i == 0 {
			o = FromClient
		}
		mustRegister(t, r, inst("A", "1", StatusUp, 1000), o)
		if i < 2 {
			r.Subscribe(func(_ context.Context, w Write) {
				if w.Origin == FromClient && w.Action != ActionRegister {
					writes = append(writes, w)
				}
			})
		}
	}
	if !a.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient) {
		t.Fatal("override refused")
	}
	clock.Advance(time.Millisecond)
	if !b.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient) {
		t.Fatal("removal refused")
	}
	if len(writes) != 2 || writes[0].StatusVersion == 0 || writes[1].StatusVersion <= writes[0].StatusVersion {
		t.Fatalf("writes %+v: want two, versioned in order", writes)
	}
	override, removal := writes[0], writes[1]
	// C hears the removal first (from B), then the override (from A, whose link was slow); B hears
	// the override late; A hears the removal.
	for _, step := range []struct {
		r *Registry
		w Write
	}{{c, removal}, {c, override}, {b, override}, {a, removal}} {
		if !replay(step.r, step.w) {
			t.Fatalf("%s refused", step.w.Action)
		}
	}
	for name, r := range map[string]*Registry{"A": a, "B": b, "C": c} {
		got := get(t, r, "A", "1")
		if got.Status != StatusUp || got.OverriddenStatus != StatusUnknown {
			t.Errorf("node %s: %s/%s, want UP without an override (the removal came last)", name, got.Status, got.OverriddenStatus)
		}
		if got.StatusVersion != removal.StatusVersion {
			t.Errorf("node %s: status version %d, want the removal's %d", name, got.StatusVersion, removal.StatusVersion)
		}
		if _, ok := r.Overrides()["1"]; ok {
			t.Errorf("node %s: the override map still holds the override", name)
		}
	}
	if ra, rb, rc := rootOf(a), rootOf(b), rootOf(c); ra != rb || rb != rc {
		t.Errorf("digests differ: %x %x %x", ra, rb, rc)
	}
}

// TestStatusVersionFollowsPeers checks the hybrid clock: a node whose clock is behind, having
// applied a peer's status change, versions its own next change above it, so it is not taken for
// the older one.
func TestStatusVersionFollowsPeers(t *testing.T) {
	fast, fastClock := newReg(t, nil)
	slow, slowClock := newReg(t, nil)
	fastClock.Set(2_000_000)
	slowClock.Set(1_000_000) // 1000 s behind
	for _, r := range []*Registry{fast, slow} {
		mustRegister(t, r, inst("A", "1", StatusUp, 1000), FromPeer)
	}
	var last Write
	for _, r := range []*Registry{fast, slow} {
		r.Subscribe(func(_ context.Context, w Write) { last = w })
	}
	fast.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	override := last
	if !replay(slow, override) {
		t.Fatal("replicated override refused")
	}
	slow.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient)
	removal := last
	if removal.StatusVersion <= override.StatusVersion {
		t.Fatalf("removal versioned %d, not after the override it follows (%d)", removal.StatusVersion, override.StatusVersion)
	}
	replay(fast, removal)
	if got := get(t, fast, "A", "1"); got.OverriddenStatus != StatusUnknown {
		t.Errorf("the fast node kept the override: %s", got.OverriddenStatus)
	}
	// A replayed (duplicate or late) override is older than the removal: ignored, yet answered as
	// applied, so the sender does not retry it.
	if !replay(fast, override) {
		t.Error("a stale replicated change must be acknowledged")
	}
	if got := get(t, fast, "A", "1"); got.OverriddenStatus != StatusUnknown {
		t.Errorf("a stale override was applied: %s", got.OverriddenStatus)
	}
	// A client's document never sets the version: only anti-entropy's Adopt takes a peer's.
	doc := inst("A", "1", StatusUp, 1000)
	doc.StatusVersion = 1 << 60
	mustRegister(t, fast, doc, FromClient)
	if got := get(t, fast, "A", "1"); got.StatusVersion != removal.StatusVersion {
		t.Errorf("a registration set the status version to %d, want %d kept", got.StatusVersion, removal.StatusVersion)
	}
}

func rootOf(r *Registry) uint64 { root, _ := r.Digest(); return root }

// TestDelayedRegisterDoesNotRestoreRemovedOverride: a replicated register that left its sender
// while an override was in place, delayed past the override's removal here (a retry, a partition),
// must not install the override again: its status version is older than the removal's. Without
// the version the override would come back here, win anti-entropy's tie ("override wins") and be
// restored on every node. A register sent after the removal, or one from a sender that knew a
// later status change, installs its override as Eureka does.
func TestDelayedRegisterDoesNotRestoreRemovedOverride(t *testing.T) {
	r, c := newReg(t, nil)
	var last Write
	r.Subscribe(func(_ context.Context, w Write) { last = w })
	mustRegister(t, r, inst("A", "1", StatusUp, 10), FromClient)
	if !r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient) {
		t.Fatal("status update refused")
	}
	c.Advance(time.Second)
	// The client registers again while the override holds: the replicated copy carries it, with
	// the version of the status change that set it.
	mustRegister(t, r, inst("A", "1", StatusUp, 20), FromClient)
	delayed := last.Instance.Clone()
	if last.Action != ActionRegister || delayed.OverriddenStatus != StatusOutOfService || last.StatusVersion == 0 ||
		last.StatusVersion != get(t, r, "A", "1").StatusVersion {
		t.Fatalf("replicated register: %s %s/%s version %d", last.Action, delayed.Status, delayed.OverriddenStatus, last.StatusVersion)
	}
	delayed.StatusVersion = last.StatusVersion
	c.Advance(time.Second)
	if !r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient) {
		t.Fatal("override removal refused")
	}
	removal := last.StatusVersion

	mustRegister(t, r, delayed, FromPeer)
	if got := get(t, r, "A", "1"); got.Status != StatusUp || got.OverriddenStatus != StatusUnknown || len(r.Overrides()) != 0 {
		t.Fatalf("after a delayed register: %s/%s, overrides %v; want UP without an override", got.Status, got.OverriddenStatus, r.Overrides())
	}

	later := delayed.Clone()
	later.StatusVersion = removal + 1
	mustRegister(t, r, later, FromPeer)
	wantStatus(t, r, StatusOutOfService, StatusOutOfService, "after a register that knew a later status change")
}

// TestOverrideRemovalAfterMapExpiry: the override map forgets an override unread for an hour
// (Eureka's overriddenInstanceStatusMap cache) while the instance still shows it. Eureka's removal
// then does nothing; herald's removes it, so no copy is left showing an override under the
// removal's version.
func TestOverrideRemovalAfterMapExpiry(t *testing.T) {
	r, c := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 10), FromClient)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	c.Advance(61 * time.Minute)
	r.Prune()
	if len(r.Overrides()) != 0 || get(t, r, "A", "1").OverriddenStatus != StatusOutOfService {
		t.Fatal("setup: want the map's entry expired and the instance still showing the override")
	}
	if !r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient) {
		t.Fatal("override removal refused")
	}
	wantStatus(t, r, StatusUp, StatusUnknown, "after the removal")
}

// TestLaterRegisterCarriesOverrideRemoval: a peer removed an override and then answered a
// heartbeat's 404 with a register (its copy without the override, under the removal's version),
// while the removal itself never reached this node. The register's later status version says the
// override is gone: it is removed here too, and the copy takes the version, so the older override
// still on its way is ignored when it lands.
func TestLaterRegisterCarriesOverrideRemoval(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 10), FromPeer)
	if !r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 10, 100, FromPeer) {
		t.Fatal("replicated status update refused")
	}
	after := inst("A", "1", StatusUp, 20)
	after.StatusVersion = 200
	mustRegister(t, r, after, FromPeer)
	got := get(t, r, "A", "1")
	if got.Status != StatusUp || got.OverriddenStatus != StatusUnknown || len(r.Overrides()) != 0 || got.StatusVersion != 200 {
		t.Fatalf("after the later register: %s/%s version %d, overrides %v; want UP without an override, version 200",
			got.Status, got.OverriddenStatus, got.StatusVersion, r.Overrides())
	}
	// An override older than that version, delayed on its way, stays out.
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 10, 150, FromPeer)
	if got := get(t, r, "A", "1"); got.Status != StatusUp {
		t.Fatalf("an older replicated override applied after the later register: %s", got.Status)
	}
	// A register without a version (an Eureka server's) keeps Eureka's rule: the map's override
	// stays, whatever the copy says.
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 10, 300, FromPeer)
	mustRegister(t, r, inst("A", "1", StatusUp, 30), FromPeer)
	wantStatus(t, r, StatusOutOfService, StatusOutOfService, "an unversioned register removed the override")
}

// TestUnversionedCopyDoesNotUndoVersionedRemoval: a copy without a status version (a startup
// sync's, taken from a peer that had not yet applied a removal, or an Eureka server's) cannot say
// it is newer than the removal this node applied, so its override is not installed again. Without
// this the copy would show the override under the removal's version, and anti-entropy, finding two
// copies with equal versions, would let the override win on every node.
func TestUnversionedCopyDoesNotUndoVersionedRemoval(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 10), FromClient)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 0, 0, FromClient)
	r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 0, 0, FromClient)
	removal := get(t, r, "A", "1").StatusVersion
	stale := inst("A", "1", StatusOutOfService, 10)
	stale.OverriddenStatus = StatusOutOfService
	mustRegister(t, r, stale, FromPeer)
	got := get(t, r, "A", "1")
	if got.Status != StatusUp || got.OverriddenStatus != StatusUnknown || len(r.Overrides()) != 0 || got.StatusVersion != removal {
		t.Fatalf("after an unversioned copy with the override: %s/%s version %d (removal %d), overrides %v",
			got.Status, got.OverriddenStatus, got.StatusVersion, removal, r.Overrides())
	}
}

// wantStatus fails the test when instance A/1 does not show status and overridden.
func wantStatus(t *testing.T, r *Registry, status, overridden Status, what string) {
	t.Helper()
	if got := get(t, r, "A", "1"); got.Status != status || got.OverriddenStatus != overridden {
		t.Fatalf("%s: %s/%s, want %s/%s", what, got.Status, got.OverriddenStatus, status, overridden)
	}
}

// TestReplicatedStatusChangeKeepsLastDirty: a herald peer's status change carrying a newer
// lastDirtyTimestamp than this node's copy means the copy lacks the registration that set it. The
// copy keeps its own timestamp, so that it stays older than the sender's and is repaired whole,
// instead of taking the newer timestamp over the older content. An Eureka server's (unversioned)
// change is adopted, as Eureka does.
func TestReplicatedStatusChangeKeepsLastDirty(t *testing.T) {
	r, _ := newReg(t, nil)
	mustRegister(t, r, inst("A", "1", StatusUp, 10), FromPeer)
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 20, 100, FromPeer)
	if got := get(t, r, "A", "1"); got.Status != StatusOutOfService || got.LastDirtyTimestamp != 10 {
		t.Fatalf("versioned change: %s lastDirty %d, want OUT_OF_SERVICE with 10", got.Status, got.LastDirtyTimestamp)
	}
	r.DeleteStatusOverride(ctx, "A", "1", StatusUp, 30, 200, FromPeer)
	if got := get(t, r, "A", "1"); got.Status != StatusUp || got.LastDirtyTimestamp != 10 {
		t.Fatalf("versioned removal: %s lastDirty %d, want UP with 10", got.Status, got.LastDirtyTimestamp)
	}
	r.UpdateStatus(ctx, "A", "1", StatusOutOfService, 40, 0, FromPeer)
	if got := get(t, r, "A", "1"); got.LastDirtyTimestamp != 40 {
		t.Fatalf("unversioned change: lastDirty %d, want 40 (Eureka's rule)", got.LastDirtyTimestamp)
	}
}
