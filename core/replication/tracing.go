package replication

import (
	"context"
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
func NewTracingObserver(tracer trace.Tracer, enabled bool) Observer {
	if !enabled || tracer == nil {
		return NopObserver{}
	}
	return &tracingObserver{tracer: tracer, tasks: map[taskKey]trace.Span{}, batches: map[string]trace.Span{}}
}

type taskKey struct {
	peer string
	task *Task
}

type tracingObserver struct {
	tracer  trace.Tracer
	mu      sync.Mutex
	tasks   map[taskKey]trace.Span
	batches map[string]trace.Span
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
			attribute.String("herald.peer", peer),
			attribute.String("herald.task.id", t.ID),
		))
	s.AddEvent("enqueued")
	o.mu.Lock()
	o.tasks[taskKey{peer, t}] = s
	o.mu.Unlock()
}

func (o *tracingObserver) Dropped(peer string, t *Task, reason string) {
	if s := o.end(peer, t); s != nil {
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
	_, bs := o.tracer.Start(context.Background(), "send batch",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("herald.peer", peer),
			attribute.String("herald.batch.id", batchID),
			attribute.Int("herald.batch.size", len(ts)),
		))
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
