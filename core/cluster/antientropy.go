package cluster

// Anti-entropy protocol. Each node, every Interval (jittered), asks each peer in turn:
//
//  1. GET {prefix}digest: the peer's root hash and live-instance count. Equal to ours: done, one
//     small request, whatever the registry's size.
//  2. GET {prefix}digest/apps: one hash per app. Apps whose hashes differ (or that one side lacks)
//     are compared further.
//  3. GET {prefix}digest/apps/{app}: per instance, lastDirtyTimestamp, status, overridden status
//     and the lease's registration time; per tombstone (a cancel the peer remembers), the time of
//     the cancel. Both times are the peer's clock.
//  4. Decide per instance (P = the peer's entry, ours = live copy or tombstone):
//     - P live, ours live: pull if P's copy wins in the order of registry.Version: the larger
//       lastDirtyTimestamp; for equal timestamps, a copy with a status override over one without,
//       then the larger content hash (registry.ContentHash, over every replicated field: status,
//       overridden status, metadata...). Equal timestamps with different content happen when a
//       write that leaves lastDirtyTimestamp alone (a status override or its removal, a metadata
//       update) was lost, for instance in a partition longer than the replication pipeline keeps
//       tasks. lastDirtyTimestamp cannot order them; Version orders them the same way on every
//       node, so all nodes keep the same copy (counted as Ties). It cannot tell which write came
//       last: the losing copy is undone on every node (an OUT_OF_SERVICE wins over a lost removal).
//       A peer that sends no hash (an older herald) is compared by lastDirtyTimestamp alone.
//     - P live, we have nothing: pull, if P's lease has not expired, and give our copy a lease that
//       ends when P's does (the digest says how long it has left). Eviction leaves no tombstone and
//       is not replicated: with a fresh lease per pull, two nodes evicting a dead instance at
//       different times would pull it back from each other forever; with the lease kept, a copy no
//       client renews reaches every node and expires on all of them. (A peer that predates the
//       lease's time left is pulled from only if it saw the instance heartbeat.)
//     - P live, we have a tombstone: as above, and only if the peer's copy is a newer life of the
//       instance: registered after our cancel (P.registered > our deletedAt) AND with a newer
//       lastDirtyTimestamp than the copy we cancelled (an Eureka client that registers again sets
//       a new one: setIsDirtyWithTime). Otherwise the peer holds what we cancelled (a startup
//       sync or a replicated register that raced the cancel), and it deletes it itself by the
//       next rule when it asks us.
//     - P tombstone, ours live: cancel ours if it was registered at or before the peer's cancel
//       (our registrationTimestamp <= P.deletedAt), or if it is not newer than the copy the peer
//       cancelled (our lastDirtyTimestamp <= the tombstone's); otherwise it is a newer life of the
//       instance and stays.
//     - anything else: nothing.
//  5. Confirm: after Grace, steps 3 and 4 run again for the apps concerned, and only repairs found
//     both times, against the same version of the peer's entry, are made. A write that was merely in
//     flight in the replication pipeline has landed by then and the difference is gone. A repair that
//     still races a write is harmless: a pull is a replicated register that loses to a larger local
//     lastDirtyTimestamp, and a wrong cancel or resurrection is undone by the next round (or the
//     next heartbeat, or eviction).
//  6. Pull: GET {prefix}apps/{app}?id=…, bypassing the response cache, and register each instance
//     locally with registry.FromPeer (never replicated). Cancel: Cancel(..., registry.FromPeer).
//
// Only pulls: every node asks every peer, so repairs flow both ways without a node ever writing to
// another. Clock assumption: the tombstone rules compare one node's registration time with another
// node's cancel time, so they assume server clocks agree (NTP) to well within the time between a
// cancel and a re-registration of the same instance, which is at least a heartbeat interval in
// practice. A skew larger than that makes a wrong decision that heals as described in 5.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// pullChunk is how many ids one fetch names, keeping the query string short.
const pullChunk = 64

type antiEntropy struct {
	reg     Registry
	client  *http.Client
	prefix  string
	timeout time.Duration
	grace   time.Duration
	logger  hclog.Logger
	stats   *counters
	// validate checks the instances a peer sends, as replicated writes are checked.
	validate Validator
}

// counters are the anti-entropy and sync numbers behind Stats.
type counters struct {
	exchanges  atomic.Uint64
	mismatches atomic.Uint64
	pulled     atomic.Uint64
	deleted    atomic.Uint64
	ties       atomic.Uint64
	failures   atomic.Uint64
}

type repairKind uint8

const (
	repairPull repairKind = iota + 1
	repairCancel
	// repairTomb records a peer's tombstone this node lacks (registry.AdoptTombstone).
	repairTomb
)

// repair is one decision of step 4. version is the peer entry's lastDirtyTimestamp (pull) or
// deletedAt (cancel), and hash its content hash (pull), so that the confirmation only accepts the
// same decision about the same version.
type repair struct {
	app, id string
	kind    repairKind
	version int64
	hash    uint64
	// deletedAt and status describe a peer's tombstone (repairTomb).
	deletedAt int64
	status    string
	// expiresIn is the time the peer's lease has left, in ms (repairPull of an instance this node
	// lacks); it is not part of what the confirmation compares.
	expiresIn int64
}

