package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/actions"
	"github.com/heraldhq/herald/core/cluster"
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/pluginhost"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/core/telemetry"
	eurekahandler "github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/plugins/flush/sizeorage"
	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
)

// builtins is the catalog of built-in plugins, by kind and name: the same constructors run
// in-process and, with out_of_process = true, as `herald plugin serve KIND NAME`. Built-in and
// external plugins alike are loaded, checked against their schema, configured and closed by
// pluginhost.Load. cmd wires them because the core never imports plugins/.
var builtins = map[string]map[string]func() any{
	sdk.KindTransport: {
		"http": func() any { return httptransport.NewPlugin() },
		// It listens for peers' batches too (config {} listen, port_offset).
		"grpc": func() any { return grpctransport.NewPlugin() },
	},
	sdk.KindFlushPolicy: {
		"size-or-age": func() any { return sizeorage.New() },
		// adaptive cuts at once at light load and grows batches under load, up to max_batch_size
		// tasks and max_delay.
		"adaptive": func() any { return adaptive.New(adaptive.DefaultConfig()) },
	},
	sdk.KindActionHandler: {
		"eureka": func() any { return eurekahandler.New() },
	},
}

// builtinDefaults are the config keys a built-in plugin takes from the node's own settings
// (Eureka's peerNodeConnectTimeoutMs, peerNodeReadTimeoutMs, maxBatchingSize,
// maxBatchingDelay), in-process or out of process; the plugin block's config {} keys win.
func builtinDefaults(cfg *config.Config, kind, name string, rc replication.Config) map[string]any {
	switch kind + "/" + name {
	case sdk.KindTransport + "/http":
		return map[string]any{"connect_timeout": cfg.Replication.ConnectTimeout.String(),
			"read_timeout": cfg.Replication.ReadTimeout.String(), "compress": cfg.Replication.Compress}
	case sdk.KindFlushPolicy + "/size-or-age":
		return map[string]any{"max_batch_size": rc.MaxBatchSize, "batching_delay": rc.BatchingDelay.String()}
	case sdk.KindFlushPolicy + "/adaptive":
		return map[string]any{"max_batch_size": rc.MaxBatchSize, "max_delay": rc.BatchingDelay.String()}
	}
	return nil
}

