package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

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
		{ratio: 1, want: "ParentBased{root:HeraldKindSampler"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, want: "AlwaysOnSampler"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, want: "ParentBased{root:TraceIDRatioBased{0.5}"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "bogus"}, wantErr: "unsupported sampler"},
	}
	for _, c := range cases {
		s, err := newSampler(c.ratio, nil, envOf(c.env))
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

// Sampling per kind of work: a new trace is sampled at the global ratio times its kind's; a span
// with a parent follows it whatever its kind.
func TestKindSampling(t *testing.T) {
	s, err := newSampler(1, map[string]float64{KindCancel: 0}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	sampled := func(name string, parent trace.SpanContext) int {
		n := 0
		for i := 0; i < 2000; i++ {
			var tid trace.TraceID
			binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
			binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
			ctx := context.Background()
			if parent.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
			}
			r := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: name, Kind: trace.SpanKindServer})
			if r.Decision == sdktrace.RecordAndSample {
				n++
			}
		}
		return n
	}
	if n := sampled("POST /eureka/apps/{app}", trace.SpanContext{}); n != 2000 {
		t.Errorf("registrations: %d of 2000 sampled, want all", n)
	}
	if n := sampled("PUT /eureka/apps/{app}/{id}", trace.SpanContext{}); n > 100 {
		t.Errorf("heartbeats: %d of 2000 sampled, want about 1%%", n)
	}
	if n := sampled("GET /herald/v1/digest", trace.SpanContext{}); n != 0 {
		t.Errorf("digest checks: %d sampled, want none", n)
	}
	if n := sampled("GET /eureka/apps", trace.SpanContext{}); n != 0 {
		t.Errorf("reads: %d sampled, want none", n)
	}
	if n := sampled("DELETE /eureka/apps/{app}/{id}", trace.SpanContext{}); n != 0 {
		t.Errorf("cancels with ratio 0: %d sampled", n)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	if n := sampled("GET /herald/v1/digest", parent); n != 2000 {
		t.Errorf("a digest check under a sampled parent: %d of 2000 sampled", n)
	}
}
