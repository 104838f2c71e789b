package replication

import (
	"context"
	"net/url"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/sdk"
)

// NewTracingObserver returns an Observer that gives every task, per peer, a span from its
// acceptance to the peer's acknowledgement (or its drop), with events for enqueued, batched,
// retried and acked; and every batch send a span linked to the task spans it carries. The task
// span's context travels in the item's traceparent, so the peer's apply span is its child.
//
// Only tasks whose write was traced (the request's span was sampled) get spans. When tracing is off
// it returns NopObserver, which costs nothing.
//
// The spans name the peer by its URL (herald.peer.url, its identity) and, once peerName knows it,
// by the node name the peer gave (herald.peer.name); peerName may be nil.
func NewTracingObserver(tracer trace.Tracer, enabled bool, peerName func(peerURL string) string) Observer {
	if !enabled || tracer == nil {
		return NopObserver{}
	}
	if peerName == nil {
		peerName = func(string) string { return "" }
	}
	return &tracingObserver{tracer: tracer, peerName: peerName, tasks: map[taskKey]trace.Span{}, batches: map[string]trace.Span{}}
}

type taskKey struct {
	peer string
	task *Task
}

type tracingObserver struct {
	tracer   trace.Tracer
	peerName func(string) string
	mu       sync.Mutex
	tasks    map[taskKey]trace.Span
	batches  map[string]trace.Span
}

// Only tasks whose write was sampled have spans: the others never touch the lock.

func (o *tracingObserver) span(peer string, t *Task) trace.Span {
	if !t.Span.IsSampled() {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tasks[taskKey{peer, t}]
}

func (o *tracingObserver) end(peer string, t *Task) trace.Span {
	if !t.Span.IsSampled() {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k := taskKey{peer, t}
	s := o.tasks[k]
	delete(o.tasks, k)
	return s
}

func (o *tracingObserver) Accepted(peer string, t *Task) {
	if !t.Span.IsSampled() {
		return
	}
	ctx := trace.ContextWithSpanContext(context.Background(), t.Span)
	_, s := o.tracer.Start(ctx, "replicate "+string(t.Action),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("herald.action", string(t.Action)),
			attribute.String("herald.app", t.App),
			attribute.String("herald.instance.id", t.Instance),
			attribute.String("herald.peer.url", peer),
			attribute.String("herald.task.id", t.ID),
		))
	o.nameSpan(s, peer)
	s.AddEvent("enqueued")
	o.mu.Lock()
	o.tasks[taskKey{peer, t}] = s
	o.mu.Unlock()
}

// nameSpan sets herald.peer.name on s when the peer's node name is known. A task span is named
// again when it ends, so one accepted before the first answer from the peer still gets it.
func (o *tracingObserver) nameSpan(s trace.Span, peer string) {
	if name := o.peerName(peer); name != "" {
		s.SetAttributes(attribute.String("herald.peer.name", name))
	}
}

func (o *tracingObserver) Dropped(peer string, t *Task, reason string) {
	if s := o.end(peer, t); s != nil {
		o.nameSpan(s, peer)
		s.AddEvent(reason)
		if reason != "superseded" {
			s.SetStatus(codes.Error, "dropped: "+reason)
		}
		s.SetAttributes(attribute.String("herald.outcome", reason))
		s.End()
	}
}

func (o *tracingObserver) Batched(peer, batchID string, ts []*Task) {
	var links []trace.Link
	for _, t := range ts {
		if s := o.span(peer, t); s != nil {
			s.AddEvent("batched", trace.WithAttributes(attribute.String("herald.batch.id", batchID)))
			links = append(links, trace.Link{SpanContext: s.SpanContext()})
		}
	}
	if len(links) == 0 {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("herald.peer.url", peer),
		attribute.String("herald.batch.id", batchID),
		attribute.Int("herald.batch.size", len(ts)),
	}
	// The send is a client call to the peer: OpenTelemetry's server.address and server.port name
	// the host it goes to (whatever the transport; an http one adds url.full).
	if u, err := url.Parse(peer); err == nil && u.Hostname() != "" {
		attrs = append(attrs, attribute.String("server.address", u.Hostname()))
		port := u.Port()
		if port == "" && u.Scheme == "https" {
			port = "443"
		} else if port == "" {
			port = "80"
		}
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", n))
		}
	}
	_, bs := o.tracer.Start(context.Background(), "send batch",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(attrs...))
	o.nameSpan(bs, peer)
	o.mu.Lock()
	o.batches[batchID] = bs
	o.mu.Unlock()
}

// BatchContext returns ctx carrying the batch's span, for the transport's Send.
func (o *tracingObserver) BatchContext(ctx context.Context, batchID string) context.Context {
	o.mu.Lock()
	bs := o.batches[batchID]
	o.mu.Unlock()
	if bs == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, bs)
}

func (o *tracingObserver) Sent(peer, batchID string, ts []*Task, items []sdk.Item, err error) {
	o.mu.Lock()
	bs := o.batches[batchID]
	delete(o.batches, batchID)
	o.mu.Unlock()
	if bs == nil {
		return
	}
	bytes := 0
	for _, it := range items {
		bytes += len(it.Instance) + len(it.Payload) + 64
	}
	bs.SetAttributes(attribute.Int("herald.batch.bytes", bytes))
	o.nameSpan(bs, peer) // learned from this very answer, when it was the first
	if err != nil {
		bs.RecordError(err)
		bs.SetStatus(codes.Error, sdk.ClassOf(err).String())
	}
	bs.End()
}

func (o *tracingObserver) Retried(peer string, t *Task, class sdk.FailureClass) {
	if s := o.span(peer, t); s != nil {
		s.AddEvent("retried", trace.WithAttributes(attribute.String("herald.failure", class.String())))
	}
}

func (o *tracingObserver) Acked(peer string, t *Task, status int) {
	if s := o.end(peer, t); s != nil {
		o.nameSpan(s, peer)
		s.AddEvent("acked", trace.WithAttributes(attribute.Int("herald.item.status_code", status)))
		s.SetAttributes(attribute.Int("herald.item.status_code", status))
		if status >= 300 && status != 404 && status != 409 {
			s.SetStatus(codes.Error, "peer answered "+strconv.Itoa(status))
		}
		s.End()
	}
}

// TraceParent returns the traceparent for the task's item to a peer: its task span's context.
func (o *tracingObserver) TraceParent(peer string, t *Task) string {
	if s := o.span(peer, t); s != nil {
		return traceParent(s.SpanContext())
	}
	return ""
}
