package eureka

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// ValidationError is a registration Eureka refuses with 400 and a plain-text message.
type ValidationError struct {
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// ValidateRegistration checks a decoded registration as Eureka's addInstance does, in Eureka's
// order and with its messages, against the application name of the request path (upper-cased as
// Eureka does). Like Eureka it then back-fills an Amazon dataCenterInfo without an instance-id with
// the instance's id, which is why it takes a pointer. The batch receiver uses it too.
func ValidateRegistration(pathApp string, inst *registry.Instance) error {
	pathApp = strings.ToUpper(pathApp)
	switch {
	case blank(inst.ID()):
		return &ValidationError{"Missing instanceId"}
	case blank(inst.HostName):
		return &ValidationError{"Missing hostname"}
	case blank(inst.IPAddr):
		return &ValidationError{"Missing ip address"}
	case blank(inst.App):
		return &ValidationError{"Missing appName"}
	case pathApp != strings.ToUpper(inst.App):
		return &ValidationError{fmt.Sprintf("Mismatched appName, expecting %s but was %s", pathApp, inst.App)}
	case !inst.HasDataCenterInfo:
		return &ValidationError{"Missing dataCenterInfo"}
	case inst.DataCenterInfo.Name == "":
		return &ValidationError{"Missing dataCenterInfo Name"}
	}
	inst.App = pathApp
	if isAmazon(inst.DataCenterInfo) && inst.DataCenterInfo.Metadata["instance-id"] == "" {
		if inst.DataCenterInfo.Metadata == nil {
			inst.DataCenterInfo.Metadata = make(map[string]string, 1)
		}
		inst.DataCenterInfo.Metadata["instance-id"] = inst.ID()
	}
	return nil
}

func isAmazon(d registry.DataCenterInfo) bool {
	return strings.EqualFold(d.Name, "Amazon") || d.Class == "com.netflix.appinfo.AmazonInfo"
}

// blank is Java's StringUtils.isBlank.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// register is POST /apps/{app} (reference 1.4.1).
func (h *Handler) register(w http.ResponseWriter, r *http.Request, app string) {
	f, latin1, ok := requestFormat(r.Header.Get("Content-Type"))
	if !ok {
		plainText(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q: use application/json or application/xml", r.Header.Get("Content-Type")))
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	body, err := h.readBody(r, buf)
	if err != nil {
		h.bodyFailed(w, err)
		return
	}
	if latin1 {
		body = latin1ToUTF8(body)
	}
	if err := checkUTF8(body); err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	inst, err := codec.DecodeInstance(body, f)
	if err != nil || inst == nil {
		parseError(w, f)
		return
	}
	if inst.LastDirtyTimestamp == 0 {
		// Eureka's parser stamps a registration without lastDirtyTimestamp with the server clock.
		inst.LastDirtyTimestamp = h.clock.Now().UnixMilli()
	}
	if err := ValidateRegistration(app, inst); err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := registry.ValidateInstance(inst); err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.tooFarAhead(inst.LastDirtyTimestamp); err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	o := h.origin(r)
	if o == registry.FromClient && h.accept != nil {
		if err := h.accept(r.Context(), inst); err != nil {
			plainText(w, refusalStatus(err), err.Error())
			return
		}
	}
	if err := h.reg.Register(r.Context(), inst, o); err != nil {
		if errors.Is(err, registry.ErrInvalid) {
			plainText(w, http.StatusBadRequest, err.Error())
			return
		}
		h.log.Error("register failed", "app", app, "id", inst.ID(), "error", err)
		plainText(w, http.StatusInternalServerError, "register failed")
		return
	}
	// 204, not 200: the Java client treats only 204 as a successful registration.
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) bodyFailed(w http.ResponseWriter, err error) {
	var be *bodyError
	if errors.As(err, &be) {
		plainText(w, be.code, be.msg)
		return
	}
	plainText(w, http.StatusBadRequest, err.Error())
}

// parseLastDirty reads the lastDirtyTimestamp query parameter. Eureka answers a non-numeric value
// with an unhandled 500 after it has already applied the write; herald refuses it with 400 before
// touching the registry, which no client can depend on being different.
func parseLastDirty(v string) (ts int64, present bool, err error) {
	if v == "" {
		return 0, false, nil
	}
	ts, err = strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("invalid lastDirtyTimestamp %q: must be epoch milliseconds", v)
	}
	return ts, true, nil
}

// heartbeat is PUT /apps/{app}/{id} (reference 1.4.2). The status parameter is read by nobody in
// Eureka either.
func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request, app, id string) {
	q := r.URL.Query()
	ts, hasTS, err := parseLastDirty(q.Get("lastDirtyTimestamp"))
	if err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	o := h.origin(r)
	ovr, ovrValid := registry.StatusUnknown, true
	if v := q.Get("overriddenstatus"); v != "" {
		ovr, ovrValid = registry.ParseStatus(v)
	}
	res := h.reg.Heartbeat(r.Context(), app, id, registry.HeartbeatRequest{
		LastDirtyTimestamp: ts,
		HasLastDirty:       hasTS,
		OverriddenStatus:   ovr,
		Origin:             o,
	})
	switch res.Code {
	case http.StatusOK:
		w.WriteHeader(http.StatusOK)
	case http.StatusNotFound:
		if !ovrValid && o == registry.FromPeer {
			// Eureka fails here when it tries to store the invalid override; keep its 500.
			plainText(w, http.StatusInternalServerError, fmt.Sprintf("invalid overriddenstatus %q", q.Get("overriddenstatus")))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	case http.StatusConflict:
		h.writeInstance(w, r, http.StatusConflict, res.Instance, false)
	default:
		h.log.Error("unexpected heartbeat result", "app", app, "id", id, "code", res.Code)
		plainText(w, http.StatusInternalServerError, "unexpected heartbeat result")
	}
}

// cancel is DELETE /apps/{app}/{id} (reference 1.4.3).
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, app, id string) {
	if !h.reg.Cancel(r.Context(), app, id, h.origin(r)) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// statusParams reads value and lastDirtyTimestamp of the status endpoints. Eureka looks the
// instance up first (404), then parses value (500 on a missing or invalid value, kept for
// compatibility); herald adds a message and answers a non-numeric lastDirtyTimestamp with 400.
func (h *Handler) statusParams(w http.ResponseWriter, r *http.Request, app, id string, valueRequired bool) (registry.Status, int64, bool) {
	if _, ok := h.reg.Instance(app, id); !ok {
		w.WriteHeader(http.StatusNotFound)
		return "", 0, false
	}
	q := r.URL.Query()
	s := registry.StatusUnknown
	if v, present := q["value"]; present || valueRequired {
		var ok bool
		var raw string
		if len(v) > 0 {
			raw = v[0]
		}
		if s, ok = registry.ParseStatus(raw); !ok {
			plainText(w, http.StatusInternalServerError, fmt.Sprintf(
				"invalid status value %q: must be one of UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN", raw))
			return "", 0, false
		}
	}
	ts, _, err := parseLastDirty(q.Get("lastDirtyTimestamp"))
	if err == nil {
		err = h.tooFarAhead(ts)
	}
	if err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return "", 0, false
	}
	return s, ts, true
}

// admit runs the Accept action handlers on a client's status change or override removal.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, a sdk.Action, app, id string, s registry.Status, ts int64) bool {
	if h.acceptI == nil || h.origin(r) != registry.FromClient {
		return true
	}
	if err := h.acceptI(r.Context(), sdk.Item{Action: a, App: app, ID: id, Status: string(s), LastDirtyTimestamp: ts}); err != nil {
		plainText(w, refusalStatus(err), err.Error())
		return false
	}
	return true
}

