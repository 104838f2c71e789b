package sdk

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Tracing in a plugin process.
//
// Every call from herald into a plugin carries the caller's W3C trace context in gRPC metadata,
// and every call from a plugin back into herald (the Host service) carries the plugin's. When
// herald traces (telemetry.tracing in its configuration, or the OTEL_EXPORTER_OTLP_ENDPOINT
// variable), it hands the exporter settings to the plugin at Configure, and the SDK exports the
// plugin's spans there, under service.name "<herald's service name>-plugins". The plugin never
// starts a trace of its own: its spans exist only inside a trace that herald sampled, so a plugin
// costs nothing to trace when herald does not.
//
// The SDK makes a span around every call into the plugin (plugin.transport.Send,
// plugin.action_handler.Receive, ...); a plugin adds its own with StartSpan.

const tracerName = "github.com/heraldhq/herald/sdk"

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// InjectTraceContext writes the W3C trace context of ctx's span (traceparent, tracestate) into h,
// so the receiving node's spans for a request join the sender's trace. A transport that speaks
// HTTP calls it on every batch request; ctx is the one Send received, which carries the batch
// span. Nothing is written when ctx has no sampled span.
func InjectTraceContext(ctx context.Context, h http.Header) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// TraceParentOf returns the W3C traceparent of ctx's span, "" when it has no sampled span. A
// transport that carries batches over its own protocol sends it with each batch.
func TraceParentOf(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx carrying the remote span of a W3C traceparent (ctx unchanged when
// tp is empty or malformed): the receiving side of a transport hands it to Host.Receive, so the
// node's handling of the batch joins the sender's trace.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

var tracingOnce sync.Once

// setupTracing installs the plugin's tracer provider from the settings herald sent at Configure.
// It runs once per process; without settings (and without OTEL_ variables) nothing is exported.
func setupTracing(t Telemetry, pluginName, nodeName string) {
	tracingOnce.Do(func() {
		envEndpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
		if t.Protocol == "" && t.Endpoint == "" && !envEndpoint {
			return
		}
		ctx := context.Background()
		var exp sdktrace.SpanExporter
		var err error
		httpProto := strings.Contains(t.Protocol, "http") ||
			(t.Protocol == "" && strings.HasPrefix(os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http"))
		if httpProto {
			var opts []otlptracehttp.Option
			switch {
			case strings.Contains(t.Endpoint, "://"):
				opts = append(opts, otlptracehttp.WithEndpointURL(t.Endpoint))
			case t.Endpoint != "":
				opts = append(opts, otlptracehttp.WithEndpoint(t.Endpoint), otlptracehttp.WithInsecure())
			}
			exp, err = otlptracehttp.New(ctx, opts...)
		} else {
			var opts []otlptracegrpc.Option
			switch {
			case strings.Contains(t.Endpoint, "://"):
				opts = append(opts, otlptracegrpc.WithEndpointURL(t.Endpoint))
			case t.Endpoint != "":
				opts = append(opts, otlptracegrpc.WithEndpoint(t.Endpoint), otlptracegrpc.WithInsecure())
			}
			exp, err = otlptracegrpc.New(ctx, opts...)
		}
		if err != nil {
			return
		}
		service := t.ServiceName
		if service == "" {
			service = os.Getenv("OTEL_SERVICE_NAME")
		}
		if service == "" {
			service = "herald"
		}
		if !strings.HasSuffix(service, "-plugins") {
			service += "-plugins"
		}
		attrs := []attribute.KeyValue{semconv.ServiceName(service),
			attribute.String("herald.plugin", pluginName), attribute.Int("process.pid", os.Getpid())}
		var procs []sdktrace.TracerProviderOption
		if nodeName != "" {
			// The node's identity, as the node's own spans carry it.
			attrs = append(attrs, semconv.ServiceInstanceID(nodeName))
			procs = append(procs, sdktrace.WithSpanProcessor(NodeSpanProcessor(nodeName)))
		}
		res, _ := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
		tp := sdktrace.NewTracerProvider(append(procs,
			// Parent-based with no root sampling: a plugin span exists only inside herald's trace.
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
			// A plugin can be killed at any time: export often.
			sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)),
			sdktrace.WithResource(res))...)
		otel.SetTracerProvider(tp)
	})
}

// StartSpan starts a span in the plugin, a child of the span in ctx (which, inside a call from
// herald, is herald's). End it with span.End().
func StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan records err on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// serverTracing is the gRPC server option of a plugin process: it extracts herald's trace
// context from every call.
func serverTracing() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithPropagators(propagator)))
}

