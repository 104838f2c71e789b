package node

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// instrument wraps the mux with OpenTelemetry's HTTP server instrumentation when tracing is on, so
// each client request gets a server span that the task spans of its replicated write hang under.
// When tracing is off the handler is returned as it is: no cost.
func (n *Node) instrument(h http.Handler) http.Handler {
	if !n.tel.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "herald",
		otelhttp.WithTracerProvider(n.tel.TracerProvider()),
		otelhttp.WithPropagators(n.tel.TextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + routeOf(r.URL.Path)
		}),
	)
}

// routeOf turns a request path into a low-cardinality span name: ids and app names are replaced by
// placeholders.
func routeOf(path string) string {
	segs := splitSegs(path)
	// Find the segment after the Eureka prefix (eureka, eureka/v2, v2).
	i := 0
	for i < len(segs) && (segs[i] == "eureka" || segs[i] == "v2" || segs[i] == "v1") {
		i++
	}
	rest := segs[i:]
	prefix := "/" + joinSegs(segs[:i])
	if len(rest) == 0 {
		return prefix
	}
	switch rest[0] {
	case "apps":
		switch {
		case len(rest) == 1:
			return prefix + "/apps"
		case len(rest) == 2 && rest[1] == "delta":
			return prefix + "/apps/delta"
		case len(rest) == 2:
			return prefix + "/apps/{app}"
		case len(rest) == 3:
			return prefix + "/apps/{app}/{id}"
		default:
			return prefix + "/apps/{app}/{id}/" + rest[3]
		}
	case "instances", "vips", "svips":
		return prefix + "/" + rest[0] + "/{id}"
	}
	return "/" + joinSegs(segs)
}

func splitSegs(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

func joinSegs(s []string) string { return strings.Join(s, "/") }
