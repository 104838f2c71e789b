// Package receive applies the items of an inbound replication batch to the local registry, with
// the per-item answers of Eureka's POST /peerreplication/batch (reference 2.4). Every item is a
// replicated write: it is applied here and never sent on.
package receive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/telemetry"
	"github.com/heraldhq/herald/sdk"
)

// Receiver applies replicated items to a registry. It is safe for concurrent use.
type Receiver struct {
	reg    *registry.Registry
	clock  registry.Clock
	log    hclog.Logger
	tracer trace.Tracer
}

// Option configures a Receiver.
type Option func(*Receiver)

// WithClock sets the clock that stamps a registration without lastDirtyTimestamp.
func WithClock(c registry.Clock) Option { return func(r *Receiver) { r.clock = c } }

// WithLogger sets the logger for refused and failed items.
func WithLogger(l hclog.Logger) Option { return func(r *Receiver) { r.log = l } }

// WithTracer records one span per applied item. An item that carries its task's traceparent gets
// a span that is a child of that task's span on the sending node, so one trace runs from the
// client's write to its apply on every peer; the span links to the batch request's own span.
func WithTracer(t trace.Tracer) Option { return func(r *Receiver) { r.tracer = t } }

// New returns a Receiver that applies items to reg.
func New(reg *registry.Registry, opts ...Option) *Receiver {
	r := &Receiver{reg: reg, clock: registry.SystemClock{}, log: hclog.NewNullLogger()}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Apply applies items in order and returns one result per item, in the same order. A failure or
// panic in one item makes that item's answer 500 and the next item is applied all the same, as
// Eureka does.
func (r *Receiver) Apply(ctx context.Context, items []sdk.Item) []sdk.ItemResult {
	out := make([]sdk.ItemResult, len(items))
	for i := range items {
		it := items[i]
		// Eureka upper-cases the application name of every item, as of every request path.
		it.App = strings.ToUpper(it.App)
		out[i] = r.applyItem(ctx, &it)
	}
	return out
}

// ApplyBatch implements eureka.BatchReceiver; it never fails as a whole.
func (r *Receiver) ApplyBatch(ctx context.Context, items []sdk.Item) ([]sdk.ItemResult, error) {
	return r.Apply(ctx, items), nil
}

func (r *Receiver) applyItem(ctx context.Context, it *sdk.Item) (res sdk.ItemResult) {
	if r.tracer != nil && sampled(it.TraceParent) {
		var span trace.Span
		ctx, span = r.startSpan(ctx, it)
		defer func() {
			span.SetAttributes(attribute.Int("herald.item.status_code", res.StatusCode))
			span.End()
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic while applying replicated item", "action", it.Action, "app", it.App, "id", it.ID, "panic", p)
			res = sdk.ItemResult{StatusCode: http.StatusInternalServerError}
		}
	}()
	var err error
	switch it.Action {
	case sdk.ActionRegister:
		res, err = r.register(ctx, it)
	case sdk.ActionHeartbeat:
		res, err = r.heartbeat(ctx, it)
	case sdk.ActionCancel:
		res = code(r.reg.Cancel(ctx, it.App, it.ID, registry.FromPeer))
	case sdk.ActionStatusUpdate:
		res, err = r.statusUpdate(ctx, it)
	case sdk.ActionDeleteStatusOverride:
		res, err = r.deleteOverride(ctx, it)
	default:
		r.log.Warn("unknown replicated action", "action", it.Action, "app", it.App, "id", it.ID)
		return sdk.ItemResult{StatusCode: http.StatusBadRequest}
	}
	if err != nil {
		r.log.Error("replicated item failed", "action", it.Action, "app", it.App, "id", it.ID, "error", err)
		return sdk.ItemResult{StatusCode: http.StatusInternalServerError}
	}
	return res
}

func (r *Receiver) startSpan(ctx context.Context, it *sdk.Item) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("herald.action", string(it.Action)),
			attribute.String("herald.app", it.App),
			attribute.String("herald.instance.id", it.ID),
		),
	}
	parent := ctx
	if it.TraceParent != "" {
		if batch := trace.SpanContextFromContext(ctx); batch.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: batch}))
		}
		parent = telemetry.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": it.TraceParent})
	}
	return r.tracer.Start(parent, "replication.apply "+string(it.Action), opts...)
}

// sampled reports whether a W3C traceparent ("00-<trace>-<span>-<flags>") has the sampled flag.
// Items of unsampled or untraced tasks get no apply span: with parent-based sampling it would be
// dropped anyway, and creating it costs on every replicated item.
func sampled(traceparent string) bool {
	n := len(traceparent)
	if n < 55 {
		return false
	}
	flags := traceparent[n-2:]
	return flags[1] == '1' || flags[1] == '3' || flags[1] == '5' || flags[1] == '7' ||
		flags[1] == '9' || flags[1] == 'b' || flags[1] == 'd' || flags[1] == 'f'
}

func code(found bool) sdk.ItemResult {
	if found {
		return sdk.ItemResult{StatusCode: http.StatusOK}
	}
	return sdk.ItemResult{StatusCode: http.StatusNotFound}
}

