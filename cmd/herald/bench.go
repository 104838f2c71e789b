package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/heraldhq/herald/cmd/herald/internal/bench"
)

const benchUsage = `Usage: herald bench [flags] URL [URL...]

Drives herald, or any Eureka-compatible server, over real HTTP with -connections keep-alive
connections, and prints throughput, latency percentiles and errors by kind. URL is a node's Eureka
base URL, e.g. http://127.0.0.1:8761/eureka/ (a URL without a path gets /eureka/). Instances,
apps and requests are spread over the URLs.

Scenarios (-scenario):
  register     registers distinct instances over -apps apps, then registers them again
  heartbeat    registers -instances during warm-up, then heartbeats them
  mixed        a fleet of -instances heartbeating in turn (every -heartbeat-interval), with ~1%
               cancels (re-registered on their next turn) and ~1% status changes
  fetch        full GET apps and/or GET apps/delta (-fetch) against -instances registered in warm-up
  propagation  registers at the first URL and polls the others (GET apps/{APP}/{ID} until 200):
               time until visible at each node
  memory       registers -instances at the first URL and reports each node's RSS per instance,
               read from /metrics at the URL's origin (Prometheus process_resident_memory_bytes)

Instances are registered under the apps HERALD-BENCH-0, HERALD-BENCH-1, ... and deregistered at
the end of the run (also after Ctrl-C), unless -keep.

With -rate R the load is open-loop: request i is due at start + i/R, and its latency counts from
that intended time, so a stalled server shows up in the percentiles (no coordinated omission).
With -rate 0 each connection sends its next request as soon as the previous one is answered.

Examples:
  herald bench -scenario register -connections 16 -duration 10s http://127.0.0.1:8761/eureka/
  herald bench -scenario heartbeat -rate 2000 http://127.0.0.1:8761/eureka/
  herald bench -scenario propagation -rate 1000 http://127.0.0.1:8761/eureka/ http://127.0.0.1:8762/eureka/
  herald bench -scenario memory -instances 100000 http://127.0.0.1:8761/eureka/

Flags:
`

// cmdBench runs `herald bench`: 2 for bad flags, 1 when the run could not be carried out.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("herald bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "scenario: "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "keep-alive connections (concurrent requests)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "open-loop rate in requests/s; 0 = closed loop, as fast as possible")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to measure (after warm-up)")
	fs.Int64Var(&cfg.Requests, "requests", cfg.Requests, "stop after this many requests (0 = no limit; without -duration, the only limit)")
	fs.IntVar(&cfg.Instances, "instances", cfg.Instances, "instances to register (the id space of register, heartbeat and mixed)")
	fs.IntVar(&cfg.Apps, "apps", cfg.Apps, "applications the instances are spread over")
	fs.IntVar(&cfg.Payload, "payload", cfg.Payload, "approximate registration body size in bytes, reached by padding the metadata (0 = natural size: about 810 in JSON, 1080 in XML)")
	fs.StringVar(&cfg.Format, "format", cfg.Format, "request and response bodies: json or xml")
	fs.StringVar(&cfg.Fetch, "fetch", cfg.Fetch, "fetch scenario: full, delta or both")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "mixed/heartbeat: each instance heartbeats this often, which sets the rate to instances/interval (default: whatever -rate gives)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before measuring (after any pre-registration)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-request timeout")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the mixed scenario's choice of operations")
	fs.DurationVar(&cfg.Late, "late", cfg.Late, "open loop: count requests that start later than this after their intended time")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", cfg.PollInterval, "propagation: interval between polls (widened to a tenth of the time already waited)")
	fs.Float64Var(&cfg.WatchRate, "watch-rate", cfg.WatchRate, "propagation: writes per second to watch at the other nodes, evenly spaced (0 = every write; each watched write is polled)")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "memory: wait this long after the load before reading RSS")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "PEM CA certificate to trust for https URLs (a herald cluster with a tls block)")
	jsonOut := fs.Bool("json", false, "write the summary as JSON to stdout (progress stays on stderr)")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the registered instances in the registry (by default the run deregisters them at the end)")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	// Flags may follow the URLs: parse, take one URL, parse the rest.
	var urls []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		urls = append(urls, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["requests"] && !set["duration"] {
		cfg.Duration = 0 // -requests alone is the stop condition
	}
	if *quiet {
		cfg.Progress = 0
	}
	cfg.URLs = urls
	res, err := bench.Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "herald bench: %v\n", err)
		if bench.IsUsage(err) {
			fmt.Fprintln(stderr, `Run "herald bench -h" for the flags.`)
			return 2
		}
		return 1
	}
	if *jsonOut {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herald bench: %v\n", err)
		return 1
	}
	return 0
}
