// Command herald is the herald service registry: one binary for a node (`server`), a local
// three-node cluster (`dev`), configuration checks, plugin processes and the load generator.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `herald: a service registry in the line of Netflix Eureka, built from plugins.

Usage:
  herald <command> [flags]

Commands:
  server            run one node:  herald server -config config.hcl
  dev               run a local three-node cluster on 127.0.0.1:8761-8763
  config validate   check a configuration file:  herald config validate config.hcl
  plugin serve      serve a built-in plugin as its own process (the plugin host runs it)
  tls               make a cluster CA, node certificates and a cluster secret:  herald tls -h
  bench             load-generate against herald or any Eureka server: herald bench -scenario register URL
  version           print the version

Run "herald <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "server":
		return cmdServer(ctx, args[1:], stdout, stderr)
	case "dev":
		return cmdDev(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "plugin":
		return cmdPlugin(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "tls":
		return cmdTLS(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", args[0], usage)
	return 2
}
