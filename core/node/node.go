// Package node wires one herald node together: the registry, the Eureka API, the replication
// pipeline with its plugins, the cluster (peers, startup sync, anti-entropy), telemetry and the
// HTTP server. It owns their start and their graceful stop.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/actions"
	"github.com/heraldhq/herald/core/clientauth"
	"github.com/heraldhq/herald/core/cluster"
	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/core/replication/receive"
	"github.com/heraldhq/herald/core/telemetry"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Config is everything one node needs, already validated. cmd/herald builds it from the HCL file.
type Config struct {
	// Name identifies the node in logs, traces and metrics.
	Name string
	// Addr is the listen address, host:port ("127.0.0.1:0" picks a free port).
	Addr string
	// AdvertiseURL is the node's own Eureka base URL as peers know it; derived from Addr when empty.
	AdvertiseURL string

	MaxBodyBytes int64
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// ShutdownTimeout bounds a graceful stop after ShutdownDelay: in-flight requests finish and
	// the replication queues drain to the peers; what is left unsent then is logged per peer.
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long a stopping node keeps serving with readiness withdrawn (503 at
	// /health/ready), so that load balancers stop sending it traffic before it closes its port.
	ShutdownDelay time.Duration

	Registry  registry.Config
	Cache     eureka.CacheConfig
	Cluster   cluster.Config
	Telemetry telemetry.Config
	// MetricsPath is where Prometheus metrics are served ("" = off).
	MetricsPath string
	// Profiling serves Go's runtime profiles (net/http/pprof) at ProfilingPath. Under client_auth
	// they need the admin role, like every path outside the Eureka API.
	Profiling bool
	// Trust is the node's TLS and peer authentication.
	Trust Trust
	// MaxClockSkew bounds how far in the future a client's or peer's lastDirtyTimestamp may be
	// (0: unbounded).
	MaxClockSkew time.Duration
	// Warnings are shown on the dashboard (an insecure configuration, say).
	Warnings []string
	// Version is the build's version, shown on the dashboard.
	Version string
	// TraceURL, when set, is linked from the dashboard as the trace UI.
	TraceURL string
}

// Trust is how a node proves itself to peers and tells peers from clients.
type Trust struct {
	// TLS, when set, serves the whole HTTP surface over TLS and dials peers with it.
	TLS *peerauth.TLS
	// RequireClientCert makes every caller present a certificate from the cluster CA.
	RequireClientCert bool
	// Auth decides which callers are peers: only they may post batches, send the replication
	// header with effect, or read digests and pulls. Nil: no caller is a peer.
	Auth *peerauth.Authenticator
	// Signer signs the node's own calls to peers (startup sync, anti-entropy) with the cluster
	// secret. Nil: they are not signed.
	Signer *peerauth.Signer
	// Clients, when set, authenticates and authorises client requests (peers pass).
	Clients *clientauth.Authorizer
}

// PeerClient returns an HTTP client for calls to peers: TLS with the node's certificate when the
// node has one, signed when it has a cluster secret.
func (t Trust) PeerClient(base *http.Transport) *http.Client {
	if t.TLS != nil {
		base.TLSClientConfig = t.TLS.ClientConfig()
	}
	var rt http.RoundTripper = base
	if t.Signer != nil {
		rt = &peerauth.SigningTransport{Signer: t.Signer, Base: base}
	}
	return &http.Client{Transport: rt}
}

// Replicator is the replication pipeline as the node sees it.
type Replicator interface {
	cluster.PeerSetter
	// Listener is subscribed to the registry's writes.
	Listener() registry.Listener
	// Close flushes what it can within ctx and stops.
	Close(ctx context.Context) error
	// Stats describes each peer's pipeline, for metrics and the status page.
	Stats() []replication.PeerStats
}

// Deps are the parts built outside the node: the replication pipeline (with its transports and
// flush policies from the plugin catalog), and an optional receiver wrapper (action handlers).
type Deps struct {
	Logger hclog.Logger
	// NewReplicator builds the pipeline once the registry and telemetry exist.
	NewReplicator func(reg *registry.Registry, tel *telemetry.Provider) (Replicator, error)
	// ActionHandlers run, in order, on client registrations (Accept) and on inbound batches
	// (validate, apply, observe). Actions no handler applies get the registry's built-in apply.
	ActionHandlers []actions.Handler
	// Host, when set, is bound to this node once it exists: it is the host service the plugins
	// were given at their start.
	Host *actions.Host
	// Tracing, when set, is bound to this node's tracer provider once it exists: plugin clients
	// created earlier trace their calls with it.
	Tracing *telemetry.Late
	// OnStop runs after the node stopped serving (plugin shutdown).
	OnStop func()
	// Collectors are extra Prometheus collectors served at the metrics path.
	Collectors []MetricsCollector
	// ReadyChecks, when set, adds conditions to readiness (/health/ready): cmd/herald reports
	// each plugin process there.
	ReadyChecks func() []Check
	// PeerNames, when set, is the book of the peers' node names the node's own peer calls learn
	// into, shared with what cmd/herald wires (the in-process http transport, the tracing
	// observer). Nil: the node keeps one of its own.
	PeerNames *cluster.PeerNames
}

// Node is one running herald node.
type Node struct {
	cfg  Config
	log  hclog.Logger
	deps Deps

	tel      *telemetry.Provider
	reg      *registry.Registry
	api      *eureka.Handler
	repl     Replicator
	cluster  *cluster.Cluster
	receiver *actions.Chain
	srv      *http.Server
	ln       net.Listener
	url      string

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	stopping atomic.Bool // readiness withdrawn: Stop has begun
	probe    peerProbe   // the peers' names and readiness, for the dashboard
	names    *cluster.PeerNames
}

// New builds a node; nothing runs until Start.
func New(ctx context.Context, cfg Config, deps Deps) (*Node, error) {
	if deps.Logger == nil {
		deps.Logger = hclog.NewNullLogger()
	}
	n := &Node{cfg: cfg, log: deps.Logger, deps: deps, names: deps.PeerNames}
	if n.names == nil {
		n.names = cluster.NewPeerNames(deps.Logger.Named("peers"))
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("node %s: listen on %s: %w", cfg.Name, cfg.Addr, err)
	}
	n.ln = ln
	n.url = cfg.AdvertiseURL
	if n.url == "" {
		scheme := "http://"
		if cfg.Trust.TLS != nil {
			scheme = "https://"
		}
		n.url = scheme + ln.Addr().String() + "/eureka/"
	}
	ok := false
	defer func() {
		if !ok {
			ln.Close()
		}
	}()

	tcfg := cfg.Telemetry
	if tcfg.InstanceID == "" {
		tcfg.InstanceID = cfg.Name
	}
	if n.tel, err = telemetry.Setup(ctx, tcfg); err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.Name, err)
	}

	if deps.Tracing != nil {
		deps.Tracing.Bind(n.tel.TracerProvider())
	}
	n.reg = registry.New(cfg.Registry, registry.WithLogger(n.log.Named("registry")))
	if deps.NewReplicator != nil {
		if n.repl, err = deps.NewReplicator(n.reg, n.tel); err != nil {
			return nil, fmt.Errorf("node %s: replication: %w", cfg.Name, err)
		}
		n.reg.Subscribe(n.repl.Listener())
	}

	ccfg := cfg.Cluster
	if ccfg.SelfURL == "" {
		ccfg.SelfURL = n.url
	}
	if ccfg.ListenAddr == "" {
		ccfg.ListenAddr = ln.Addr().String()
	}
	var setter cluster.PeerSetter
	if n.repl != nil {
		setter = n.repl
	}
	if n.cluster, err = cluster.New(ccfg, n.reg, setter, cluster.WithLogger(n.log.Named("cluster")),
		cluster.WithHTTPClient(n.peerClient(cluster.DefaultTransport())),
		cluster.WithInstanceValidator(n.validatePeerInstances)); err != nil {
		return nil, fmt.Errorf("node %s: cluster: %w", cfg.Name, err)
	}

	builtin := receive.New(n.reg, receive.WithLogger(n.log.Named("receive")),
		receive.WithTracer(n.tel.Tracer("receive")))
	if n.receiver, err = actions.New(deps.ActionHandlers, builtin, actions.WithLogger(n.log.Named("actions")),
		actions.WithTracer(n.tel.Tracer("actions"))); err != nil {
		return nil, fmt.Errorf("node %s: action handlers: %w", cfg.Name, err)
	}
	if deps.Host != nil {
		t := actions.Target{Registry: n.reg, Builtin: builtin, Chain: n.receiver, MaxClockSkew: cfg.MaxClockSkew,
			Logger: n.log.Named("receive")}
		if r, ok := n.repl.(interface {
			Replicate(context.Context, []sdk.Item) error
		}); ok {
			t.Replicate = r.Replicate
		}
		deps.Host.Bind(t)
	}
	var accept func(context.Context, *registry.Instance) error
	if n.receiver.Accepts(sdk.ActionRegister) {
		accept = n.receiver.AcceptRegistration
	}
	if ad, ok := n.repl.(interface {
		AdmitRegistration(*registry.Instance) error
	}); ok {
		// A registration the replication pipeline could not deliver to peers is refused (413)
		// rather than acknowledged; checked after the handlers, which may enrich the instance.
		handlers := accept
		accept = func(ctx context.Context, inst *registry.Instance) error {
			if handlers != nil {
				if err := handlers(ctx, inst); err != nil {
					return err
				}
			}
			return ad.AdmitRegistration(inst)
		}
	}
	var acceptItem func(context.Context, sdk.Item) error
	if n.receiver.Accepts(sdk.ActionStatusUpdate) || n.receiver.Accepts(sdk.ActionDeleteStatusOverride) {
		acceptItem = n.receiver.AcceptItem
	}
	n.api = eureka.NewHandler(eureka.Options{
		Registry:     n.reg,
		Logger:       n.log.Named("eureka"),
		MaxBodyBytes: cfg.MaxBodyBytes,
		Cache:        cfg.Cache,
		ReadGate:     n.cluster.AllowReads,
		Batch:        n.receiver,
		Accept:       accept,
		AcceptItem:   acceptItem,
		Peers:        n.peerStatus,
		IsPeer:       isPeer,
		MaxClockSkew: cfg.MaxClockSkew,
		Warnings:     cfg.Warnings,
		Dashboard:    n.dashboardOptions(),
	})

	mux := http.NewServeMux()
	mux.Handle("/herald/", peerauth.RequirePeer(n.cluster.Handler()))
	if cfg.MetricsPath != "" {
		mux.Handle(cfg.MetricsPath, n.metricsHandler())
	}
	if cfg.Profiling {
		mux.HandleFunc(ProfilingPath, pprof.Index)
		mux.HandleFunc(ProfilingPath+"cmdline", pprof.Cmdline)
		mux.HandleFunc(ProfilingPath+"profile", pprof.Profile)
		mux.HandleFunc(ProfilingPath+"symbol", pprof.Symbol)
		mux.HandleFunc(ProfilingPath+"trace", pprof.Trace)
	}
	health := n.healthHandler()
	mux.Handle(LivePath, health)
	mux.Handle(ReadyPath, health)
	mux.Handle("/", n.api)
	var handler http.Handler = n.nameToPeers(mux)
	if cfg.Trust.Clients != nil {
		handler = cfg.Trust.Clients.Middleware(handler)
	}
	if cfg.Trust.Auth != nil {
		if cfg.Trust.Auth.MaxBody == 0 {
			cfg.Trust.Auth.MaxBody = cfg.MaxBodyBytes
		}
		handler = cfg.Trust.Auth.Middleware(handler)
	}
	n.srv = &http.Server{
		Handler:           n.instrument(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          n.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	ok = true
	return n, nil
}

// URL returns the node's Eureka base URL.
func (n *Node) URL() string { return n.url }

// Addr returns the address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Registry returns the node's registry (tests and embedding programs use it).
func (n *Node) Registry() *registry.Registry { return n.reg }

// Replicator returns the node's replication pipeline (nil when it has none).
func (n *Node) Replicator() Replicator { return n.repl }

// Cluster returns the node's cluster.
func (n *Node) Cluster() *cluster.Cluster { return n.cluster }

// Telemetry returns the node's telemetry provider.
func (n *Node) Telemetry() *telemetry.Provider { return n.tel }

// Start serves HTTP and starts the registry timers, the response cache and the cluster (peer set,
// startup sync in the background, anti-entropy). It returns once the node is serving.
func (n *Node) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.reg.Start(ctx)
	n.api.Start(ctx)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ln := n.ln
		if n.cfg.Trust.TLS != nil {
			ln = tls.NewListener(ln, n.cfg.Trust.TLS.ServerConfig(n.cfg.Trust.RequireClientCert))
		}
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "error", err)
		}
	}()
	if err := n.cluster.Start(ctx); err != nil {
		return fmt.Errorf("node %s: cluster: %w", n.cfg.Name, err)
	}
	n.log.Info("node started", "name", n.cfg.Name, "url", n.url)
	return nil
}

