package registry

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The anti-entropy digest is the XOR of a 64-bit hash per live instance. XOR is its own inverse,
// so each change updates the root and its app's hash in O(1), and two nodes holding the same
// instances with the same content have equal roots whatever the order they learnt them in.
//
// An instance's hash covers its whole replicated state (ContentHash): every field a peer receives
// in a register, status and overridden status included, but none of the fields each node sets for
// itself (lease timestamps, lastUpdatedTimestamp, actionType, isCoordinatingDiscoveryServer). So
// any lost write shows up as a difference, also one that left lastDirtyTimestamp alone (a status
// override, a metadata update).

// Default class names of dataCenterInfo, as the wire codec fills them in when absent, so that a copy
// that travelled through the codec hashes like the original.
const (
	dcClassDefault = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
	dcClassAmazon  = "com.netflix.appinfo.AmazonInfo"
)

// ContentHash is the hash of an instance's replicated state, the same on every node that holds the
// same copy. Values a round trip through the wire format normalises are hashed normalised: an
// empty status is UNKNOWN, an absent sid ("", "na", "unknown") is empty, lease interval and duration
// take their defaults (30 s, 90 s), an absent dataCenterInfo class is the codec's default, empty
// and absent maps are equal, map entries are hashed in key order, and invalid UTF-8 is hashed as
// the replacement characters the encoder writes.
//
// Anti-entropy orders copies of one instance by their Version.
func ContentHash(inst *Instance) uint64 {
	h := fnv.New64a()
	var num [8]byte
	str := func(s string) {
		if !utf8.ValidString(s) {
			s = validUTF8(s)
		}
		binary.LittleEndian.PutUint64(num[:], uint64(len(s)))
		_, _ = h.Write(num[:])
		_, _ = io.WriteString(h, s)
	}
	i64 := func(v int64) {
		binary.LittleEndian.PutUint64(num[:], uint64(v))
		_, _ = h.Write(num[:])
	}
	boolean := func(b bool) {
		if b {
			i64(1)
		} else {
			i64(0)
		}
	}
	kv := func(m map[string]string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		i64(int64(len(keys)))
		for _, k := range keys {
			str(k)
			str(m[k])
		}
	}
	status := func(s Status) {
		if s == "" {
			s = StatusUnknown
		}
		str(string(s))
	}
	str(strings.ToUpper(inst.App))
	str(inst.ID())
	str(inst.InstanceID)
	str(inst.HostName)
	str(inst.IPAddr)
	switch inst.Sid {
	case "", "na", "unknown":
		str("")
	default:
		str(inst.Sid)
	}
	status(inst.Status)
	status(inst.OverriddenStatus)
	i64(int64(inst.Port.Number))
	boolean(inst.Port.Enabled)
	i64(int64(inst.SecurePort.Number))
	boolean(inst.SecurePort.Enabled)
	i64(int64(inst.CountryID))
	class := inst.DataCenterInfo.Class
	if class == "" {
		class = dcClassDefault
		if inst.DataCenterInfo.Name == "Amazon" {
			class = dcClassAmazon
		}
	}
	str(class)
	str(inst.DataCenterInfo.Name)
	kv(inst.DataCenterInfo.Metadata)
	ri, d := inst.LeaseInfo.RenewalIntervalSecs, inst.LeaseInfo.DurationSecs
	if ri <= 0 {
		ri = int(defaultRenewalInterval / time.Second)
	}
	if d <= 0 {
		d = int(defaultLeaseDuration / time.Second)
	}
	i64(int64(ri))
	i64(int64(d))
	kv(inst.Metadata)
	str(strings.ToUpper(inst.AppGroupName))
	str(inst.HomePageURL)
	str(inst.StatusPageURL)
	str(inst.HealthCheckURL)
	str(inst.SecureHealthCheckURL)
	str(inst.VIPAddress)
	str(inst.SecureVIPAddress)
	i64(inst.LastDirtyTimestamp)
	str(inst.ASGName)
	// Finalise (splitmix64) so that XORs of similar inputs do not cancel out.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Version is what anti-entropy orders the copies of one instance by, when two nodes hold different
// ones: the larger lastDirtyTimestamp wins (Eureka's rule); for equal timestamps, which only
// server-side writes produce (status override, override removal, metadata update), the later status
// change wins (StatusVersion), then a copy with a status override wins over one without, and then
// the larger content hash wins.
//
// Any total order makes nodes converge, since each only ever moves an instance up the order. The
// status version makes the last acknowledged status change win, as far as the nodes' clocks agree
// (each node keeps an instance's versions increasing, so a change made after a node saw another is
// always later). Between copies with equal versions (two metadata versions, or changes an Eureka
// server replicated without a version) the order needs no clock and fails safe: the override wins,
// so an instance stays out of service rather than taking traffic it was taken out of; then the
// hash decides: arbitrary, but the same on every node.
type Version struct {
	LastDirtyTimestamp int64
	// StatusVersion is the copy's Instance.StatusVersion.
	StatusVersion int64
	// Override is set when the copy carries a status override (overriddenStatus not UNKNOWN).
	Override bool
	// Hash is the copy's ContentHash.
	Hash uint64
}

// VersionOf returns the version of a copy.
func VersionOf(inst *Instance) Version {
	return Version{LastDirtyTimestamp: inst.LastDirtyTimestamp, StatusVersion: inst.StatusVersion,
		Override: hasOverride(inst.OverriddenStatus), Hash: ContentHash(inst)}
}

func hasOverride(s Status) bool { return s != "" && s != StatusUnknown }

// Newer reports whether v wins over o in the anti-entropy order.
func (v Version) Newer(o Version) bool {
	switch {
	case v.LastDirtyTimestamp != o.LastDirtyTimestamp:
		return v.LastDirtyTimestamp > o.LastDirtyTimestamp
	case v.StatusVersion != o.StatusVersion:
		return v.StatusVersion > o.StatusVersion
	case v.Override != o.Override:
		return v.Override
	}
	return v.Hash > o.Hash
}

// version is the lease's current Version. r.mu must be held.
func (l *lease) version() Version {
	return Version{LastDirtyTimestamp: l.inst.LastDirtyTimestamp, StatusVersion: l.inst.StatusVersion,
		Override: hasOverride(l.inst.OverriddenStatus), Hash: l.hash}
}

// digestAdd and digestRemove keep the digest in step; r.mu must be held exclusively.
func (r *Registry) digestAdd(l *lease) {
	l.hash = ContentHash(l.inst)
	h := l.hash
	r.root ^= h
	r.appHash[l.app] ^= h
	r.count++
}

func (r *Registry) digestRemove(l *lease) {
	h := l.hash
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
			Status: l.inst.Status, OverriddenStatus: l.inst.OverriddenStatus, Hash: l.hash,
			StatusVersion: l.inst.StatusVersion})
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

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as the JSON
// encoder does, so that a copy decoded from the wire hashes like the original.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
