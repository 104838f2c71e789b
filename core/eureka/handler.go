// Package eureka serves Eureka's REST API over a herald registry: the client endpoints (register,
// heartbeat, cancel, status overrides, metadata, the cached reads), the peer replication batch
// endpoint, the status summary and a small HTML dashboard.
//
// The API is served under /eureka/v2/ (the Netflix war layout) and /eureka/ (Spring Cloud's), with
// V2 semantics; /eureka/v1/ renders XML statuses as Eureka's V1 does. Status codes and error bodies
// are Eureka's, byte for byte where clients look at them, because Eureka clients branch on them
// (204 is the only register success a Java client accepts, 404 on a heartbeat means "re-register").
package eureka

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is zero. A full batch of
// 250 replicated registrations is well under 1 MiB; the margin is for large metadata maps.
const DefaultMaxBodyBytes = 4 << 20

// ReplicationHeader marks a single-item request as peer replication when its value is exactly
// "true" (Eureka compares case-sensitively).
const ReplicationHeader = "x-netflix-discovery-replication"

// replicationHeaderKey is ReplicationHeader in canonical form, so the hot path indexes the header
// map without canonicalizing on every request.
var replicationHeaderKey = http.CanonicalHeaderKey(ReplicationHeader)

// BatchReceiver applies the items of a POST /peerreplication/batch, in order, and returns one
// result per item. An error fails the whole batch with 503, which a sender retries (an action
// handler that is restarting, for instance).
type BatchReceiver interface {
	ApplyBatch(ctx context.Context, items []sdk.Item) ([]sdk.ItemResult, error)
}

// PeerStatus describes one peer for the status page and the dashboard.
type PeerStatus struct {
	// Name is the peer's name, URL its Eureka base URL.
	Name string
	URL  string
	// Up is true when the peer is reachable and answering.
	Up bool
	// Detail is a short free-form note (last error, queue depth, ...).
	Detail string
	// NodeName is the name the peer gives itself, "" while unknown.
	NodeName string
	// Health is the peer's readiness as last seen ("ready", "not ready: ...", "unreachable"),
	// "" while unknown.
	Health string
	// Queue is the number of replication tasks waiting for the peer (queued and in flight).
	Queue int64
	// Dropped counts replication tasks given up on (expired, overflowed or refused).
	Dropped int64
	// SendP99 is the 99th percentile of the batch send latency, 0 before the first send.
	SendP99 time.Duration
	// LastError is the last failure talking to the peer, "" when none.
	LastError string
}

// Options configures a Handler. Only Registry is required.
type Options struct {
	// Registry is the registry the API reads and writes.
	Registry *registry.Registry
	// Logger receives request failures and recovered panics. Nil: no logging.
	Logger hclog.Logger
	// MaxBodyBytes bounds request bodies, after gzip inflation too; larger bodies get 413.
	// Zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Cache configures the response cache of the read endpoints.
	Cache CacheConfig
	// ReadGate reports whether the gated reads (/apps, /apps/delta, /apps/{app}, /vips, /svips)
	// are allowed; when it returns false they answer 403, as Eureka does while a node that synced
	// nothing at startup waits for clients to register (reference 2.6). Nil: always allowed.
	ReadGate func() bool
	// Batch applies POST /peerreplication/batch. Nil: that endpoint answers 501.
	Batch BatchReceiver
	// Accept, when set, is run on every client (non-replicated) registration after validation and
	// before the registry applies it; an error refuses the registration. The answer is 400 with the
	// error text, or the status of an error that has a StatusCode() int method returning 4xx or 5xx.
	Accept func(ctx context.Context, inst *registry.Instance) error
	// Clock gives the time for registrations without lastDirtyTimestamp and for cache expiry.
	// Nil: the system clock.
	Clock registry.Clock
	// Peers, when set, lists the node's peers for the status page and the dashboard.
	Peers func() []PeerStatus
	// IsPeer reports whether a request comes from an authenticated peer. Only such a request may
	// post a replication batch, and only on such a request does the replication header make a
	// write a peer's (applied, never replicated, not admitted); from anyone else the header is
	// ignored and the write is a client's. Nil: no caller is a peer.
	IsPeer func(*http.Request) bool
	// AcceptItem, when set, runs the Accept action handlers on a client's status change or
	// removal of an override before it is applied; an error refuses it as Accept does.
	AcceptItem func(ctx context.Context, it sdk.Item) error
	// MaxClockSkew refuses a lastDirtyTimestamp further than this in the future, from clients
	// (400) and peers. Zero: no bound.
	MaxClockSkew time.Duration
	// Warnings are shown at the top of the dashboard (an insecure configuration, say).
	Warnings []string
	// Dashboard configures the HTML dashboard (node name, version, links, health).
	Dashboard DashboardOptions
}