// Reload applies a new peer list (SIGHUP) without dropping queued work for unchanged peers, and
// reads the TLS certificate and CA again (connections already open keep theirs).
func (n *Node) Reload(ctx context.Context, peers []string) error {
	if t := n.cfg.Trust.TLS; t != nil {
		if err := t.Reload(); err != nil {
			return err
		}
	}
	return n.cluster.Reload(ctx, peers)
}

// peerClient is the HTTP client of the node's own calls to peers (startup sync, anti-entropy,
// the dashboard's probes): the node's peer credentials, and every answer's node name learned.
func (n *Node) peerClient(base *http.Transport) *http.Client {
	c := n.cfg.Trust.PeerClient(base)
	c.Transport = n.names.Transport(c.Transport)
	return c
}

// PeerNames returns the node names learned from the peers' answers, by peer URL.
func (n *Node) PeerNames() *cluster.PeerNames { return n.names }

// nameToPeers answers every authenticated peer's request with this node's name
// (peerauth.HeaderNode), so the caller can show it beside this node's URL, and names the caller
// on the request's span (herald.peer.name).
func (n *Node) nameToPeers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := peerauth.PeerFrom(r.Context()); ok {
			if n.cfg.Name != "" {
				w.Header().Set(peerauth.HeaderNode, n.cfg.Name)
			}
			name := id.Name
			if id.Method == peerauth.Trusted {
				// An address, or an unsigned header: shown, never trusted.
				name = r.Header.Get(peerauth.HeaderPeer)
			}
			if span := trace.SpanFromContext(r.Context()); name != "" && span.IsRecording() {
				span.SetAttributes(attribute.String("herald.peer.name", name))
			}
		}
		h.ServeHTTP(w, r)
	})
}