// clientTracing is the dial option of a plugin's calls back into herald.
func clientTracing() grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(propagator)))
}

// TraceTransport returns t with a span around every Send (for transports used in-process, or
// wrapped by another transport); plugin processes get these spans without it.
func TraceTransport(t Transport) Transport { return tracedTransport{t} }

type tracedTransport struct{ t Transport }

func (tt tracedTransport) Send(ctx context.Context, peer Peer, b Batch) (rs []ItemResult, err error) {
	ctx, span := StartSpan(ctx, "plugin.transport.Send", attribute.String("herald.peer.url", peer.Name),
		attribute.String("herald.batch.id", b.ID), attribute.Int("herald.batch.size", len(b.Items)))
	defer func() { endSpan(span, err) }()
	return tt.t.Send(ctx, peer, b)
}

// TraceActionHandler returns h with a span around every Accept and Receive.
func TraceActionHandler(h ActionHandler) ActionHandler { return tracedHandler{h} }

type tracedHandler struct{ h ActionHandler }

func (th tracedHandler) Actions() []ActionSpec { return th.h.Actions() }

func (th tracedHandler) Accept(ctx context.Context, it Item) (out Item, err error) {
	ctx, span := StartSpan(ctx, "plugin.action_handler.Accept", attribute.String("herald.action", string(it.Action)),
		attribute.String("herald.app", it.App), attribute.String("herald.instance.id", it.ID))
	defer func() { endSpan(span, err) }()
	return th.h.Accept(ctx, it)
}

func (th tracedHandler) Receive(ctx context.Context, req ReceiveRequest) (rs []ItemResult, err error) {
	ctx, span := StartSpan(ctx, "plugin.action_handler.Receive", attribute.String("herald.mode", req.Mode.String()),
		attribute.String("herald.action", string(req.Action)), attribute.Int("herald.items", len(req.Items)))
	defer func() { endSpan(span, err) }()
	return th.h.Receive(ctx, req)
}

// TraceFlushPolicy returns p with a span around every Decide made inside a trace.
func TraceFlushPolicy(p FlushPolicy) FlushPolicy { return tracedPolicy{p} }

type tracedPolicy struct{ p FlushPolicy }

func (tp tracedPolicy) Decide(ctx context.Context, s PendingState) (d FlushDecision, err error) {
	ctx, span := StartSpan(ctx, "plugin.flush_policy.Decide", attribute.Int("herald.pending", s.Count))
	defer func() { endSpan(span, err) }()
	return tp.p.Decide(ctx, s)
}

// NodeSpanProcessor returns a span processor that sets herald.node, the node's name, on every span
// as it starts: every node reports the same service.name, and Jaeger searches span attributes.
func NodeSpanProcessor(node string) sdktrace.SpanProcessor {
	return nodeAttribute{attribute.String("herald.node", node)}
}

// nodeAttribute is NodeSpanProcessor's processor.
type nodeAttribute struct{ kv attribute.KeyValue }

func (p nodeAttribute) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) { s.SetAttributes(p.kv) }
func (nodeAttribute) OnEnd(sdktrace.ReadOnlySpan)                           {}
func (nodeAttribute) Shutdown(context.Context) error                        { return nil }
func (nodeAttribute) ForceFlush(context.Context) error                      { return nil }