// Handler serves the Eureka REST API. It is an http.Handler; create it with NewHandler and run
// Start so the response cache is refreshed and swept.
type Handler struct {
	reg      *registry.Registry
	log      hclog.Logger
	clock    registry.Clock
	maxBody  int64
	gate     func() bool
	batch    BatchReceiver
	accept   func(ctx context.Context, inst *registry.Instance) error
	acceptI  func(ctx context.Context, it sdk.Item) error
	isPeer   func(*http.Request) bool
	skew     time.Duration
	peers    func() []PeerStatus
	warnings []string
	dashOpts DashboardOptions
	cache    *responseCache
	started  time.Time
	dash     *template.Template

	mu      sync.Mutex
	stopBg  context.CancelFunc
	bgDone  chan struct{}
	running bool
}

// NewHandler returns a Handler over opts.Registry and subscribes its response cache to the
// registry's changes.
func NewHandler(opts Options) *Handler {
	if opts.Registry == nil {
		panic("eureka: Options.Registry is nil")
	}
	h := &Handler{
		reg:      opts.Registry,
		log:      opts.Logger,
		clock:    opts.Clock,
		maxBody:  opts.MaxBodyBytes,
		gate:     opts.ReadGate,
		batch:    opts.Batch,
		accept:   opts.Accept,
		acceptI:  opts.AcceptItem,
		isPeer:   opts.IsPeer,
		skew:     opts.MaxClockSkew,
		warnings: opts.Warnings,
		peers:    opts.Peers,
		dashOpts: opts.Dashboard.withDefaults(),
	}
	if h.log == nil {
		h.log = hclog.NewNullLogger()
	}
	if h.clock == nil {
		h.clock = registry.SystemClock{}
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.started = h.clock.Now()
	h.cache = newResponseCache(opts.Registry, opts.Cache.withDefaults(), h.clock, h.log)
	h.dash = template.Must(template.New("dashboard").Funcs(dashboardFuncs).Parse(dashboardTemplate))
	opts.Registry.OnChange(h.cache.invalidate)
	return h
}

// Start runs the response cache's timer until ctx ends or Stop is called: the read-only level's
// refresh, or without it the sweep of expired documents. It does nothing when already running.
func (h *Handler) Start(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	h.stopBg, h.bgDone, h.running = cancel, make(chan struct{}), true
	go func() {
		defer close(h.bgDone)
		h.cache.run(ctx)
	}()
}

// Stop stops the timer started by Start and waits for it to return.
func (h *Handler) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return
	}
	h.stopBg()
	<-h.bgDone
	h.running = false
}