// isPeer reports whether r comes from an authenticated peer (see peerauth.Authenticator).
func isPeer(r *http.Request) bool {
	_, ok := peerauth.PeerFrom(r.Context())
	return ok
}

// Stop withdraws readiness first (/health/ready answers 503) and keeps serving for ShutdownDelay,
// then, within ShutdownTimeout, stops serving (in-flight requests finish) and drains the
// replication queues to the peers; tasks left unsent at the deadline are logged per peer. Then it
// stops everything else. It is safe to call more than once.
func (n *Node) Stop(ctx context.Context) error {
	var err error
	n.once.Do(func() {
		n.stopping.Store(true)
		if d := n.cfg.ShutdownDelay; d > 0 {
			n.log.Info("stopping: readiness withdrawn, still serving", "shutdown_delay", d)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		timeout := n.cfg.ShutdownTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if e := n.srv.Shutdown(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("http shutdown: %w", e))
		}
		n.cluster.Stop()
		if n.repl != nil {
			if e := n.drainReplication(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("replication: %w", e))
			}
		}
		n.api.Stop()
		if n.cancel != nil {
			n.cancel()
		}
		n.wg.Wait()
		if n.deps.OnStop != nil {
			n.deps.OnStop()
		}
		if e := n.tel.Shutdown(ctx); e != nil {
			err = errors.Join(err, e)
		}
		n.log.Info("node stopped", "name", n.cfg.Name)
	})
	return err
}