// key is what the confirmation compares: the decision and the version of the peer's entry.
func (r repair) key() repair {
	r.expiresIn = 0
	return r
}

// exchangeResult is what one exchange found.
type exchangeResult struct {
	peerCount int
	same      bool
	pulled    int
	deleted   int
}

// exchange runs the protocol against one peer.
func (a *antiEntropy) exchange(ctx context.Context, peer sdk.Peer) (exchangeResult, error) {
	pu, err := normalizeURL(peer.URL)
	if err != nil {
		return exchangeResult{}, err
	}
	base := pu.base + a.prefix

	var root rootDigest
	if err := a.getJSON(ctx, base+pathDigest, &root); err != nil {
		return exchangeResult{}, fmt.Errorf("anti-entropy with %s: %w", peer.Name, err)
	}
	a.stats.exchanges.Add(1)
	res := exchangeResult{peerCount: root.Count}
	peerRoot, err := parseHash(root.Root)
	if err != nil {
		return res, fmt.Errorf("anti-entropy with %s: root hash %q: %w", peer.Name, root.Root, err)
	}
	localRoot, localApps := a.reg.Digest()
	if peerRoot == localRoot && root.Count == a.reg.Stats().Instances {
		res.same = true
		return res, nil
	}
	a.stats.mismatches.Add(1)

	var pa appsDigest
	if err := a.getJSON(ctx, base+pathDigestApps, &pa); err != nil {
		return res, fmt.Errorf("anti-entropy with %s: %w", peer.Name, err)
	}
	var apps []string
	for name, h := range pa.Apps {
		if sum, err := parseHash(h); err != nil || localApps[name] != sum {
			apps = append(apps, name)
		}
	}
	for name := range localApps {
		if _, ok := pa.Apps[name]; !ok {
			apps = append(apps, name)
		}
	}
	slices.Sort(apps)

	plan, ties, err := a.plan(ctx, base, apps)
	if err != nil {
		return res, fmt.Errorf("anti-entropy with %s: %w", peer.Name, err)
	}
	if len(plan) > 0 && a.grace > 0 {
		plan, err = a.confirm(ctx, base, plan)
		if err != nil {
			return res, fmt.Errorf("anti-entropy with %s: %w", peer.Name, err)
		}
	}
	a.stats.ties.Add(uint64(ties))

	res.pulled, res.deleted, err = a.apply(ctx, base, plan)
	a.stats.pulled.Add(uint64(res.pulled))
	a.stats.deleted.Add(uint64(res.deleted))
	if res.pulled+res.deleted > 0 {
		a.logger.Info("anti-entropy repaired differences", "peer", peer.Name, "pulled", res.pulled, "deleted", res.deleted)
	}
	if err != nil {
		return res, fmt.Errorf("anti-entropy with %s: %w", peer.Name, err)
	}
	return res, nil
}

// confirm waits Grace and keeps the repairs that the same comparison finds again.
func (a *antiEntropy) confirm(ctx context.Context, base string, first []repair) ([]repair, error) {
	t := time.NewTimer(a.grace)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	case <-t.C:
	}
	var apps []string
	for _, r := range first {
		if len(apps) == 0 || apps[len(apps)-1] != r.app {
			apps = append(apps, r.app)
		}
	}
	second, _, err := a.plan(ctx, base, apps)
	if err != nil {
		return nil, err
	}
	again := make(map[repair]repair, len(second))
	for _, r := range second {
		again[r.key()] = r
	}
	kept := first[:0]
	for _, r := range first {
		if r2, ok := again[r.key()]; ok {
			kept = append(kept, r2) // the later look at the peer's lease
		}
	}
	return kept, nil
}

// plan compares the given apps (sorted) instance by instance and returns the repairs, grouped by
// app, and the number of ties.
func (a *antiEntropy) plan(ctx context.Context, base string, apps []string) ([]repair, int, error) {
	var out []repair
	ties := 0
	for _, app := range apps {
		var pd appDigest
		if err := a.getJSON(ctx, base+pathDigestApp+url.PathEscape(app), &pd); err != nil {
			return nil, 0, err
		}
		r, t := a.planApp(app, pd.Instances)
		out = append(out, r...)
		ties += t
	}
	return out, ties, nil
}

