// Package telemetry sets up herald's OpenTelemetry tracing and its Prometheus metrics.
//
// Tracing is off by default and then costs nothing: the tracer provider is OpenTelemetry's no-op
// one. It is turned on by the `telemetry { tracing { enabled = true } }` block, or, as in every
// OpenTelemetry SDK, by setting OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
// The other standard variables (OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_TRACES_SAMPLER and _ARG, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) are honoured too, and
// win over the file, as operators expect of them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heraldhq/herald/sdk"
)

// TracingConfig is the `telemetry { tracing {...} }` block.
type TracingConfig struct {
	Enabled bool
	// Exporter is "otlp-grpc" (default) or "otlp-http".
	Exporter string
	// Endpoint is host:port for otlp-grpc, a URL or host:port for otlp-http. Empty: the exporter's
	// default (localhost:4317 / localhost:4318) or the OTEL_ variables.
	Endpoint string
	Headers  map[string]string
	Insecure bool
	// SampleRatio is the parent-based ratio of new traces that are sampled (0..1), multiplied by
	// the ratio of the trace's kind (Sampling).
	SampleRatio float64
	// Sampling overrides DefaultSampling per kind of work (register, heartbeat, cancel, status,
	// reads, anti_entropy, other). OTEL_TRACES_SAMPLER, when set, replaces all of it.
	Sampling map[string]float64
}

// Config is what Setup needs.
type Config struct {
	// ServiceName is service.name; InstanceID is service.instance.id (the node's name).
	ServiceName string
	InstanceID  string
	Tracing     TracingConfig
	// Exporter, when set, replaces the OTLP exporter (tests use an in-memory one).
	Exporter sdktrace.SpanExporter
	// Env is the environment to read OTEL_ variables from (nil: the process environment).
	Env func(string) string
}

// Provider holds the tracer provider and the propagator every component uses.
type Provider struct {
	tp         trace.TracerProvider
	sdk        *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// Propagator is the W3C trace-context propagator herald uses everywhere: on HTTP between nodes, in
// each replicated item's traceparent, and on the gRPC hop into plugin processes. It is explicit so a
// plugin's spans never land in a trace of their own because a global propagator was not set.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Disabled returns a Provider that records nothing.
func Disabled() *Provider {
	return &Provider{tp: noop.NewTracerProvider(), propagator: Propagator}
}

// Setup builds the tracer provider from cfg and the OTEL_ environment variables.
func Setup(ctx context.Context, cfg Config) (*Provider, error) {
	getenv := cfg.Env
	if getenv == nil {
		getenv = os.Getenv
	}
	tc := cfg.Tracing
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		tc.Enabled = true
	}
	if getenv("OTEL_SDK_DISABLED") == "true" {
		tc.Enabled = false
	}
	if !tc.Enabled && cfg.Exporter == nil {
		return Disabled(), nil
	}
	if p := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p != "" {
		tc.Exporter = protocolExporter(p)
	} else if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" {
		tc.Exporter = protocolExporter(p)
	}
	exp := cfg.Exporter
	if exp == nil {
		var err error
		exp, err = newExporter(ctx, tc, getenv)
		if err != nil {
			return nil, err
		}
	}
	sampler, err := newSampler(tc.SampleRatio, tc.Sampling, getenv)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if v := getenv("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	if name == "" {
		name = "herald"
	}
	attrs := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(name)),
		resource.WithTelemetrySDK(),
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(cfg.InstanceID)))
	}
	// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME come last so operators can override.
	attrs = append(attrs, resource.WithFromEnv())
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		// A batch span links to every task it carries; Eureka's batches hold up to 250 tasks, and
		// the SDK's default of 128 links would silently drop the rest.
		sdktrace.WithRawSpanLimits(spanLimits()),
	}
	if cfg.InstanceID != "" {
		// Every span names its node in a searchable attribute (Jaeger searches span tags, and
		// every node reports the same service.name).
		opts = append(opts, sdktrace.WithSpanProcessor(sdk.NodeSpanProcessor(cfg.InstanceID)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Provider{tp: tp, sdk: tp, propagator: Propagator}, nil
}

func spanLimits() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	l.LinkCountLimit = 1024
	return l
}

func protocolExporter(p string) string {
	if strings.HasPrefix(p, "http") {
		return "otlp-http"
	}
	return "otlp-grpc"
}

func newExporter(ctx context.Context, tc TracingConfig, getenv func(string) string) (sdktrace.SpanExporter, error) {
	envEndpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch tc.Exporter {
	case "", "otlp-grpc":
		var opts []otlptracegrpc.Option
		if tc.Endpoint != "" && !envEndpoint {
			opts = append(opts, otlptracegrpc.WithEndpoint(tc.Endpoint))
		}
		if tc.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(tc.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(tc.Headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp-grpc exporter: %w", err)
		}
		return exp, nil
	case "otlp-http":
		var opts []otlptracehttp.Option
		if tc.Endpoint != "" && !envEndpoint {
			if strings.Contains(tc.Endpoint, "://") {
				opts = append(opts, otlptracehttp.WithEndpointURL(tc.Endpoint))
			} else {
				opts = append(opts, otlptracehttp.WithEndpoint(tc.Endpoint))
			}
		}
		if tc.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(tc.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(tc.Headers))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp-http exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("telemetry: tracing.exporter: unknown exporter %q (want otlp-grpc or otlp-http)", tc.Exporter)
}

// newSampler honours OTEL_TRACES_SAMPLER/_ARG over the configured parent-based ratio.
func newSampler(ratio float64, perKind map[string]float64, getenv func(string) string) (sdktrace.Sampler, error) {
	arg := func(def float64) (float64, error) {
		s := getenv("OTEL_TRACES_SAMPLER_ARG")
		if s == "" {
			return def, nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			return 0, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG: want a ratio in [0,1], got %q", s)
		}
		return v, nil
	}
	switch s := getenv("OTEL_TRACES_SAMPLER"); s {
	case "":
		return newKindSampler(ratio, perKind), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		r, err := arg(1)
		return sdktrace.TraceIDRatioBased(r), err
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := arg(1)
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), err
	default:
		return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER: unsupported sampler %q", s)
	}
}

// TracerProvider returns the provider (a no-op one when tracing is off).
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Tracer returns a tracer with herald's instrumentation name for the given component.
func (p *Provider) Tracer(component string) trace.Tracer {
	return p.tp.Tracer("github.com/heraldhq/herald/" + component)
}

// TextMapPropagator returns the W3C propagator.
func (p *Provider) TextMapPropagator() propagation.TextMapPropagator { return p.propagator }

// Enabled reports whether spans are recorded.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Shutdown flushes pending spans.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// ForceFlush exports every finished span now (tests and graceful stops use it).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}
