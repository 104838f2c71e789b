package telemetry

import (
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Kinds of work sampled separately. A trace's kind is decided by its root span, the node's HTTP
// server span of the request that started it; every span under it (task spans, batches, the
// peers' apply spans, plugin calls) follows the root's decision, on every node and plugin.
const (
	KindRegister    = "register"     // POST /apps/{app}, PUT .../metadata
	KindHeartbeat   = "heartbeat"    // PUT /apps/{app}/{id}
	KindCancel      = "cancel"       // DELETE /apps/{app}/{id}
	KindStatus      = "status"       // PUT and DELETE .../status
	KindReads       = "reads"        // GET and HEAD of the Eureka API, the dashboard, metrics
	KindAntiEntropy = "anti_entropy" // /herald/v1: digests, pulls, startup sync
	KindOther       = "other"        // anything else that starts a trace (custom actions, batches)
)

// DefaultSampling is the ratio of new traces per kind: every write that changes state, 1% of
// heartbeats (they are the bulk of the traffic and all alike), and no reads or anti-entropy
// checks unless a sampled parent asks for them.
var DefaultSampling = map[string]float64{
	KindRegister: 1, KindHeartbeat: 0.01, KindCancel: 1, KindStatus: 1,
	KindReads: 0, KindAntiEntropy: 0, KindOther: 1,
}

// kindSampler samples a new trace by the kind of its root span, at ratio × the kind's ratio; a
// span with a parent follows the parent.
type kindSampler struct {
	by map[string]sdktrace.Sampler
}

func newKindSampler(ratio float64, perKind map[string]float64) sdktrace.Sampler {
	s := kindSampler{by: map[string]sdktrace.Sampler{}}
	for k, def := range DefaultSampling {
		r := def
		if v, ok := perKind[k]; ok {
			r = v
		}
		s.by[k] = ratioSampler(r * ratio)
	}
	return sdktrace.ParentBased(s)
}

func ratioSampler(r float64) sdktrace.Sampler {
	switch {
	case r >= 1:
		return sdktrace.AlwaysSample()
	case r <= 0:
		return sdktrace.NeverSample()
	}
	return sdktrace.TraceIDRatioBased(r)
}

func (s kindSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return s.by[KindOf(p.Name, p.Kind)].ShouldSample(p)
}

func (s kindSampler) Description() string { return "HeraldKindSampler" }

// KindOf classifies a root span by its name (the node names server spans "METHOD /route").
func KindOf(name string, kind trace.SpanKind) string {
	method, route, ok := strings.Cut(name, " ")
	if !ok || kind != trace.SpanKindServer {
		return KindOther
	}
	switch {
	case strings.HasPrefix(route, "/herald/"):
		return KindAntiEntropy
	case method == "GET" || method == "HEAD":
		return KindReads
	case strings.HasSuffix(route, "/status"):
		return KindStatus
	case strings.HasSuffix(route, "/metadata"):
		return KindRegister
	case strings.HasSuffix(route, "/apps/{app}") && method == "POST":
		return KindRegister
	case strings.HasSuffix(route, "/apps/{app}/{id}") && method == "PUT":
		return KindHeartbeat
	case strings.HasSuffix(route, "/apps/{app}/{id}") && method == "DELETE":
		return KindCancel
	}
	return KindOther
}