// ServeHTTP routes a request. A panic in any handler is recovered, logged and answered with 500:
// no input may take the node down.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer h.recoverPanic(w, r)

	p, segs, ok := splitPath(r.URL)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case p == "/":
		h.route(w, r, routeDashboard, nil, false)
		return
	case strings.HasPrefix(p, "/eureka/v2/"):
		h.routeAPI(w, r, segs[2:], false)
	case strings.HasPrefix(p, "/eureka/v1/"):
		h.routeAPI(w, r, segs[2:], true)
	case strings.HasPrefix(p, "/eureka/"):
		h.routeAPI(w, r, segs[1:], false)
	case len(segs) == 2 && segs[0] == "serverinfo" && segs[1] == "statusoverrides":
		// Eureka serves this one resource without a version segment.
		h.route(w, r, routeOverrides, nil, false)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	h.log.Error("panic while serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
	// If the handler already wrote its header this is ignored by net/http (and logged there); the
	// connection still ends cleanly.
	plainText(w, http.StatusInternalServerError, "internal server error")
}

// splitPath returns the cleaned path (without one trailing slash) and its decoded segments. An
// escaped slash inside an instance id stays inside its segment.
func splitPath(u *url.URL) (string, []string, bool) {
	p := u.Path
	raw := u.RawPath
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
		raw = strings.TrimSuffix(raw, "/")
	}
	if p == "/" || p == "" {
		return "/", nil, true
	}
	if raw == "" {
		return p + "/", strings.Split(p[1:], "/"), true
	}
	segs := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", nil, false
		}
		segs[i] = d
	}
	return p + "/", segs, true
}

type routeKind int

const (
	routeNone routeKind = iota
	routeApps
	routeDelta
	routeApp
	routeRegister
	routeInstance
	routeHeartbeat
	routeCancel
	routeStatusUpdate
	routeDeleteOverride
	routeMetadata
	routeInstanceByID
	routeVIP
	routeSVIP
	routeBatch
	routeStatus
	routeOverrides
	routeDashboard
)

// routeAPI dispatches the path below the version segment: apps/..., instances/{id}, vips/{vip},
// svips/{svip}, peerreplication/batch, status, serverinfo/statusoverrides.
func (h *Handler) routeAPI(w http.ResponseWriter, r *http.Request, segs []string, v1 bool) {
	for _, s := range segs {
		if s == "" {
			http.NotFound(w, r)
			return
		}
	}
	get, post, put, del := isGet(r), r.Method == http.MethodPost, r.Method == http.MethodPut, r.Method == http.MethodDelete
	var k routeKind
	allow := "GET, HEAD"
	switch {
	case len(segs) == 1 && segs[0] == "apps":
		k = pick(get, routeApps)
	case len(segs) == 2 && segs[0] == "apps":
		allow = "GET, HEAD, POST"
		switch {
		case get && segs[1] == "delta":
			k = routeDelta
		case get:
			k = routeApp
		case post:
			k = routeRegister
		}
	case len(segs) == 3 && segs[0] == "apps":
		allow = "GET, HEAD, PUT, DELETE"
		switch {
		case get:
			k = routeInstance
		case put:
			k = routeHeartbeat
		case del:
			k = routeCancel
		}
	case len(segs) == 4 && segs[0] == "apps" && segs[3] == "status":
		allow = "PUT, DELETE"
		switch {
		case put:
			k = routeStatusUpdate
		case del:
			k = routeDeleteOverride
		}
	case len(segs) == 4 && segs[0] == "apps" && segs[3] == "metadata":
		allow = "PUT"
		k = pick(put, routeMetadata)
	case len(segs) == 2 && segs[0] == "instances":
		k = pick(get, routeInstanceByID)
	case len(segs) == 2 && segs[0] == "vips":
		k = pick(get, routeVIP)
	case len(segs) == 2 && segs[0] == "svips":
		k = pick(get, routeSVIP)
	case len(segs) == 2 && segs[0] == "peerreplication" && segs[1] == "batch":
		allow = "POST"
		k = pick(post, routeBatch)
	case len(segs) == 1 && segs[0] == "status":
		k = pick(get, routeStatus)
	case len(segs) == 2 && segs[0] == "serverinfo" && segs[1] == "statusoverrides":
		k = pick(get, routeOverrides)
	default:
		http.NotFound(w, r)
		return
	}
	if k == routeNone {
		w.Header().Set("Allow", allow)
		plainText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
		return
	}
	h.route(w, r, k, segs, v1)
}

