package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/actions"
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/pluginhost"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/core/telemetry"
	eurekahandler "github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
)

// builtinTransports and builtinPolicies are the plugins that run in-process without a plugin
// block. cmd wires them because the core never imports plugins/.
var builtinTransports = map[string]func(cfg *config.Config) sdk.Transport{
	"http": func(cfg *config.Config) sdk.Transport {
		pa, _ := peerAuthConfig(cfg) // validated with the configuration
		return httptransport.New(httptransport.Options{
			ConnectTimeout: cfg.Replication.ConnectTimeout,
			ReadTimeout:    cfg.Replication.ReadTimeout,
			Compress:       cfg.Replication.Compress,
			NodeID:         cfg.Node.Name,
			PeerAuth:       pa,
		})
	},
	// Configured with its plugin "transport" "grpc" block; it listens for peers' batches too.
	"grpc": func(*config.Config) sdk.Transport { return grpctransport.NewPlugin() },
}

var builtinPolicies = map[string]func(maxBatch int, cfg replication.Config) sdk.FlushPolicy{
	"size-or-age": func(maxBatch int, cfg replication.Config) sdk.FlushPolicy {
		return replication.SizeOrAge{MaxBatch: maxBatch, Delay: cfg.BatchingDelay}
	},
	// adaptive cuts at once at light load and grows batches under load, up to maxBatch tasks and
	// batching_delay (its max_delay); run out of process, it takes its own config {} instead.
	"adaptive": func(maxBatch int, cfg replication.Config) sdk.FlushPolicy {
		c := adaptive.DefaultConfig()
		c.MaxBatchSize, c.MaxDelay = maxBatch, cfg.BatchingDelay
		return adaptive.New(c)
	},
}

