package node

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrument gives each request a server span when tracing is on, so the task spans of a
// replicated write hang under the client's request. It is deliberately lean (otelhttp wraps the
// body, computes every semantic-convention attribute and records metrics on each request, which
// measurably slowed the write path even at 1% sampling): it extracts the W3C context, starts one
// span and records the status code. When tracing is off the handler is returned as it is.
func (n *Node) instrument(h http.Handler) http.Handler {
	if !n.tel.Enabled() {
		return h
	}
	tracer := n.tel.Tracer("http")
	prop := n.tel.TextMapPropagator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method+" "+routeOf(r.URL.Path), trace.WithSpanKind(trace.SpanKindServer))
		if !span.IsRecording() {
			h.ServeHTTP(w, r.WithContext(ctx))
			span.End()
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.Int("http.response.status_code", sw.code),
		)
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
		span.End()
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
