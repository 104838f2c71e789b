package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/cluster"
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/telemetry"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "HCL configuration file (see config.hcl)")
	var sets stringList
	fs.Var(&sets, "set", "override one option, key.path=value (repeatable), e.g. -set node.port=8762")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: herald server -config FILE [-set key=value ...]\n\nRuns one herald node. Environment variables HERALD_<KEY__PATH> override the file,\n-set flags override both. SIGHUP reloads the peer list; SIGINT/SIGTERM stop gracefully.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald server: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *path == "" {
		fmt.Fprint(stderr, "herald server: no configuration file: give one with -config FILE.\n"+
			"  config.hcl in the repository lists every option with its default; to try herald on one\n"+
			"  machine without a file, run `herald dev`.\n")
		return 2
	}
	cfg, err := loadConfig(*path, os.Environ(), sets)
	if err != nil {
		fmt.Fprintf(stderr, "herald server: %v\n", err)
		return 1
	}
	logger := newLogger(cfg, stderr)
	rn, err := startNode(ctx, cfg, logger, false)
	if err != nil {
		fmt.Fprintf(stderr, "herald server: %v\n", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			next, err := loadConfig(*path, os.Environ(), sets)
			if err != nil {
				logger.Error("reload: configuration rejected; keeping the running one", "error", err)
				continue
			}
			if err := rn.Reload(ctx, next.Cluster.Peers); err != nil {
				logger.Error("reload failed", "error", err)
				continue
			}
			logger.Info("reloaded peer list", "peers", len(rn.Cluster().Peers().List()))
		case <-ctx.Done():
			logger.Info("stopping")
			stopCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownDelay+cfg.HTTP.ShutdownTimeout+5*time.Second)
			defer cancel()
			if err := rn.Stop(stopCtx); err != nil {
				logger.Error("stop", "error", err)
				return 1
			}
			return 0
		}
	}
}

const configUsage = `Usage: herald config validate FILE [-set key=value ...]

Loads FILE as herald server would (environment variables HERALD_<KEY__PATH> and -set flags
override it) and runs the checks herald server runs at start: every option, TLS material and
credentials, and every plugin the configuration selects (binary, checksum, handshake, its config
block against the plugin's schema and the plugin's own validation; each plugin process is
launched, checked and closed, and starts nothing). Prints a summary. Exit status: 0 valid, 1 invalid, 2 usage error.

Flags:
`

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	if len(args) < 1 || args[0] != "validate" {
		fmt.Fprintln(stderr, "Usage: herald config validate FILE [-set key=value ...]")
		return 2
	}
	fs := flag.NewFlagSet("herald config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets stringList
	fs.Var(&sets, "set", "override one option, key.path=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), configUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE: parse, take one argument, parse the rest.
	var files []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "Usage: herald config validate FILE [-set key=value ...]")
		return 2
	}
	file := files[0]
	cfg, err := loadConfig(file, os.Environ(), sets)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := checkPlugins(cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := checkPluginBinaries(cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The TLS material and credentials are read as herald server reads them at start.
	if _, err := nodeTrust(cfg, cfg.Node.Name); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Every plugin goes through the checks herald server runs when it loads it (handshake, schema,
	// the plugin's own validation), launched and closed again: nothing listens.
	if err := checkPluginsRun(context.Background(), cfg, hclog.NewNullLogger()); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid (node %s, %d peer URLs, transport %s, flush policy %s)\n", file,
		listenAddr(cfg), len(cfg.Cluster.Peers), cfg.Replication.Transport, cfg.Replication.FlushPolicy)
	return 0
}

func loadConfig(path string, env, sets []string) (*config.Config, error) {
	return config.Load(path, env, sets)
}

func newLogger(cfg *config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "herald",
		Level:      hclog.LevelFromString(cfg.Log.Level),
		JSONFormat: cfg.Log.JSON,
		Output:     w,
	})
}

func listenAddr(cfg *config.Config) string {
	return net.JoinHostPort(cfg.Node.BindAddr, strconv.Itoa(cfg.Node.Port))
}

