package cluster

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// The herald endpoints, relative to Config.APIPrefix. All are GET and JSON; hashes are 16 hex
// digits because a uint64 does not survive JSON numbers in every client.
const (
	// pathDigest answers rootDigest: the root hash and the number of live instances, O(1) in size.
	pathDigest = "digest"
	// pathDigestApps answers appsDigest: one hash per application.
	pathDigestApps = "digest/apps"
	// pathDigestApp answers appDigest: one entry per live instance and per tombstone of the app.
	pathDigestApp = "digest/apps/"
	// pathApp answers an Eureka applications document holding the app's instances named by the
	// repeated query parameter id (all of them without it). Unlike GET /eureka/apps/{app} it bypasses
	// the response cache, which could hand out a copy up to 30 s old, and the startup read gate.
	pathApp = "apps/"
)

// gzipMin is the body size above which answers are compressed; below it gzip costs more than it
// saves.
const gzipMin = 1400

type rootDigest struct {
	Root  string `json:"root"`
	Count int    `json:"count"`
}

type appsDigest struct {
	Apps map[string]string `json:"apps"`
}

type appDigest struct {
	App       string           `json:"app"`
	Instances []instanceDigest `json:"instances"`
}

// instanceDigest is registry.InstanceDigest on the wire, plus facts about the lease on the
// answering node: when it was registered, which the asking node weighs against its own tombstone,
// and how long it has left (ExpiresIn), which decides whether an instance the asking node lacks may
// be pulled and how long the pulled copy lives there.
type instanceDigest struct {
	ID                 string `json:"id"`
	LastDirtyTimestamp int64  `json:"lastDirtyTimestamp,omitempty"`
	Status             string `json:"status,omitempty"`
	OverriddenStatus   string `json:"overriddenStatus,omitempty"`
	// Hash is registry.ContentHash of the copy, in hex: it orders copies with equal
	// lastDirtyTimestamps and reveals any other difference.
	Hash string `json:"hash,omitempty"`
	// StatusVersion is the copy's registry.Instance.StatusVersion: between copies with equal
	// lastDirtyTimestamps, the later status change wins.
	StatusVersion int64 `json:"statusVersion,omitempty"`
	Registered    int64 `json:"registered,omitempty"`
	// Renewed is set when the lease was renewed since it was registered on the answering node and
	// has not expired. Nodes that predate ExpiresIn pull only such copies.
	Renewed bool `json:"renewed,omitempty"`
	// ExpiresIn is the time the lease has left on the answering node, in ms; absent once expired.
	// A pulled copy gets a lease that ends as this one does (registry.Registry.Adopt), so a copy no
	// client renews spreads to every node and then expires everywhere at about the same time,
	// rather than living a fresh lease on each node that pulls it, where two nodes that evict a dead
	// instance at different times would pull it back from each other forever.
	ExpiresIn int64 `json:"expiresIn,omitempty"`
	Deleted   bool  `json:"deleted,omitempty"`
	DeletedAt int64 `json:"deletedAt,omitempty"`
}

func formatHash(h uint64) string { return strconv.FormatUint(h, 16) }

func parseHash(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// newHandler serves the herald endpoints under prefix (e.g. "/herald/v1/") from reg.
func newHandler(reg Registry, prefix string, clock registry.Clock) http.Handler {
	h := &handler{reg: reg, clock: clock}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+pathDigest, h.root)
	mux.HandleFunc("GET "+prefix+pathDigestApps, h.apps)
	mux.HandleFunc("GET "+prefix+pathDigestApp+"{app}", h.app)
	mux.HandleFunc("GET "+prefix+pathApp+"{app}", h.instances)
	return mux
}

type handler struct {
	reg   Registry
	clock registry.Clock
}

// leaseFacts are what the app digest tells about one lease.
type leaseFacts struct {
	registered int64
	renewed    bool
	expiresIn  int64
}

// factsOf reads a decorated lease. The registry reports LastRenewalTimestamp such that the lease
// expires DurationSecs after it, with or without Eureka's double-duration bug (with it, the value is
// the renew time plus the duration); a lease never renewed reports its registration time.
func factsOf(li registry.LeaseInfo, now int64) leaseFacts {
	dur := int64(li.DurationSecs)
	if dur <= 0 {
		dur = 90
	}
	end := li.LastRenewalTimestamp + dur*1000
	return leaseFacts{
		registered: li.RegistrationTimestamp,
		renewed:    li.LastRenewalTimestamp > li.RegistrationTimestamp && now < end,
		expiresIn:  max(end-now, 0),
	}
}

func (h *handler) root(w http.ResponseWriter, r *http.Request) {
	root, _ := h.reg.Digest()
	writeJSON(w, r, rootDigest{Root: formatHash(root), Count: h.reg.Stats().Instances})
}

func (h *handler) apps(w http.ResponseWriter, r *http.Request) {
	_, apps := h.reg.Digest()
	out := appsDigest{Apps: make(map[string]string, len(apps))}
	for name, sum := range apps {
		out.Apps[name] = formatHash(sum)
	}
	writeJSON(w, r, out)
}

func (h *handler) app(w http.ResponseWriter, r *http.Request) {
	name := strings.ToUpper(r.PathValue("app"))
	digests := h.reg.AppDigest(name)
	facts := make(map[string]leaseFacts, len(digests))
	if a := h.reg.Application(name); a != nil {
		now := h.clock.Now().UnixMilli()
		for _, inst := range a.Instances {
			facts[inst.ID()] = factsOf(inst.LeaseInfo, now)
		}
	}
	out := appDigest{App: name, Instances: make([]instanceDigest, 0, len(digests))}
	for _, d := range digests {
		e := instanceDigest{ID: d.ID, Deleted: d.Deleted}
		if d.Deleted {
			// The cancelled copy's lastDirtyTimestamp: a copy not newer than it is that copy,
			// whenever it was registered.
			e.DeletedAt, e.LastDirtyTimestamp = d.DeletedAt, d.LastDirtyTimestamp
		} else {
			e.LastDirtyTimestamp = d.LastDirtyTimestamp
			e.Status = string(d.Status)
			e.OverriddenStatus = string(d.OverriddenStatus)
			e.Hash = formatHash(d.Hash)
			e.StatusVersion = d.StatusVersion
			f := facts[d.ID]
			e.Registered, e.Renewed, e.ExpiresIn = f.registered, f.renewed, f.expiresIn
		}
		out.Instances = append(out.Instances, e)
	}
	writeJSON(w, r, out)
}

func (h *handler) instances(w http.ResponseWriter, r *http.Request) {
	name := strings.ToUpper(r.PathValue("app"))
	doc := &registry.Applications{VersionsDelta: "1"}
	if a := h.reg.Application(name); a != nil {
		if ids := r.URL.Query()["id"]; len(ids) > 0 {
			want := make(map[string]bool, len(ids))
			for _, id := range ids {
				want[id] = true
			}
			kept := a.Instances[:0]
			for _, inst := range a.Instances {
				if want[inst.ID()] {
					kept = append(kept, inst)
				}
			}
			a.Instances = kept
		}
		if len(a.Instances) > 0 {
			doc.Applications = []*registry.Application{a}
		}
	}
	writeBody(w, r, "application/json", codec.AppendApplications(nil, codec.JSON, doc, codec.Options{Peer: true}))
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, "application/json", body)
}

func writeBody(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	if len(body) >= gzipMin && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		if zw.Close() == nil {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Vary", "Accept-Encoding")
			body = buf.Bytes()
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
