package telemetry

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// Late is a TracerProvider whose target is set after it was handed out: plugin processes are
// started, and their gRPC clients instrumented, before the node that owns the tracer provider
// exists. Until Bind, it is OpenTelemetry's no-op provider.
type Late struct {
	embedded.TracerProvider
	tp atomic.Pointer[trace.TracerProvider]
}

// Bind sets the provider every tracer of l delegates to from now on.
func (l *Late) Bind(tp trace.TracerProvider) { l.tp.Store(&tp) }

func (l *Late) current() trace.TracerProvider {
	if p := l.tp.Load(); p != nil {
		return *p
	}
	return noop.NewTracerProvider()
}

// Tracer implements trace.TracerProvider: the tracer looks its provider up at every span start.
func (l *Late) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &lateTracer{l: l, name: name, opts: opts}
}

type lateTracer struct {
	embedded.Tracer
	l    *Late
	name string
	opts []trace.TracerOption
}

func (t *lateTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.l.current().Tracer(t.name, t.opts...).Start(ctx, name, opts...)
}

// SampledOnly wraps a gRPC stats handler (otelgrpc's) so that it traces only calls made under a
// sampled span: a call into a plugin that no traced task caused (a flush policy's decision) makes
// no span, instead of starting a root trace of its own.
func SampledOnly(h stats.Handler) stats.Handler { return sampledOnly{h} }

type sampledOnly struct{ h stats.Handler }

type skipKey struct{}

func (s sampledOnly) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return context.WithValue(ctx, skipKey{}, true)
	}
	return s.h.TagRPC(ctx, info)
}

func (s sampledOnly) HandleRPC(ctx context.Context, st stats.RPCStats) {
	if ctx.Value(skipKey{}) == nil {
		s.h.HandleRPC(ctx, st)
	}
}

func (s sampledOnly) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return s.h.TagConn(ctx, info)
}

func (s sampledOnly) HandleConn(ctx context.Context, st stats.ConnStats) { s.h.HandleConn(ctx, st) }
