package registry

import (
	"encoding/binary"
	"hash/fnv"
	"strings"
)

// The anti-entropy digest is the XOR of a 64-bit hash per live instance. XOR is its own inverse,
// so each change updates the root and its app's hash in O(1), and two nodes holding the same
// instances at the same versions have equal roots whatever the order they learnt them in.

func instanceHash(app, id string, lastDirty int64, status, overridden Status) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(app))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(lastDirty))
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(status))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(overridden))
	// Finalise (splitmix64) so that XORs of similar inputs do not cancel out.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func leaseHash(l *lease) uint64 {
	return instanceHash(l.app, l.id, l.inst.LastDirtyTimestamp, l.inst.Status, l.inst.OverriddenStatus)
}

// digestAdd and digestRemove keep the digest in step; r.mu must be held exclusively.
func (r *Registry) digestAdd(l *lease) {
	h := leaseHash(l)
	r.root ^= h
	r.appHash[l.app] ^= h
	r.count++
}

func (r *Registry) digestRemove(l *lease) {
	h := leaseHash(l)
	r.root ^= h
	r.appHash[l.app] ^= h
	if len(r.apps[l.app]) == 0 && r.appHash[l.app] == 0 {
		delete(r.appHash, l.app)
	}
	r.count--
}

func (r *Registry) dropTomb(app, id string) {
	if m := r.tombs[app]; m != nil {
		delete(m, id)
	}
}

// Digest returns an order-independent hash of every live instance's digest and the same per app.
// Both are maintained incrementally on each write, so the root costs O(1) and the per-app map O(apps).
func (r *Registry) Digest() (root uint64, apps map[string]uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	apps = make(map[string]uint64, len(r.appHash))
	for a, h := range r.appHash {
		if len(r.apps[a]) > 0 {
			apps[a] = h
		}
	}
	return r.root, apps
}

// DigestRoot returns the root digest and the number of live instances, in O(1).
func (r *Registry) DigestRoot() (root uint64, count int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.root, r.count
}

// AppDigest returns the digests of one app's live instances and its tombstones.
func (r *Registry) AppDigest(app string) []InstanceDigest {
	app = strings.ToUpper(app)
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []InstanceDigest
	for id, l := range r.apps[app] {
		out = append(out, InstanceDigest{App: app, ID: id, LastDirtyTimestamp: l.inst.LastDirtyTimestamp,
			Status: l.inst.Status, OverriddenStatus: l.inst.OverriddenStatus})
	}
	for id, t := range r.tombs[app] {
		if _, live := r.apps[app][id]; live {
			continue
		}
		out = append(out, InstanceDigest{App: app, ID: id, LastDirtyTimestamp: t.lastDirty, Status: t.status,
			Deleted: true, DeletedAt: t.at})
	}
	return out
}