// builtinHandlers are the action handlers that run in-process without a plugin block.
var builtinHandlers = map[string]func() sdk.ActionHandler{
	"eureka": func() sdk.ActionHandler { return eurekahandler.New() },
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

// pluginSpec returns the process to run for a plugin block, or false to run the built-in
// in-process.
func pluginSpec(cfg *config.Config, kind, name string) (pluginhost.Spec, bool, error) {
	pc, ok := cfg.Plugins[kind][name]
	if !ok || (pc.Command == "" && !pc.OutOfProcess) {
		return pluginhost.Spec{}, false, nil
	}
	spec := pluginhost.Spec{Kind: kind, Name: name, Command: pc.Command, Args: pc.Args, SHA256: pc.SHA256,
		Config: pc.Config, Source: cfg.PosOf("plugin", kind, name).String(), NodeName: cfg.Node.Name, NodeURL: nodeURL(cfg),
		LogLevel:  cfg.Log.Level,
		Telemetry: pluginTelemetry(cfg)}
	pa, err := peerAuthConfig(cfg)
	if err != nil {
		return spec, false, err
	}
	spec.PeerAuth = pa
	for k, v := range pc.Env {
		spec.Env = append(spec.Env, k+"="+v)
	}
	if pc.Command == "" {
		self, err := os.Executable()
		if err != nil {
			return spec, false, fmt.Errorf("%s: cannot find the herald binary to re-execute: %w", spec, err)
		}
		spec.Command, spec.Args = self, []string{"plugin", "serve", kind, name}
	} else if cfg.PluginDir != "" && !strings.ContainsRune(pc.Command, os.PathSeparator) {
		if p := filepath.Join(cfg.PluginDir, pc.Command); fileExists(p) {
			spec.Command = p
		}
	}
	return spec, true, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// buildDeps assembles what the node needs from outside the core: the replication pipeline with the
// configured transports and flush policies, in-process or as supervised plugin processes.
func buildDeps(ctx context.Context, cfg *config.Config, logger hclog.Logger) (node.Deps, func(), error) {
	if err := checkPlugins(cfg); err != nil {
		return node.Deps{}, nil, err
	}
	var procs []*pluginhost.Process
	metrics := pluginhost.NewMetrics()
	var closers []io.Closer // in-process plugins with something to stop (a transport's listener)
	stopAll := func() {
		for _, p := range procs {
			p.Stop()
		}
		for _, c := range closers {
			c.Close()
		}
	}
	host := &actions.Host{}
	tracing := &telemetry.Late{}
	handlers, err := startHandlers(ctx, cfg, host, tracing, logger, &procs)
	if err != nil {
		stopAll()
		return node.Deps{}, nil, err
	}
	transports := map[string]sdk.Transport{}
	policies := map[string]sdk.FlushPolicy{}
	names := map[string]map[string]bool{sdk.KindTransport: {cfg.Replication.Transport: true},
		sdk.KindFlushPolicy: {cfg.Replication.FlushPolicy: true}}
	for _, pt := range cfg.Replication.Peers {
		if pt.Transport != "" {
			names[sdk.KindTransport][pt.Transport] = true
		}
		if pt.FlushPolicy != "" {
			names[sdk.KindFlushPolicy][pt.FlushPolicy] = true
		}
	}
	for kind, set := range names {
		for name := range set {
			spec, run, err := pluginSpec(cfg, kind, name)
			if err != nil {
				stopAll()
				return node.Deps{}, nil, err
			}
			if !run {
				if kind == sdk.KindTransport {
					t := builtinTransports[name](cfg)
					if err := configureBuiltin(ctx, cfg, kind, name, t, host, logger); err != nil {
						stopAll()
						return node.Deps{}, nil, err
					}
					transports[name] = t
					if c, ok := t.(io.Closer); ok {
						closers = append(closers, c)
					}
				}
				continue
			}
			spec.Host, spec.TracerProvider = host, tracing
			p, err := pluginhost.Start(ctx, spec, logger.Named("plugin"))
			if err != nil {
				stopAll()
				return node.Deps{}, nil, err
			}
			procs = append(procs, p)
			if kind == sdk.KindTransport {
				transports[name] = p.Transport()
			} else {
				policies[name] = p.FlushPolicy()
			}
		}
	}
	transport := func(name string) sdk.Transport { return transports[name] }
	base := replicationConfig(cfg)
	for _, p := range procs {
		metrics.Track(p)
	}
	deps := node.Deps{Logger: logger, OnStop: stopAll, ActionHandlers: handlers, Host: host, Tracing: tracing,
		Collectors: []node.MetricsCollector{metrics}}
	deps.ReadyChecks = func() []node.Check { return pluginChecks(procs) }
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
				if pol, ok := policies[pname]; ok {
					return transport(tname), pol, nil
				}
				return transport(tname), builtinPolicies[pname](c.MaxBatchSize, c), nil
			},
			EncodeInstance: func(i *registry.Instance) []byte { return codec.AppendInstanceBare(nil, i) },
			OnConflict: func(ctx context.Context, p sdk.Peer, entity []byte) {
				// The peer holds a newer copy: adopt it as a replicated write, so it is not sent on.
				inst, err := codec.DecodeInstanceBare(entity)
				if err != nil {
					logger.Warn("cannot read a peer's newer copy", "peer", p.Name, "error", err)
					return
				}
				if err := reg.Register(ctx, inst, registry.FromPeer); err != nil {
					logger.Warn("cannot adopt a peer's newer copy", "peer", p.Name, "error", err)
				}
			},
			Observer: replication.NewTracingObserver(tel.Tracer("replication"), tel.Enabled()),
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

// startHandlers starts the action handlers replication.action_handlers lists, in order: plugin
// processes for plugin blocks, built-ins in-process. In-process handlers are configured here as
// processes are, with the block's config {} and the host service; a refused configuration names
// the block (or the action_handlers key).
func startHandlers(ctx context.Context, cfg *config.Config, host sdk.Host, tracing *telemetry.Late, logger hclog.Logger,
	procs *[]*pluginhost.Process) ([]actions.Handler, error) {
	var out []actions.Handler
	for _, name := range cfg.Replication.ActionHandlers {
		spec, run, err := pluginSpec(cfg, sdk.KindActionHandler, name)
		if err != nil {
			return nil, err
		}
		if run {
			spec.Host, spec.TracerProvider = host, tracing
			p, err := pluginhost.Start(ctx, spec, logger.Named("plugin"))
			if err != nil {
				return nil, err
			}
			*procs = append(*procs, p)
			out = append(out, actions.Handler{Name: name, Impl: p.ActionHandler()})
			continue
		}
		h := builtinHandlers[name]()
		if err := configureBuiltin(ctx, cfg, sdk.KindActionHandler, name, h, host, logger); err != nil {
			return nil, err
		}
		out = append(out, actions.Handler{Name: name, Impl: h})
	}
	return out, nil
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

// configureBuiltin hands an in-process built-in plugin what a plugin process gets at Configure:
// its block's config {}, the node's identity, telemetry settings, the host service and a logger
// named as a plugin process's output is. A refused configuration names the plugin block, or the
// replication key that selected the plugin.
func configureBuiltin(ctx context.Context, cfg *config.Config, kind, name string, impl any, host sdk.Host,
	logger hclog.Logger) error {
	c, ok := impl.(sdk.Configurable)
	if !ok {
		return nil
	}
	pc := cfg.Plugins[kind][name]
	pa, err := peerAuthConfig(cfg)
	if err != nil {
		return err
	}
	var errs []string
	for _, d := range c.Configure(ctx, sdk.ConfigureRequest{Config: pc.Config, NodeName: cfg.Node.Name, NodeURL: nodeURL(cfg),
		LogLevel: cfg.Log.Level, Telemetry: pluginTelemetry(cfg), Host: host, PeerAuth: pa,
		Logger: sdk.PluginLogger(logger.Named("plugin"), kind, name, cfg.Node.Name)}) {
		if !d.Warning {
			errs = append(errs, strings.TrimSuffix("config."+d.Path, ".")+": "+d.Message)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	where := cfg.PosOf("replication")
	if _, ok := cfg.Plugins[kind][name]; ok {
		where = cfg.PosOf("plugin", kind, name)
	}
	sort.Strings(errs)
	return fmt.Errorf("%s: %s %q: configuration refused: %s", where, kind, name, strings.Join(errs, "; "))
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
