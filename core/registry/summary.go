package registry

import "sort"

// AppSummary is one application's instance count per status, for overviews (the dashboard) that
// do not need the instances themselves.
type AppSummary struct {
	// Name is the application's name, upper-case as the registry keys it.
	Name string
	// Instances is the number of instances registered, Statuses their count per status.
	Instances int
	Statuses  map[Status]int
}

// AppSummaries returns every application that has instances, in name order, with its instance
// count per status. Unlike Applications it copies no instance, so it stays cheap at a hundred
// thousand instances.
func (r *Registry) AppSummaries() []AppSummary {
	r.mu.RLock()
	out := make([]AppSummary, 0, len(r.apps))
	for name, m := range r.apps {
		if len(m) == 0 {
			continue
		}
		s := AppSummary{Name: name, Instances: len(m), Statuses: make(map[Status]int, 2)}
		for _, l := range m {
			l.mu.Lock()
			s.Statuses[l.inst.Status]++
			l.mu.Unlock()
		}
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
