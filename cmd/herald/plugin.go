package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	eurekahandler "github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/plugins/flush/sizeorage"
	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
)

// servable are the built-in plugins `herald plugin serve KIND NAME` can run as their own process.
var servable = map[string]map[string]func() sdk.ServeOption{
	sdk.KindTransport: {
		"http": func() sdk.ServeOption { return sdk.WithTransport(httptransport.NewPlugin()) },
		"grpc": func() sdk.ServeOption { return sdk.WithTransport(grpctransport.NewPlugin()) },
	},
	sdk.KindActionHandler: {
		"eureka": func() sdk.ServeOption { return sdk.WithActionHandler(eurekahandler.New()) },
	},
	sdk.KindFlushPolicy: {
		"size-or-age": func() sdk.ServeOption { return sdk.WithFlushPolicy(sizeorage.New()) },
		"adaptive":    func() sdk.ServeOption { return sdk.WithFlushPolicy(adaptive.New(adaptive.DefaultConfig())) },
	},
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
		for _, kind := range slices.Sorted(maps.Keys(servable)) {
			for _, name := range slices.Sorted(maps.Keys(servable[kind])) {
				fmt.Fprintf(w, "  %s %s\n", kind, name)
			}
		}
		return code
	}
	opt, ok := servable[args[1]][args[2]]
	if !ok {
		fmt.Fprintf(stderr, "herald plugin serve: no built-in %s plugin named %q\n", args[1], args[2])
		return 2
	}
	sdk.Serve(opt())
	return 0
}