// statusUpdate is PUT /apps/{app}/{id}/status?value= (reference 1.4.4).
func (h *Handler) statusUpdate(w http.ResponseWriter, r *http.Request, app, id string) {
	s, ts, ok := h.statusParams(w, r, app, id, true)
	if !ok || !h.admit(w, r, sdk.ActionStatusUpdate, app, id, s, ts) {
		return
	}
	if !h.reg.UpdateStatus(r.Context(), app, id, s, ts, 0, h.origin(r)) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// deleteOverride is DELETE /apps/{app}/{id}/status[?value=] (reference 1.4.5).
func (h *Handler) deleteOverride(w http.ResponseWriter, r *http.Request, app, id string) {
	s, ts, ok := h.statusParams(w, r, app, id, false)
	if !ok || !h.admit(w, r, sdk.ActionDeleteStatusOverride, app, id, s, ts) {
		return
	}
	if !h.reg.DeleteStatusOverride(r.Context(), app, id, s, ts, 0, h.origin(r)) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// metadata is PUT /apps/{app}/{id}/metadata?k=v (reference 1.4.6). Eureka ignores the replication
// marker here: the change is always re-registered as a client write and so replicated as a
// Register, which is how metadata reaches peers.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request, app, id string) {
	q := r.URL.Query()
	kv := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) > 0 {
			kv[k] = v[0]
		}
	}
	if err := h.checkMetadataUpdate(app, id, kv); err != nil {
		plainText(w, http.StatusBadRequest, err.Error())
		return
	}
	if h.accept != nil {
		// The change replicates as a Register of the whole instance, so admission sees the
		// instance as it will be (a handler's changes to it are not kept here).
		cur, ok := h.reg.Instance(app, id)
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		next := cur.Clone()
		md := make(map[string]string, len(next.Metadata)+len(kv))
		for k, v := range next.Metadata {
			md[k] = v
		}
		for k, v := range kv {
			md[k] = v
		}
		next.Metadata = md
		if err := h.accept(r.Context(), next); err != nil {
			plainText(w, refusalStatus(err), err.Error())
			return
		}
	}
	if !h.reg.UpdateMetadata(r.Context(), app, id, kv, registry.FromClient) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}