// peerStatus reports each peer for the status page and the dashboard: up unless its pipeline is
// paused by the traffic shaper or its readiness endpoint does not answer; with its name, queue,
// drops and send latency p99 (dashboard.go).
func (n *Node) peerStatus() []eureka.PeerStatus {
	stats := map[string]replication.PeerStats{}
	if n.repl != nil {
		for _, s := range n.repl.Stats() {
			stats[s.Peer] = s
		}
	}
	var out []eureka.PeerStatus
	peers := n.cluster.Peers().List()
	probed := n.probe.get(context.Background(), peers, n.probeClient)
	for _, p := range peers {
		ps := eureka.PeerStatus{Name: p.Name, URL: p.URL, Up: true}
		s, ok := stats[p.Name]
		if ok {
			ps.Up = s.Paused == 0
			ps.Detail = fmt.Sprintf("pending %d, in flight %d, sent %d batches (avg %.1f tasks), dropped %d",
				s.PendingDepth, s.InFlight, s.Batches, s.AvgBatchSize(), s.Expired+s.Overflow+s.PermanentDropped)
		}
		pr, probedOK := probed[p.URL]
		fillPeerStatus(&ps, statsOrNil(s, ok), probeOrNil(pr, probedOK))
		if ps.NodeName == "" {
			// Not probed yet, or it did not answer: the name its last answer to this node gave.
			ps.NodeName = n.names.Name(p.URL)
		}
		out = append(out, ps)
	}
	return out
}

// validatePeerInstances checks instances copied from peers (startup sync, anti-entropy pulls) as
// replicated writes are checked: the action handlers' validators (Chain.ValidateInstances) and the
// clock skew bound; the registry checks the rest (registry.ValidateInstance).
func (n *Node) validatePeerInstances(ctx context.Context, insts []*registry.Instance) ([]string, error) {
	why, err := n.receiver.ValidateInstances(ctx, insts)
	if err != nil {
		return nil, err
	}
	if max := n.cfg.MaxClockSkew; max > 0 {
		limit := time.Now().Add(max).UnixMilli()
		for i, inst := range insts {
			switch {
			case why[i] != "":
			case inst.LastDirtyTimestamp > limit:
				why[i] = fmt.Sprintf("lastDirtyTimestamp %d is more than %s ahead of this node's clock", inst.LastDirtyTimestamp, max)
			case inst.StatusVersion > limit:
				why[i] = fmt.Sprintf("statusVersion %d is more than %s ahead of this node's clock", inst.StatusVersion, max)
			}
		}
	}
	return why, nil
}