func names[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// checkPlugins verifies that every transport and flush policy the replication block names exists.
func checkPlugins(cfg *config.Config) error {
	check := func(key, name string, known bool, kind, avail string, path ...string) error {
		if known {
			return nil
		}
		if pc, ok := cfg.Plugins[kind][name]; ok && pc.Command != "" {
			return nil // an external plugin
		}
		return &config.Error{Pos: cfg.PosOf(path...), Key: key,
			Msg: fmt.Sprintf("no %s plugin named %q (built in: %s)", kind, name, avail)}
	}
	builtinTransports, builtinPolicies, builtinHandlers := builtins[sdk.KindTransport], builtins[sdk.KindFlushPolicy],
		builtins[sdk.KindActionHandler]
	if err := check("replication.transport", cfg.Replication.Transport, builtinTransports[cfg.Replication.Transport] != nil,
		"transport", names(builtinTransports), "replication", "transport"); err != nil {
		return err
	}
	if err := check("replication.flush_policy", cfg.Replication.FlushPolicy, builtinPolicies[cfg.Replication.FlushPolicy] != nil,
		"flush_policy", names(builtinPolicies), "replication", "flush_policy"); err != nil {
		return err
	}
	for i, h := range cfg.Replication.ActionHandlers {
		if err := check(fmt.Sprintf("replication.action_handlers[%d]", i), h, builtinHandlers[h] != nil,
			"action_handler", names(builtinHandlers), "replication", "action_handlers"); err != nil {
			return err
		}
	}
	for u, pt := range cfg.Replication.Peers {
		if pt.Transport != "" {
			if err := check("replication.peer."+u+".transport", pt.Transport, builtinTransports[pt.Transport] != nil,
				"transport", names(builtinTransports), "replication", "peer", u, "transport"); err != nil {
				return err
			}
		}
		if pt.FlushPolicy != "" {
			if err := check("replication.peer."+u+".flush_policy", pt.FlushPolicy, builtinPolicies[pt.FlushPolicy] != nil,
				"flush_policy", names(builtinPolicies), "replication", "peer", u, "flush_policy"); err != nil {
				return err
			}
		}
	}
	return nil
}

func replicationConfig(cfg *config.Config) replication.Config {
	r := cfg.Replication
	return replication.Config{
		MaxBatchSize:             r.MaxBatchSize,
		BatchingDelay:            r.BatchingDelay,
		MaxBufferSize:            r.MaxBufferSize,
		MaxBatchBytes:            r.MaxBatchBytes,
		MaxBufferBytes:           r.MaxBufferBytes,
		Workers:                  r.Workers,
		CongestionRetryDelay:     r.CongestionRetryDelay,
		NetworkFailureRetryDelay: r.NetworkFailureRetryDelay,
		MaxDelay:                 r.MaxDelayCap,
		MaxTimeForReplication:    r.MaxTimeForReplication,
	}
}

// peerTuning finds a peer's `peer "URL" {}` block, comparing URLs loosely (trailing slash, case).
func peerTuning(cfg *config.Config, p sdk.Peer) (config.PeerTuning, bool) {
	norm := func(s string) string { return strings.TrimRight(strings.ToLower(s), "/") }
	for u, pt := range cfg.Replication.Peers {
		if norm(u) == norm(p.URL) || norm(u) == norm(p.Name) {
			return pt, true
		}
	}
	return config.PeerTuning{}, false
}

// pluginSpec returns how to load a plugin: the built-in in-process, or a process for a plugin block
// with a command or out_of_process = true. defaults are node settings a built-in takes (see
// builtinDefaults).
func pluginSpec(cfg *config.Config, kind, name string, defaults map[string]any) (pluginhost.Spec, error) {
	pc, hasBlock := cfg.Plugins[kind][name]
	blockPath := []string{"plugin", kind, name}
	spec := pluginhost.Spec{Kind: kind, Name: name, Command: pc.Command, Args: pc.Args, SHA256: pc.SHA256,
		Config: pc.Config, Source: cfg.PosOf(blockPath...).String(), NodeName: cfg.Node.Name, NodeURL: nodeURL(cfg),
		LogLevel: cfg.Log.Level, Telemetry: pluginTelemetry(cfg)}
	if !hasBlock {
		// A built-in selected by the replication block alone: errors name the key that chose it.
		spec.Source = cfg.PosOf("replication").String()
	}
	spec.KeyPos = func(path []string) string {
		if !hasBlock {
			return spec.Source
		}
		return cfg.PosOf(append(append(blockPath, "config"), path...)...).String()
	}
	spec.FromText = func(path []string) bool {
		return cfg.PosOf(append(append(blockPath, "config"), path...)...).Source != ""
	}
	pa, err := peerAuthConfig(cfg)
	if err != nil {
		return spec, err
	}
	spec.PeerAuth = pa
	spec.MaxProcs = pc.MaxProcs
	for k, v := range pc.Env {
		spec.Env = append(spec.Env, k+"="+v)
	}
	if pc.Command == "" {
		spec.Defaults = defaults
	}
	switch {
	case pc.Command == "" && !pc.OutOfProcess:
		spec.New = builtins[kind][name]
		if spec.New == nil {
			return spec, fmt.Errorf("%s: no built-in %s plugin named %q", spec.Source, kind, name)
		}
	case pc.Command == "":
		self, err := os.Executable()
		if err != nil {
			return spec, fmt.Errorf("%s: cannot find the herald binary to re-execute: %w", spec, err)
		}
		spec.Command, spec.Args = self, []string{"plugin", "serve", kind, name}
	case cfg.PluginDir != "" && !strings.ContainsRune(pc.Command, os.PathSeparator):
		if p := filepath.Join(cfg.PluginDir, pc.Command); fileExists(p) {
			spec.Command = p
		}
	}
	return spec, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// pluginUse is one plugin the configuration selects, with the node settings it starts with.
type pluginUse struct {
	kind, name string
	defaults   map[string]any
}

// pluginUses lists the plugins the configuration selects, action handlers first and in order:
// the transports and flush policies of the replication block and of every peer block.
func pluginUses(cfg *config.Config) []pluginUse {
	base := replicationConfig(cfg)
	var out []pluginUse
	for _, h := range cfg.Replication.ActionHandlers {
		out = append(out, pluginUse{kind: sdk.KindActionHandler, name: h})
	}
	seen := map[string]bool{}
	add := func(kind, name string) {
		if !seen[kind+"/"+name] {
			seen[kind+"/"+name] = true
			out = append(out, pluginUse{kind: kind, name: name, defaults: builtinDefaults(cfg, kind, name, base)})
		}
	}
	add(sdk.KindTransport, cfg.Replication.Transport)
	add(sdk.KindFlushPolicy, cfg.Replication.FlushPolicy)
	for _, u := range sortedKeys(cfg.Replication.Peers) {
		pt := cfg.Replication.Peers[u]
		if pt.Transport != "" {
			add(sdk.KindTransport, pt.Transport)
		}
		if pt.FlushPolicy != "" {
			add(sdk.KindFlushPolicy, pt.FlushPolicy)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkPluginsRun runs, for every plugin the configuration selects, the checks herald server runs
// when it loads it, and starts nothing: a plugin process is launched (binary, checksum,
// handshake), its config block checked against its schema and by the plugin's own validation, and
// closed; a built-in is checked the same way in-process.
func checkPluginsRun(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	for _, u := range pluginUses(cfg) {
		spec, err := pluginSpec(cfg, u.kind, u.name, u.defaults)
		if err != nil {
			return err
		}
		if err := pluginhost.Check(ctx, spec, logger); err != nil {
			return err
		}
	}
	return nil
}

// buildDeps assembles what the node needs from outside the core: the replication pipeline with the
// configured transports and flush policies, in-process or as supervised plugin processes, all
// loaded through pluginhost.Load.
func buildDeps(ctx context.Context, cfg *config.Config, logger hclog.Logger) (node.Deps, func(), error) {
	if err := checkPlugins(cfg); err != nil {
		return node.Deps{}, nil, err
	}
	var mu sync.Mutex
	var loaded []*pluginhost.Plugin
	var procs []*pluginhost.Process
	metrics := pluginhost.NewMetrics()
	stopAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for i := len(loaded) - 1; i >= 0; i-- {
			loaded[i].Close()
		}
		loaded = nil
	}
	host := &actions.Host{}
	tracing := &telemetry.Late{}
	// The peers' node names, learned from their answers: shown beside their URLs in spans, logs,
	// metrics and the dashboard.
	peerNames := cluster.NewPeerNames(logger.Named("peers"))
	load := func(kind, name string, defaults map[string]any) (*pluginhost.Plugin, error) {
		spec, err := pluginSpec(cfg, kind, name, defaults)
		if err != nil {
			return nil, err
		}
		spec.Host = host
		if spec.New == nil {
			spec.TracerProvider = tracing
		}
		p, err := pluginhost.Load(ctx, spec, logger.Named("plugin"))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		loaded = append(loaded, p)
		if p.Process() != nil {
			procs = append(procs, p.Process())
		}
		mu.Unlock()
		return p, nil
	}
	var handlers []actions.Handler
	transports := map[string]sdk.Transport{}
	policies := map[string]*pluginhost.Plugin{}
	for _, u := range pluginUses(cfg) {
		p, err := load(u.kind, u.name, u.defaults)
		if err != nil {
			stopAll()
			return node.Deps{}, nil, err
		}
		switch u.kind {
		case sdk.KindActionHandler:
			handlers = append(handlers, actions.Handler{Name: u.name, Impl: p.ActionHandler()})
		case sdk.KindTransport:
			// An in-process transport that reads peers' names from their answers (the http
			// transport does) reports them here.
			if nr, ok := p.Impl().(interface {
				OnPeerName(func(peerURL, name string))
			}); ok {
				nr.OnPeerName(peerNames.Learn)
			}
			transports[u.name] = p.Transport()
		case sdk.KindFlushPolicy:
			policies[u.name] = p
		}
	}
	// An in-process built-in flush policy takes the peer's max_batch_size and batching_delay (a
	// peer block's tuning) as its defaults: one instance per distinct setting, loaded as above. A
	// plugin process serves every peer with its block's settings.
	perPeer := map[string]sdk.FlushPolicy{}
	policyFor := func(name string, c replication.Config) (sdk.FlushPolicy, error) {
		p := policies[name]
		if p.Process() != nil {
			return p.FlushPolicy(), nil
		}
		key := fmt.Sprintf("%s/%d/%s", name, c.MaxBatchSize, c.BatchingDelay)
		mu.Lock()
		f, ok := perPeer[key]
		mu.Unlock()
		if ok {
			return f, nil
		}
		if c.MaxBatchSize == replicationConfig(cfg).MaxBatchSize && c.BatchingDelay == cfg.Replication.BatchingDelay {
			f = p.FlushPolicy()
		} else {
			np, err := load(sdk.KindFlushPolicy, name, builtinDefaults(cfg, sdk.KindFlushPolicy, name, c))
			if err != nil {
				return nil, err
			}
			f = np.FlushPolicy()
		}
		mu.Lock()
		perPeer[key] = f
		mu.Unlock()
		return f, nil
	}
	transport := func(name string) sdk.Transport { return transports[name] }
	base := replicationConfig(cfg)
	for _, p := range procs {
		metrics.Track(p)
	}
	deps := node.Deps{Logger: logger, OnStop: stopAll, ActionHandlers: handlers, Host: host, Tracing: tracing,
		Collectors: []node.MetricsCollector{metrics}, PeerNames: peerNames}
	deps.ReadyChecks = func() []node.Check {
		mu.Lock()
		defer mu.Unlock()
		return pluginChecks(procs)
	}
	deps.NewReplicator = func(reg *registry.Registry, tel *telemetry.Provider) (node.Replicator, error) {
		r := replication.New(replication.Options{
			Config: base,
			PeerConfig: func(p sdk.Peer, c replication.Config) replication.Config {
				pt, ok := peerTuning(cfg, p)
				if !ok {
					return c
				}
				if pt.MaxBatchSize != nil {
					c.MaxBatchSize = *pt.MaxBatchSize
				}
				if pt.BatchingDelay != nil {
					c.BatchingDelay = *pt.BatchingDelay
				}
				if pt.Workers != nil {
					c.Workers = *pt.Workers
				}
				if pt.MaxBufferSize != nil {
					c.MaxBufferSize = *pt.MaxBufferSize
				}
				return c
			},
			Plugins: func(p sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) {
				tname, pname := cfg.Replication.Transport, cfg.Replication.FlushPolicy
				c := base
				if pt, ok := peerTuning(cfg, p); ok {
					if pt.Transport != "" {
						tname = pt.Transport
					}
					if pt.FlushPolicy != "" {
						pname = pt.FlushPolicy
					}
					if pt.BatchingDelay != nil {
						c.BatchingDelay = *pt.BatchingDelay
					}
					if pt.MaxBatchSize != nil {
						c.MaxBatchSize = *pt.MaxBatchSize
					}
				}
				pol, err := policyFor(pname, c)
				if err != nil {
					return nil, nil, err
				}
				return transport(tname), pol, nil
			},
			EncodeInstance: func(i *registry.Instance) []byte { return codec.AppendInstanceBare(nil, i) },
			OnConflict: func(ctx context.Context, p sdk.Peer, entity []byte) {
				// The peer holds a newer copy: adopt it as a replicated write, so it is not sent on.
				inst, err := codec.DecodeInstanceBare(entity)
				if err != nil {
					logger.Warn("cannot read a peer's newer copy", "peer", p.Name, "error", err)
					return
				}
				logger.Debug("peer holds a newer copy; adopting it", "peer", p.Name, "app", inst.App, "id", inst.ID(),
					"lastDirty", inst.LastDirtyTimestamp, "status", inst.Status, "overridden", inst.OverriddenStatus)
				if err := reg.Register(ctx, inst, registry.FromPeer); err != nil {
					logger.Warn("cannot adopt a peer's newer copy", "peer", p.Name, "error", err)
				}
			},
			Lookup:   reg.Instance,
			Observer: replication.NewTracingObserver(tel.Tracer("replication"), tel.Enabled(), peerNames.Name),
			Logger:   logger.Named("replication"),
		})
		return withPeerAddresses(r, cfg), nil
	}
	return deps, stopAll, nil
}

// pluginChecks reports each plugin process for readiness: ready while it runs, not while it is
// being restarted.
func pluginChecks(procs []*pluginhost.Process) []node.Check {
	out := make([]node.Check, 0, len(procs))
	for _, p := range procs {
		h := p.Health()
		c := node.Check{Name: "plugin " + h.Kind + " " + h.Name, OK: h.State == pluginhost.StateRunning,
			Detail: fmt.Sprintf("%s, pid %d, %d restarts", h.State, h.Pid, h.Restarts)}
		if !c.OK && h.LastError != "" {
			c.Detail += ": " + h.LastError
		}
		out = append(out, c)
	}
	return out
}

// pluginTelemetry is what plugins are told of the node's tracing, so their own spans join the
// node's traces at the same collector.
func pluginTelemetry(cfg *config.Config) sdk.Telemetry {
	t := cfg.Telemetry.Tracing
	if !t.Enabled {
		return sdk.Telemetry{}
	}
	return sdk.Telemetry{Endpoint: t.Endpoint, Protocol: t.Exporter, SampleRatio: t.SampleRatio,
		ServiceName: cfg.Telemetry.ServiceName + "-plugins"}
}

// nodeURL is the node's Eureka base URL as peers reach it.
func nodeURL(cfg *config.Config) string {
	if cfg.Node.AdvertiseURL != "" {
		return cfg.Node.AdvertiseURL
	}
	host := cfg.Node.BindAddr
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s/eureka/", net.JoinHostPort(host, strconv.Itoa(cfg.Node.Port)))
}

// checkPluginBinaries verifies that every external plugin's command can be found, as the plugin
// host will look for it (a path, a name in plugin_dir, or a name on PATH).
func checkPluginBinaries(cfg *config.Config) error {
	var kinds []string
	for k := range cfg.Plugins {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		var ns []string
		for n := range cfg.Plugins[kind] {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		for _, name := range ns {
			cmd := cfg.Plugins[kind][name].Command
			if cmd == "" {
				continue
			}
			found := false
			switch {
			case strings.ContainsRune(cmd, os.PathSeparator):
				found = fileExists(cmd)
			case cfg.PluginDir != "" && fileExists(filepath.Join(cfg.PluginDir, cmd)):
				found = true
			default:
				_, err := exec.LookPath(cmd)
				found = err == nil
			}
			if !found {
				return &config.Error{Pos: cfg.PosOf("plugin", kind, name, "command"), Key: "plugin." + kind + "." + name + ".command",
					Msg: fmt.Sprintf("plugin binary %q not found (a path, a name in plugin_dir, or a name on PATH)", cmd)}
			}
		}
	}
	return nil
}
