package registry

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"unique"
)

// The registry keeps one instance per registration for as long as the lease lives, so what an
// instance costs in memory is what a node costs per registered client. Most of an instance repeats
// other instances: the app name, VIP addresses, dataCenterInfo, statuses, metadata keys and, within
// an app, often the whole metadata map. The rest (id, host name, address, URLs) is unique to the
// instance but largely repeats itself, as the URLs are built from the host name or address.
//
// compact makes the registry's own copy of an instance with:
//   - repeated strings interned (Go's unique package: one copy of each is shared for as long as it
//     is in use between two collections, so the table needs no bound of its own);
//   - metadata maps shared between instances whose maps are equal (a bounded table, below);
//     dataCenterInfo's metadata, which Amazon fills with the instance's own id and addresses, is
//     copied with its strings interned;
//   - the instance's own strings packed into a single allocation, where a string that is part of
//     another (a home page URL that starts the status page URL, an address inside a URL) takes no
//     room of its own.
//
// Stored instances are never changed in place (see lease), so sharing a map or a string between
// them cannot be observed. A caller that wants to change an instance it read clones it first
// (Instance.Clone copies the maps).

// Bounds of the shared-map table.
const (
	// sharedMapsBudget bounds the bytes the table holds (maps and their keys, estimated). Past
	// it the table starts again empty: instances keep the maps they hold, and maps seen again are
	// shared anew. Only metadata that is unique per instance fills it, and then sharing would not
	// help anyway.
	sharedMapsBudget = 1 << 20
	// sharedMapMaxBytes bounds the encoded size of a map the table takes; larger maps are copied.
	sharedMapMaxBytes = 4 << 10
	// sharedMapEntryCost is what the table counts per map entry beyond its key and value bytes
	// (the map's slot and control byte, rounded up), and sharedMapCost per map (its header and
	// the table's own entry).
	sharedMapEntryCost = 40
	sharedMapCost      = 96
	// internMaxLen bounds the strings interned; longer ones are copied.
	internMaxLen = 1 << 10
	// packMaxLen bounds the total length of an instance's own strings packed together.
	packMaxLen = 4 << 10
)

// sharedMaps is the table of metadata maps shared between instances, keyed by their canonical
// encoding (entries in key order, lengths as uvarints).
type sharedMaps struct {
	mu    sync.Mutex
	maps  map[string]map[string]string
	bytes int
	// Scratch space, reused under mu.
	keys []string
	buf  []byte
}

// intern returns the canonical copy of s.
func intern(s string) string {
	if s == "" || len(s) > internMaxLen {
		return s
	}
	return unique.Make(s).Value()
}

// canonicalStatus returns the constant for one of the five statuses, which every instance carries
// twice, and an interned copy of anything else.
func canonicalStatus(s Status) Status {
	switch s {
	case StatusUp:
		return StatusUp
	case StatusDown:
		return StatusDown
	case StatusStarting:
		return StatusStarting
	case StatusOutOfService:
		return StatusOutOfService
	case StatusUnknown:
		return StatusUnknown
	}
	return Status(intern(string(s)))
}

func canonicalAction(a ActionType) ActionType {
	switch a {
	case ActionAdded:
		return ActionAdded
	case ActionModified:
		return ActionModified
	case ActionDeleted:
		return ActionDeleted
	}
	return ActionType(intern(string(a)))
}

// compact returns the registry's copy of inst (see above). It shares nothing with inst that inst's
// owner could change: maps are the table's or new ones.
func (t *sharedMaps) compact(inst *Instance) *Instance {
	c := *inst
	c.App = intern(c.App)
	c.Sid = intern(c.Sid)
	c.Status = canonicalStatus(c.Status)
	c.OverriddenStatus = canonicalStatus(c.OverriddenStatus)
	c.DataCenterInfo.Class = intern(c.DataCenterInfo.Class)
	c.DataCenterInfo.Name = intern(c.DataCenterInfo.Name)
	c.AppGroupName = intern(c.AppGroupName)
	c.VIPAddress = intern(c.VIPAddress)
	c.SecureVIPAddress = intern(c.SecureVIPAddress)
	c.ActionType = canonicalAction(c.ActionType)
	c.ASGName = intern(c.ASGName)
	c.Metadata = t.share(inst.Metadata)
	// Amazon's dataCenterInfo metadata names the instance (instance-id, its addresses), so no two
	// are equal: copied, not entered in the table, where they would only push shared maps out.
	if inst.DataCenterInfo.Metadata != nil {
		c.DataCenterInfo.Metadata = internedCopy(inst.DataCenterInfo.Metadata)
	}
	pack(&c.HealthCheckURL, &c.SecureHealthCheckURL, &c.StatusPageURL, &c.HomePageURL, &c.HostName,
		&c.InstanceID, &c.IPAddr)
	return &c
}

// share returns a map equal to m that the registry may keep: the table's copy when there is one,
// else a new one with interned strings (entered in the table when it is small enough).
func (t *sharedMaps) share(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	size := 0
	for k, v := range m {
		size += len(k) + len(v) + 2*binary.MaxVarintLen16
		if size > sharedMapMaxBytes {
			return internedCopy(m)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := t.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := t.buf[:0]
	for _, k := range keys {
		v := m[k]
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	// Keep the scratch space, not the caller's strings.
	clear(keys)
	t.keys, t.buf = keys[:0], buf[:0]
	if s, ok := t.maps[string(buf)]; ok {
		return s
	}
	s := internedCopy(m)
	cost := len(buf) + sharedMapCost + sharedMapEntryCost*len(m)
	if t.maps == nil || t.bytes+cost > sharedMapsBudget {
		t.maps = map[string]map[string]string{}
		t.bytes = 0
	}
	t.maps[string(buf)] = s
	t.bytes += cost
	return s
}

func internedCopy(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[intern(k)] = intern(v)
	}
	return c
}

// pack copies the strings behind fields into one allocation, longest first, so that a string
// contained in one already placed (a home page URL at the start of the health check URL, an
// address or host name inside a URL, an id equal to the host name) is a slice of it. Strings too
// long to be worth it are left as they are.
func pack(fields ...*string) {
	// Longest first: a string can only be found inside a longer or equal one.
	var order [8]*string
	n := copy(order[:], fields)
	fs := order[:n]
	total := 0
	for _, f := range fs {
		total += len(*f)
	}
	if total == 0 || total > packMaxLen || n < len(fields) {
		return
	}
	slices.SortStableFunc(fs, func(a, b *string) int { return len(*b) - len(*a) })
	// First pass: where each string goes in the packed string, either placed after the others or
	// found inside one placed before it.
	var at [8]int
	var placed [8]bool
	size := 0
	for i, f := range fs {
		s := *f
		found := false
		for j := range i {
			if k := strings.Index(*fs[j], s); k >= 0 {
				at[i], found = at[j]+k, true
				break
			}
		}
		if !found {
			at[i], placed[i] = size, true
			size += len(s)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for i, f := range fs {
		if placed[i] {
			b.WriteString(*f)
		}
	}
	packed := b.String()
	for i, f := range fs {
		if *f != "" {
			*f = packed[at[i] : at[i]+len(*f)]
		}
	}
}
