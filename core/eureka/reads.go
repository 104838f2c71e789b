package eureka

import (
	"net/http"
	"strconv"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// serveCached answers the cached reads (/apps, /apps/delta, /apps/{app}, /vips, /svips) from the
// response cache, pre-gzipped when the client accepts gzip (reference 1.3, 4.10).
func (h *Handler) serveCached(w http.ResponseWriter, r *http.Request, k cacheKey, v1 bool) {
	if !h.readsAllowed() {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	k.format = cachedFormat(r)
	k.compact = compactRequested(r)
	// V1 only changes XML, so JSON requests share the V2 entries.
	k.v1 = v1 && k.format == codec.XML
	p := h.cache.get(k)
	if p.absent {
		if k.kind == kindDelta {
			// The registry has deltas disabled (Eureka's disableDelta): 403.
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType(k.format))
	hd.Add("Vary", "Accept, Accept-Encoding, X-Eureka-Accept")
	body := p.plain
	if acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body = p.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// getInstance is GET /apps/{app}/{id}: not cached and not gated (reference 1.4.10).
func (h *Handler) getInstance(w http.ResponseWriter, r *http.Request, app, id string, v1 bool) {
	inst, ok := h.reg.Instance(app, id)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h.writeInstance(w, r, http.StatusOK, inst, v1)
}

// getInstanceByID is GET /instances/{id} (reference 1.4.11).
func (h *Handler) getInstanceByID(w http.ResponseWriter, r *http.Request, id string, v1 bool) {
	inst, ok := h.reg.InstanceByID(id)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h.writeInstance(w, r, http.StatusOK, inst, v1)
}

// writeInstance writes one wrapped instance with standard negotiation (XML by default).
func (h *Handler) writeInstance(w http.ResponseWriter, r *http.Request, code int, inst *registry.Instance, v1 bool) {
	f, ok := negotiate(r)
	if !ok {
		plainText(w, http.StatusNotAcceptable, "acceptable types: application/xml, application/json")
		return
	}
	if v1 && f == codec.XML {
		inst = v1Instance(inst)
	}
	buf := getBuf()
	defer putBuf(buf)
	b := codec.AppendInstance(buf.AvailableBuffer(), f, inst, codec.Options{})
	writeEncoded(w, r, code, contentType(f), b)
}

// v1Instance renders a status as Eureka's V1 XML does: only UP, DOWN and STARTING pass, the rest
// (OUT_OF_SERVICE, UNKNOWN) read DOWN. It copies rather than touching the registry's value.
func v1Instance(inst *registry.Instance) *registry.Instance {
	switch inst.Status {
	case registry.StatusUp, registry.StatusDown, registry.StatusStarting:
		return inst
	}
	c := *inst
	c.Status = registry.StatusDown
	return &c
}

// v1Applications applies v1Instance to every instance of a document, copying what changes.
func v1Applications(apps *registry.Applications) *registry.Applications {
	out := *apps
	out.Applications = make([]*registry.Application, len(apps.Applications))
	for i, a := range apps.Applications {
		ca := *a
		ca.Instances = make([]*registry.Instance, len(a.Instances))
		for j, inst := range a.Instances {
			ca.Instances[j] = v1Instance(inst)
		}
		out.Applications[i] = &ca
	}
	return &out
}