// nodeConfig maps the file's configuration onto the node's.
func nodeConfig(cfg *config.Config) node.Config {
	name := cfg.Node.Name
	if name == "" {
		name = listenAddr(cfg)
	}
	rc := registry.Config{
		EnableSelfPreservation:         cfg.Registry.SelfPreservation,
		RenewalPercentThreshold:        cfg.Registry.RenewalPercentThreshold,
		ExpectedClientRenewalInterval:  cfg.Registry.ExpectedClientRenewalInterval,
		RenewalThresholdUpdateInterval: cfg.Registry.RenewalThresholdUpdateInterval,
		EvictionInterval:               cfg.Registry.EvictionInterval,
		MaxProtectionTime:              cfg.Registry.MaxProtectionTime,
		DeltaRetention:                 cfg.Registry.DeltaRetention,
		DeltaRetentionInterval:         cfg.Registry.DeltaRetentionInterval,
		DisableDelta:                   cfg.Registry.DisableDelta,
		SyncWhenTimestampDiffers:       cfg.Registry.SyncWhenTimestampDiffers,
		OverrideExpiry:                 cfg.Registry.OverrideExpiry,
		FixLeaseDurationBug:            cfg.Registry.FixLeaseDurationBug,
		TombstoneTTL:                   cfg.Registry.TombstoneTTL,
	}
	cc := cluster.DefaultConfig()
	cc.Peers = cfg.Cluster.Peers
	cc.SelfURL = cfg.Cluster.SelfURL
	if cc.SelfURL == "" {
		cc.SelfURL = cfg.Node.AdvertiseURL
	}
	cc.DNS = cluster.DNSConfig{Name: cfg.Cluster.DNS.Name, SRV: cfg.Cluster.DNS.SRV, Port: cfg.Cluster.DNS.Port,
		Refresh: cfg.Cluster.DNS.Refresh}
	if cfg.TLS.Enabled() {
		// A node with TLS serves nothing else, and neither do the peers DNS finds: dial them over https.
		cc.DNS.Scheme = "https"
	}
	cc.PeerUpdateInterval = cfg.Cluster.PeerUpdateInterval
	cc.Sync.Retries = cfg.Cluster.StartupSync.Retries
	cc.Sync.RetryWait = cfg.Cluster.StartupSync.RetryWait
	cc.Sync.WaitWhenEmpty = cfg.Cluster.StartupSync.WaitWhenEmpty
	cc.AntiEntropy.Enabled = cfg.Cluster.AntiEntropy.Enabled
	cc.AntiEntropy.Interval = cfg.Cluster.AntiEntropy.Interval
	metricsPath := ""
	if cfg.Telemetry.Metrics.Enabled {
		metricsPath = cfg.Telemetry.Metrics.Path
	}
	tr := cfg.Telemetry.Tracing
	return node.Config{
		Name:            name,
		Addr:            listenAddr(cfg),
		AdvertiseURL:    cfg.Node.AdvertiseURL,
		MaxBodyBytes:    cfg.HTTP.MaxBodyBytes,
		ReadTimeout:     cfg.HTTP.ReadTimeout,
		WriteTimeout:    cfg.HTTP.WriteTimeout,
		IdleTimeout:     cfg.HTTP.IdleTimeout,
		ShutdownTimeout: cfg.HTTP.ShutdownTimeout,
		ShutdownDelay:   cfg.HTTP.ShutdownDelay,
		Registry:        rc,
		Cache: eureka.CacheConfig{UseReadOnly: cfg.ResponseCache.UseReadOnly,
			UpdateInterval: cfg.ResponseCache.UpdateInterval, AutoExpiration: cfg.ResponseCache.AutoExpiration,
			MaxBytes: cfg.ResponseCache.MaxBytes},
		Cluster: cc,
		Telemetry: telemetry.Config{
			ServiceName: cfg.Telemetry.ServiceName,
			InstanceID:  name,
			Tracing: telemetry.TracingConfig{Enabled: tr.Enabled, Exporter: tr.Exporter, Endpoint: tr.Endpoint,
				Headers: tr.Headers, Insecure: tr.Insecure, SampleRatio: tr.SampleRatio, Sampling: tr.Sampling},
		},
		MetricsPath:  metricsPath,
		Profiling:    cfg.Telemetry.Profiling.Enabled,
		MaxClockSkew: cfg.Registry.MaxClockSkew,
		Version:      buildVersion(),
	}
}

// startNode builds and starts a node with the plugins the configuration selects.
func startNode(ctx context.Context, cfg *config.Config, logger hclog.Logger, dev bool) (*node.Node, error) {
	return startNodeWith(ctx, cfg, logger, dev, nil)
}

// startNodeWith is startNode with a last word on the node's configuration (tests set a span
// exporter there).
func startNodeWith(ctx context.Context, cfg *config.Config, logger hclog.Logger, dev bool, mutate func(*node.Config)) (*node.Node, error) {
	deps, cleanup, err := buildDeps(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	ncfg := nodeConfig(cfg)
	if ncfg.Trust, err = nodeTrust(cfg, ncfg.Name); err != nil {
		cleanup()
		return nil, err
	}
	if cfg.Cluster.InsecurePeers && (len(cfg.Cluster.Peers) > 0 || cfg.Cluster.DNS.Name != "") {
		const msg = "cluster.insecure_peers is set: peers are not authenticated, so anyone who can reach this node " +
			"can replicate writes to it as a peer (cancel, re-register or take out of service any instance)"
		logger.Warn(msg)
		ncfg.Warnings = append(ncfg.Warnings, msg)
	}
	if mutate != nil {
		mutate(&ncfg)
	}
	n, err := node.New(ctx, ncfg, deps)
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		_ = n.Stop(context.Background())
		return nil, err
	}
	if !dev {
		// The peer set leaves this node's own URL out, and includes peers found in DNS.
		logger.Info("herald node serving", "eureka", n.URL(), "peers", len(n.Cluster().Peers().List()))
	}
	return n, nil
}