// register answers 200 even for an instance Eureka's validation refuses: Eureka ignores the
// result of the nested register call, and a peer must not retry what will never validate. The
// refused instance is not stored. An instance that registry.ValidateInstance refuses (one that
// would break every node's XML, or that the API could not serve back) gets 400 for that item
// alone: the sender logs it and drops it, the rest of the batch is applied.
func (r *Receiver) register(ctx context.Context, it *sdk.Item) (sdk.ItemResult, error) {
	if len(it.Instance) == 0 {
		return sdk.ItemResult{}, fmt.Errorf("register %s/%s: item has no instanceInfo", it.App, it.ID)
	}
	if !utf8.Valid(it.Instance) {
		// encoding/json would store U+FFFD for the bad bytes; refuse as the API does.
		r.log.Warn("replicated registration refused", "app", it.App, "id", it.ID, "reason", "instanceInfo is not valid UTF-8")
		return sdk.ItemResult{StatusCode: http.StatusBadRequest}, nil
	}
	d, decoded := eureka.TakeDecodedInstance(ctx, it.Instance)
	if !decoded {
		d.Instance, d.Err = codec.DecodeInstanceBare(it.Instance)
	}
	inst, err := d.Instance, d.Err
	if err != nil {
		return sdk.ItemResult{}, fmt.Errorf("register %s/%s: %w", it.App, it.ID, err)
	}
	if inst.LastDirtyTimestamp == 0 {
		inst.LastDirtyTimestamp = r.clock.Now().UnixMilli()
	}
	inst.StatusVersion = it.StatusVersion
	// Eureka validates against the instance's own app name: the item's appName is not used.
	if err := eureka.ValidateRegistration(inst.App, inst); err != nil {
		r.log.Warn("replicated registration refused", "app", it.App, "id", it.ID, "reason", err)
		return sdk.ItemResult{StatusCode: http.StatusOK}, nil
	}
	if err := registry.ValidateInstance(inst); err != nil {
		r.log.Warn("replicated registration refused", "app", it.App, "id", it.ID, "reason", err)
		return sdk.ItemResult{StatusCode: http.StatusBadRequest}, nil
	}
	if err := r.reg.Register(ctx, inst, registry.FromPeer); err != nil {
		if errors.Is(err, registry.ErrInvalid) {
			r.log.Warn("replicated registration refused", "app", it.App, "id", it.ID, "reason", err)
			return sdk.ItemResult{StatusCode: http.StatusBadRequest}, nil
		}
		return sdk.ItemResult{}, fmt.Errorf("register %s/%s: %w", it.App, it.ID, err)
	}
	return sdk.ItemResult{StatusCode: http.StatusOK}, nil
}

// heartbeat answers 200, 404 (the sender re-registers) or 409 with the stored copy as a bare
// instance (the sender adopts it).
func (r *Receiver) heartbeat(ctx context.Context, it *sdk.Item) (sdk.ItemResult, error) {
	ovr, ovrValid := registry.StatusUnknown, true
	if it.OverriddenStatus != "" {
		ovr, ovrValid = registry.ParseStatus(it.OverriddenStatus)
	}
	res := r.reg.Heartbeat(ctx, it.App, it.ID, registry.HeartbeatRequest{
		LastDirtyTimestamp: it.LastDirtyTimestamp,
		// The wire format has no null for a number; Eureka's sender omits it only when unknown.
		HasLastDirty:     it.LastDirtyTimestamp != 0,
		OverriddenStatus: ovr,
		Origin:           registry.FromPeer,
	})
	switch res.Code {
	case http.StatusNotFound:
		if !ovrValid {
			// Eureka fails when it stores the invalid override of a 404 heartbeat.
			return sdk.ItemResult{}, fmt.Errorf("heartbeat %s/%s: invalid overriddenStatus %q", it.App, it.ID, it.OverriddenStatus)
		}
	case http.StatusConflict:
		if res.Instance == nil {
			return sdk.ItemResult{}, fmt.Errorf("heartbeat %s/%s: conflict without the stored instance", it.App, it.ID)
		}
		return sdk.ItemResult{StatusCode: http.StatusConflict, Entity: codec.AppendInstanceBare(nil, res.Instance)}, nil
	}
	return sdk.ItemResult{StatusCode: res.Code}, nil
}

// statusUpdate looks the instance up first (404), then parses the status (500), as Eureka does.
func (r *Receiver) statusUpdate(ctx context.Context, it *sdk.Item) (sdk.ItemResult, error) {
	if _, ok := r.reg.Instance(it.App, it.ID); !ok {
		return code(false), nil
	}
	s, ok := registry.ParseStatus(it.Status)
	if !ok {
		return sdk.ItemResult{}, fmt.Errorf("status update %s/%s: invalid status %q", it.App, it.ID, it.Status)
	}
	return code(r.reg.UpdateStatus(ctx, it.App, it.ID, s, it.LastDirtyTimestamp, it.StatusVersion, registry.FromPeer)), nil
}

// deleteOverride removes an override and sets the status to the item's status (UNKNOWN when
// absent). Eureka's receiver fails on an item without lastDirtyTimestamp; so does this one, which
// keeps a sender that relies on it honest.
func (r *Receiver) deleteOverride(ctx context.Context, it *sdk.Item) (sdk.ItemResult, error) {
	if _, ok := r.reg.Instance(it.App, it.ID); !ok {
		return code(false), nil
	}
	if it.LastDirtyTimestamp == 0 {
		return sdk.ItemResult{}, fmt.Errorf("delete status override %s/%s: item has no lastDirtyTimestamp", it.App, it.ID)
	}
	s := registry.StatusUnknown
	if it.Status != "" {
		var ok bool
		if s, ok = registry.ParseStatus(it.Status); !ok {
			return sdk.ItemResult{}, fmt.Errorf("delete status override %s/%s: invalid status %q", it.App, it.ID, it.Status)
		}
	}
	return code(r.reg.DeleteStatusOverride(ctx, it.App, it.ID, s, it.LastDirtyTimestamp, it.StatusVersion, registry.FromPeer)), nil
}
