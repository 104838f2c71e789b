package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// cmdDev runs a local cluster of herald nodes in one process, each with its own registry, pipeline,
// listener and telemetry identity, replicating to each other over real HTTP on 127.0.0.1.
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "number of nodes")
	basePort := fs.Int("port", 8761, "port of the first node; the others follow")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	configPath := fs.String("config", "", "optional HCL file whose settings every dev node starts from")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: herald dev [flags]\n\nStarts a local cluster on 127.0.0.1 (ports 8761-8763 by default) with the built-in\nplugins, for development. Reads are never gated and the read-only response cache is off,\nso changes are visible at once. Stop with Ctrl-C.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *nodes < 1 || *nodes > 16 {
		fmt.Fprintln(stderr, "herald dev: -nodes must be between 1 and 16")
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "herald", Level: hclog.LevelFromString(*logLevel), Output: stderr})

	var urls []string
	for i := 0; i < *nodes; i++ {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/eureka/", *basePort+i))
	}
	// Peer authentication is on in dev as everywhere: a cluster secret made for this run, so a
	// forged batch posted to a dev node is refused as it would be in production. The client API
	// stays plain HTTP on 127.0.0.1, so curl and Eureka clients work without certificates.
	var auth []string
	if base, err := loadConfig(*configPath, nil, nil); err != nil {
		fmt.Fprintf(stderr, "herald dev: %v\n", err)
		return 1
	} else if !base.PeerAuthEnabled() && !base.Cluster.InsecurePeers {
		auth = append(auth, "cluster.peer_auth.secret="+peerauth.NewSecret())
	}
	var running []*node.Node
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for _, rn := range running {
			_ = rn.Stop(stopCtx)
		}
	}()
	for i := 0; i < *nodes; i++ {
		port := *basePort + i
		cfg, err := loadConfig(*configPath, nil, append([]string{
			"node.name=node-" + strconv.Itoa(i+1),
			"node.port=" + strconv.Itoa(port),
			"node.bind_addr=127.0.0.1",
			"cluster.peers=" + strings.Join(urls, ","),
			"cluster.startup_sync.retries=0",
			"cluster.startup_sync.wait_when_empty=0s",
			"response_cache.use_read_only=false",
			"cluster.anti_entropy.interval=5s",
		}, auth...))
		if err != nil {
			fmt.Fprintf(stderr, "herald dev: %v\n", err)
			return 1
		}
		rn, err := startNode(ctx, cfg, logger.Named(fmt.Sprintf("node-%d", i+1)), true)
		if err != nil {
			fmt.Fprintf(stderr, "herald dev: %v\n", err)
			return 1
		}
		running = append(running, rn)
	}
	fmt.Fprintf(stdout, "herald dev: %d nodes replicating to each other\n", len(running))
	for i, rn := range running {
		root := strings.TrimSuffix(rn.URL(), "eureka/")
		fmt.Fprintf(stdout, "  node-%d  Eureka API %s   dashboard %s   metrics %smetrics\n", i+1, rn.URL(), root, root)
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "herald dev: stopping")
	return 0
}