// planApp applies the rules of step 4 to one app.
func (a *antiEntropy) planApp(app string, remote []instanceDigest) ([]repair, int) {
	live := make(map[string]registry.InstanceDigest)
	dead := make(map[string]registry.InstanceDigest)
	for _, d := range a.reg.AppDigest(app) {
		if d.Deleted {
			dead[d.ID] = d
		} else {
			live[d.ID] = d
		}
	}
	var out []repair
	ties := 0
	for _, p := range remote {
		ours, isLive := live[p.ID]
		switch {
		case !p.Deleted && isLive:
			ph, err := parseHash(p.Hash)
			if err != nil {
				// No content hash: a peer that predates it. Timestamps only.
				if p.LastDirtyTimestamp > ours.LastDirtyTimestamp {
					out = append(out, repair{app: app, id: p.ID, kind: repairPull, version: p.LastDirtyTimestamp})
				}
				continue
			}
			if ph == ours.Hash {
				continue
			}
			if p.LastDirtyTimestamp == ours.LastDirtyTimestamp {
				ties++
			}
			theirs := registry.Version{LastDirtyTimestamp: p.LastDirtyTimestamp, StatusVersion: p.StatusVersion,
				Override: hasOverride(p.OverriddenStatus), Hash: ph}
			mine := registry.Version{LastDirtyTimestamp: ours.LastDirtyTimestamp, StatusVersion: ours.StatusVersion,
				Override: hasOverride(string(ours.OverriddenStatus)), Hash: ours.Hash}
			if theirs.Newer(mine) {
				out = append(out, repair{app: app, id: p.ID, kind: repairPull, version: p.LastDirtyTimestamp, hash: ph})
			}
		case !p.Deleted:
			if p.ExpiresIn <= 0 && !p.Renewed {
				continue
			}
			if t, ok := dead[p.ID]; ok && (p.Registered <= t.DeletedAt || p.LastDirtyTimestamp <= t.LastDirtyTimestamp) {
				continue
			}
			ph, _ := parseHash(p.Hash)
			out = append(out, repair{app: app, id: p.ID, kind: repairPull, version: p.LastDirtyTimestamp, hash: ph,
				expiresIn: p.ExpiresIn})
		case isLive:
			inst, ok := a.reg.Instance(app, p.ID)
			if ok && (inst.LeaseInfo.RegistrationTimestamp <= p.DeletedAt ||
				(p.LastDirtyTimestamp > 0 && inst.LastDirtyTimestamp <= p.LastDirtyTimestamp)) {
				out = append(out, repair{app: app, id: p.ID, kind: repairCancel, version: p.DeletedAt})
			}
		default:
			if _, known := dead[p.ID]; !known {
				out = append(out, repair{app: app, id: p.ID, kind: repairTomb, version: p.LastDirtyTimestamp,
					deletedAt: p.DeletedAt, status: p.Status})
			}
		}
	}
	return out, ties
}

// apply makes the repairs: pulls per app in chunks, then cancels.
func (a *antiEntropy) apply(ctx context.Context, base string, plan []repair) (pulled, deleted int, err error) {
	var errs []error
	for i := 0; i < len(plan); {
		app := plan[i].app
		var ids []string
		left := map[string]time.Duration{}
		for ; i < len(plan) && plan[i].app == app; i++ {
			switch plan[i].kind {
			case repairPull:
				ids = append(ids, plan[i].id)
				left[plan[i].id] = time.Duration(plan[i].expiresIn) * time.Millisecond
			case repairCancel:
				a.logger.Debug("anti-entropy cancels a copy of an instance a peer cancelled", "app", app, "id", plan[i].id,
					"peer", base, "deletedAt", plan[i].version)
				if a.reg.Cancel(ctx, app, plan[i].id, registry.FromPeer) {
					deleted++
				}
			case repairTomb:
				a.reg.AdoptTombstone(app, plan[i].id, plan[i].version, registry.Status(plan[i].status), plan[i].deletedAt)
			}
		}
		for chunk := range slices.Chunk(ids, pullChunk) {
			n, err := a.pull(ctx, base, app, chunk, left)
			pulled += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return pulled, deleted, errors.Join(errs...)
}

// pull fetches the named instances of app and adopts them as peer writes (registry.Adopt: stored
// exactly as the peer holds them, never replicated, and only if they still win over the local
// copy; a new lease gets the time left[id]). An instance the peer no longer has is skipped: it was
// cancelled meanwhile, and the next round sees its tombstone.
func (a *antiEntropy) pull(ctx context.Context, base, app string, ids []string, left map[string]time.Duration) (int, error) {
	q := url.Values{"id": ids}
	target := base + pathApp + url.PathEscape(app) + "?" + q.Encode()
	body, err := get(ctx, a.client, target, a.timeout)
	if err != nil {
		return 0, err
	}
	doc, err := codec.DecodeApplications(body, codec.JSON)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", target, err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var got []*registry.Instance
	for _, ap := range doc.Applications {
		for _, inst := range ap.Instances {
			if inst.App == "" {
				inst.App = ap.Name
			}
			if strings.EqualFold(inst.App, app) && want[inst.ID()] {
				got = append(got, inst)
			}
		}
	}
	var errs []error
	got, err = checkAll(ctx, a.validate, got, func(inst *registry.Instance, why string) {
		errs = append(errs, fmt.Errorf("instance %s/%s from peer refused: %s", app, inst.ID(), why))
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, inst := range got {
		ok, err := a.reg.Adopt(ctx, inst, left[inst.ID()])
		if err != nil {
			errs = append(errs, fmt.Errorf("adopt %s/%s: %w", app, inst.ID(), err))
			continue
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

func (a *antiEntropy) getJSON(ctx context.Context, target string, v any) error {
	body, err := get(ctx, a.client, target, a.timeout)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	return nil
}

func hasOverride(s string) bool { return s != "" && s != string(registry.StatusUnknown) }
