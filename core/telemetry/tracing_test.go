package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupOffByDefault(t *testing.T) {
	p, err := Setup(context.Background(), Config{Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("tracing must be off without config or OTEL_ endpoint")
	}
	_, span := p.Tracer("test").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Fatal("a disabled provider must not produce valid span contexts")
	}
}

func TestSetupEnvEndpointTurnsTracingOn(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
	} {
		p, err := Setup(context.Background(), Config{Env: envOf(env)})
		if err != nil {
			t.Fatalf("%v: %v", env, err)
		}
		if !p.Enabled() {
			t.Fatalf("%v: tracing should be on", env)
		}
		_ = p.Shutdown(context.Background())
	}
}

func TestSetupInMemoryExporterRecordsSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := Setup(context.Background(), Config{
		ServiceName: "node-a", InstanceID: "127.0.0.1:8761",
		Tracing: TracingConfig{SampleRatio: 1}, Exporter: exp, Env: envOf(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(context.Background(), "register")
	span.End()
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "register" {
		t.Fatalf("got %d spans: %+v", len(spans), spans)
	}
	var svc, inst string
	for _, kv := range spans[0].Resource.Attributes() {
		switch kv.Key {
		case "service.name":
			svc = kv.Value.AsString()
		case "service.instance.id":
			inst = kv.Value.AsString()
		}
	}
	if svc != "node-a" || inst != "127.0.0.1:8761" {
		t.Fatalf("resource: service.name=%q service.instance.id=%q", svc, inst)
	}
}

func TestSamplerFromEnv(t *testing.T) {
	cases := []struct {
		env     map[string]string
		ratio   float64
		want    string
		wantErr string
	}{
		{ratio: 1, want: "ParentBased{root:AlwaysOnSampler"},
		{ratio: 0, want: "ParentBased{root:AlwaysOffSampler"},
		{ratio: 0.01, want: "ParentBased{root:TraceIDRatioBased{0.01}"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, want: "AlwaysOnSampler"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, want: "ParentBased{root:TraceIDRatioBased{0.5}"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "bogus"}, wantErr: "unsupported sampler"},
	}
	for _, c := range cases {
		s, err := newSampler(c.ratio, envOf(c.env))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: error %v, want %q", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if !strings.HasPrefix(s.Description(), c.want) {
			t.Errorf("%v ratio %v: sampler %q, want prefix %q", c.env, c.ratio, s.Description(), c.want)
		}
	}
}

func TestUnknownExporterIsAnError(t *testing.T) {
	_, err := Setup(context.Background(), Config{Tracing: TracingConfig{Enabled: true, Exporter: "zipkin"}, Env: envOf(nil)})
	if err == nil || !strings.Contains(err.Error(), "zipkin") {
		t.Fatalf("got %v", err)
	}
}
