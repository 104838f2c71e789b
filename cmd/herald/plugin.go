package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/heraldhq/herald/sdk"
)

// serveOption serves a built-in of the catalog (builtins) as its own process: the same
// constructor, configured by the same path, as in-process.
func serveOption(kind string, impl any) sdk.ServeOption {
	switch kind {
	case sdk.KindTransport:
		return sdk.WithTransport(impl.(sdk.Transport))
	case sdk.KindFlushPolicy:
		return sdk.WithFlushPolicy(impl.(sdk.FlushPolicy))
	}
	return sdk.WithActionHandler(impl.(sdk.ActionHandler))
}

// cmdPlugin serves a built-in plugin as a separate process. The plugin host starts it; it is not
// meant to be run by hand (the go-plugin handshake refuses a terminal).
func cmdPlugin(args []string, stdout, stderr io.Writer) int {
	help := false
	for _, a := range args {
		help = help || isHelp(a)
	}
	if help || len(args) != 3 || args[0] != "serve" {
		w, code := stderr, 2
		if help {
			w, code = stdout, 0
		}
		fmt.Fprintln(w, "Usage: herald plugin serve KIND NAME\n\nServes a built-in plugin as its own process; herald's plugin host runs this itself when a\nplugin block sets out_of_process = true. Built in:")
		for _, kind := range slices.Sorted(maps.Keys(builtins)) {
			for _, name := range slices.Sorted(maps.Keys(builtins[kind])) {
				fmt.Fprintf(w, "  %s %s\n", kind, name)
			}
		}
		return code
	}
	newPlugin, ok := builtins[args[1]][args[2]]
	if !ok {
		fmt.Fprintf(stderr, "herald plugin serve: no built-in %s plugin named %q\n", args[1], args[2])
		return 2
	}
	sdk.Serve(serveOption(args[1], newPlugin()))
	return 0
}
