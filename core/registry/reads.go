package registry

import (
	"sort"
	"strconv"
	"strings"
)

// Instance returns a decorated copy of one instance; false if unknown, or expired while expiry is on.
func (r *Registry) Instance(app, id string) (*Instance, bool) {
	now := r.nowMs()
	hideExpired := r.expirationEnabled(now)
	r.mu.RLock()
	defer r.mu.RUnlock()
	l := r.lookup(app, id)
	if l == nil {
		return nil, false
	}
	return r.visible(l, now, hideExpired)
}

func (r *Registry) visible(l *lease, now int64, hideExpired bool) (*Instance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hideExpired && l.isExpired(now, 0) {
		return nil, false
	}
	return l.decorate(r.cfg.SelfInstanceID), true
}

// InstanceByID looks an instance up by id across all apps.
func (r *Registry) InstanceByID(id string) (*Instance, bool) {
	now := r.nowMs()
	hideExpired := r.expirationEnabled(now)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.apps {
		if l := m[id]; l != nil {
			if inst, ok := r.visible(l, now, hideExpired); ok {
				return inst, true
			}
		}
	}
	return nil, false
}

// Application returns a decorated copy of one app, or nil when it has no instances.
func (r *Registry) Application(app string) *Application {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.application(strings.ToUpper(app), nil)
}

func (r *Registry) application(name string, keep func(*Instance) bool) *Application {
	m := r.apps[name]
	if len(m) == 0 {
		return nil
	}
	a := &Application{Name: name, Instances: make([]*Instance, 0, len(m))}
	for _, l := range m {
		if keep != nil && !keep(l.inst) {
			continue
		}
		l.mu.Lock()
		a.Instances = append(a.Instances, l.decorate(r.cfg.SelfInstanceID))
		l.mu.Unlock()
	}
	if len(a.Instances) == 0 {
		return nil
	}
	sort.Slice(a.Instances, func(i, j int) bool { return a.Instances[i].ID() < a.Instances[j].ID() })
	return a
}

// Applications returns the full registry (versions__delta "1", apps__hashcode over all instances).
// Applications are in name order, instances in id order, so documents are stable.
func (r *Registry) Applications() *Applications {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.applications(nil, "1")
}

func (r *Registry) applications(keep func(*Instance) bool, version string) *Applications {
	names := make([]string, 0, len(r.apps))
	for name, m := range r.apps {
		if len(m) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := &Applications{VersionsDelta: version, Applications: make([]*Application, 0, len(names))}
	for _, name := range names {
		if a := r.application(name, keep); a != nil {
			out.Applications = append(out.Applications, a)
		}
	}
	out.AppsHashCode = HashCode(out.Applications)
	return out
}

// VIP returns the instances whose vipAddress (secure: secureVipAddress) lists vip exactly.
func (r *Registry) VIP(vip string, secure bool) *Applications {
	keep := func(inst *Instance) bool {
		s := inst.VIPAddress
		if secure {
			s = inst.SecureVIPAddress
		}
		if s == "" {
			return false
		}
		// Eureka splits on ',' without trimming and compares case-sensitively.
		for _, v := range strings.Split(s, ",") {
			if v == vip {
				return true
			}
		}
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.applications(keep, "-1")
}

// Delta returns the recently changed instances with the hash code of the whole registry, or nil
// when deltas are disabled. Each call takes a new versions__delta.
func (r *Registry) Delta() *Applications {
	if r.cfg.DisableDelta {
		return nil
	}
	// Exclusive lock: the delta and the hash code must describe one consistent registry.
	r.mu.Lock()
	defer r.mu.Unlock()
	type key struct{ app, id string }
	last := map[key]*lease{}
	var order []key
	for _, it := range r.recent {
		k := key{it.lease.app, it.lease.id}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = it.lease
	}
	byApp := map[string]*Application{}
	var names []string
	for _, k := range order {
		a := byApp[k.app]
		if a == nil {
			a = &Application{Name: k.app}
			byApp[k.app] = a
			names = append(names, k.app)
		}
		a.Instances = append(a.Instances, last[k].decorate(r.cfg.SelfInstanceID))
	}
	sort.Strings(names)
	out := &Applications{VersionsDelta: strconv.FormatInt(r.deltaVersion.Add(1), 10)}
	for _, n := range names {
		out.Applications = append(out.Applications, byApp[n])
	}
	out.AppsHashCode = r.hashCodeLocked()
	return out
}

// hashCodeLocked is the apps__hashcode of the whole registry, counted without copying it. r.mu
// must be held.
func (r *Registry) hashCodeLocked() string {
	all := &Application{}
	for _, m := range r.apps {
		for _, l := range m {
			all.Instances = append(all.Instances, l.inst)
		}
	}
	return HashCode([]*Application{all})
}

// HashCode is Eureka's apps__hashcode: per status with a count above zero, in lexicographic order of
// the status name, "<STATUS>_<count>_".
func HashCode(apps []*Application) string {
	counts := map[Status]int{}
	for _, a := range apps {
		for _, i := range a.Instances {
			counts[i.Status]++
		}
	}
	if len(counts) == 0 {
		return ""
	}
	keys := make([]string, 0, len(counts))
	for s := range counts {
		keys = append(keys, string(s))
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('_')
		b.WriteString(strconv.Itoa(counts[Status(k)]))
		b.WriteByte('_')
	}
	return b.String()
}

// Stats returns counters and self-preservation state.
func (r *Registry) Stats() Stats {
	now := r.nowMs()
	r.mu.RLock()
	apps := 0
	for _, m := range r.apps {
		if len(m) > 0 {
			apps++
		}
	}
	s := Stats{
		Apps:                    apps,
		Instances:               r.count,
		ExpectedClientsRenewing: r.expected,
		RenewsThresholdPerMin:   r.thresholdLocked(),
		SelfPreservationEnabled: r.cfg.EnableSelfPreservation,
	}
	r.mu.RUnlock()
	s.RenewsLastMin = r.renews.lastMinute(now)
	s.ReplicationsLastMin = r.replications.lastMinute(now)
	s.SelfPreservationActive = !r.expirationEnabled(now)
	if ps := r.protectedSince.Load(); ps > 0 && s.SelfPreservationActive {
		s.ProtectedSince = msTime(ps)
	}
	s.Evicted = r.evicted.Load()
	s.ReplicatedWrites = r.replicated.Load()
	s.ClientWrites = r.clientWrites.Load()
	return s
}
