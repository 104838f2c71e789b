package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/core/telemetry"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
)

// builtinTransports and builtinPolicies are the plugins that run in-process without a plugin
// block. cmd wires them because the core never imports plugins/.
var builtinTransports = map[string]func(cfg *config.Config) sdk.Transport{
	"http": func(cfg *config.Config) sdk.Transport {
		return httptransport.New(httptransport.Options{
			ConnectTimeout: cfg.Replication.ConnectTimeout,
			ReadTimeout:    cfg.Replication.ReadTimeout,
			Compress:       cfg.Replication.Compress,
			NodeID:         cfg.Node.Name,
		})
	},
}

var builtinPolicies = map[string]func(maxBatch int, cfg replication.Config) sdk.FlushPolicy{
	"size-or-age": func(maxBatch int, cfg replication.Config) sdk.FlushPolicy {
		return replication.SizeOrAge{MaxBatch: maxBatch, Delay: cfg.BatchingDelay}
	},
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

// buildDeps assembles what the node needs from outside the core: the replication pipeline with the
// configured transports and flush policies.
func buildDeps(_ context.Context, cfg *config.Config, logger hclog.Logger) (node.Deps, func(), error) {
	if err := checkPlugins(cfg); err != nil {
		return node.Deps{}, nil, err
	}
	transports := map[string]sdk.Transport{}
	transport := func(name string) sdk.Transport {
		if t, ok := transports[name]; ok {
			return t
		}
		t := builtinTransports[name](cfg)
		transports[name] = t
		return t
	}
	base := replicationConfig(cfg)
	deps := node.Deps{Logger: logger}
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
		return r, nil
	}
	return deps, func() {}, nil
}