func pick(ok bool, k routeKind) routeKind {
	if ok {
		return k
	}
	return routeNone
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

func (h *Handler) route(w http.ResponseWriter, r *http.Request, k routeKind, segs []string, v1 bool) {
	// Eureka upper-cases the application name of every path (default locale); ids stay as sent.
	var app, id string
	if len(segs) >= 2 && segs[0] == "apps" {
		app = strings.ToUpper(segs[1])
	}
	if len(segs) >= 3 {
		id = segs[2]
	}
	switch k {
	case routeApps:
		h.serveCached(w, r, cacheKey{kind: kindApps, name: allApps}, v1)
	case routeDelta:
		h.serveCached(w, r, cacheKey{kind: kindDelta, name: allAppsDelta}, v1)
	case routeApp:
		h.serveCached(w, r, cacheKey{kind: kindApp, name: app}, v1)
	case routeVIP:
		h.serveCached(w, r, cacheKey{kind: kindVIP, name: segs[1]}, v1)
	case routeSVIP:
		h.serveCached(w, r, cacheKey{kind: kindSVIP, name: segs[1]}, v1)
	case routeRegister:
		h.register(w, r, app)
	case routeInstance:
		h.getInstance(w, r, app, id, v1)
	case routeHeartbeat:
		h.heartbeat(w, r, app, id)
	case routeCancel:
		h.cancel(w, r, app, id)
	case routeStatusUpdate:
		h.statusUpdate(w, r, app, id)
	case routeDeleteOverride:
		h.deleteOverride(w, r, app, id)
	case routeMetadata:
		h.metadata(w, r, app, id)
	case routeInstanceByID:
		h.getInstanceByID(w, r, segs[1], v1)
	case routeBatch:
		h.serveBatch(w, r)
	case routeStatus:
		h.serveStatus(w, r)
	case routeOverrides:
		h.serveOverrides(w, r)
	case routeDashboard:
		if !isGet(r) {
			w.Header().Set("Allow", "GET, HEAD")
			plainText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
			return
		}
		h.serveDashboard(w, r)
	}
}

// origin maps the replication marker to the registry's origin: only the exact value "true"
// counts, and only from an authenticated peer. Anyone else's marked write is a client's: admitted
// and replicated like any other (Eureka clients never send the header).
func (h *Handler) origin(r *http.Request) registry.Origin {
	if v := r.Header[replicationHeaderKey]; len(v) > 0 && v[0] == "true" && h.peer(r) {
		return registry.FromPeer
	}
	return registry.FromClient
}

// peer reports whether r comes from an authenticated peer.
func (h *Handler) peer(r *http.Request) bool { return h.isPeer != nil && h.isPeer(r) }

// tooFarAhead returns an error when ts lies further in the future than the allowed clock skew.
func (h *Handler) tooFarAhead(ts int64) error {
	return stampAhead("lastDirtyTimestamp", ts, h.skew, h.clock.Now())
}

// stampAhead refuses a timestamp (epoch ms) named field more than skew ahead of now; skew <= 0
// checks nothing.
func stampAhead(field string, ts int64, skew time.Duration, now time.Time) error {
	if skew <= 0 || ts <= 0 {
		return nil
	}
	if limit := now.Add(skew).UnixMilli(); ts > limit {
		return fmt.Errorf("%s %d is more than %s ahead of this node's clock", field, ts, skew)
	}
	return nil
}

// readsAllowed reports whether the gated reads may be served now.
func (h *Handler) readsAllowed() bool { return h.gate == nil || h.gate() }

// statusCoder is implemented by errors that choose their HTTP status (Options.Accept refusals).
type statusCoder interface{ StatusCode() int }

func refusalStatus(err error) int {
	var sc statusCoder
	if errors.As(err, &sc) {
		if c := sc.StatusCode(); c >= 400 && c < 600 {
			return c
		}
	}
	return http.StatusBadRequest
}
