package eureka

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// serveBatch is POST /peerreplication/batch (reference 2.4). Every item is a replicated write
// whatever the headers say; the Java peer does not even send the replication marker here.
func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request) {
	if h.batch == nil {
		plainText(w, http.StatusNotImplemented, "peer replication is not enabled on this node")
		return
	}
	if !h.peer(r) {
		// A batch is applied as peer writes: from anyone but an authenticated peer it would
		// bypass admission and could forge any instance's state on every node.
		plainText(w, http.StatusForbidden, "forbidden: peer replication batches are accepted only from authenticated peers")
		return
	}
	f, latin1, ok := requestFormat(r.Header.Get("Content-Type"))
	if !ok || f != codec.JSON {
		plainText(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q: the batch endpoint takes application/json", r.Header.Get("Content-Type")))
		return
	}
	// Not pooled: decoded items keep slices of the body (instanceInfo as raw JSON), and a
	// receiver may hold on to them.
	body, err := h.readBody(r, new(bytes.Buffer))
	if err != nil {
		h.bodyFailed(w, err)
		return
	}
	if latin1 {
		body = latin1ToUTF8(body)
	}
	// One pass: the items, and each instanceInfo decoded on the way for the receiver (see
	// TakeDecodedInstance), rather than encoding/json for the list and again for each instance.
	batch, err := codec.DecodeReplicationList(body)
	if err != nil {
		parseError(w, codec.JSON)
		return
	}
	items := batch.Items
	results, err := h.applyBatch(r.WithContext(withDecodedInstances(r.Context(), batch)), items)
	if err != nil {
		// Nothing is lost: the sender treats 503 as congestion and sends the batch again.
		h.log.Warn("inbound batch refused for now", "items", len(items), "error", err)
		plainText(w, http.StatusServiceUnavailable, "batch not applied, retry: "+err.Error())
		return
	}
	if len(results) != len(items) {
		// A sender ignores a response whose length differs from its batch; say so loudly here.
		h.log.Error("batch receiver returned a wrong number of results", "items", len(items), "results", len(results))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	out := eurekawire.AppendReplicationListResponse(make([]byte, 0, 32+24*len(results)), results)
	writeEncoded(w, r, http.StatusOK, contentJSON, out)
}

// applyBatch hands the items to the receiver, within the clock skew (ApplyWithinSkew).
func (h *Handler) applyBatch(r *http.Request, items []sdk.Item) ([]sdk.ItemResult, error) {
	return ApplyWithinSkew(r.Context(), items, h.skew, h.clock.Now(), h.batch.ApplyBatch, func(it sdk.Item, err error) {
		h.log.Warn("replicated item refused", "app", it.App, "id", it.ID, "action", it.Action, "error", err)
	})
}

// ApplyWithinSkew applies items with apply, except those whose lastDirtyTimestamp or
// statusVersion (the accepting node's clock too) lies more than skew ahead of now: each of those
// is answered 400 on its own, and refused (when not nil) is told why. A peer's clock gone wrong
// must not give a record a timestamp no later real write can beat. Every receiving side uses it,
// the batch endpoint and a transport plugin's (sdk.Host.Receive), so that a batch is refused
// alike whichever way it came. skew <= 0 checks nothing.
func ApplyWithinSkew(ctx context.Context, items []sdk.Item, skew time.Duration, now time.Time,
	apply func(context.Context, []sdk.Item) ([]sdk.ItemResult, error), refused func(sdk.Item, error)) ([]sdk.ItemResult, error) {
	var why map[int]string
	for i := range items {
		err := stampAhead("lastDirtyTimestamp", items[i].LastDirtyTimestamp, skew, now)
		if err == nil {
			err = stampAhead("statusVersion", items[i].StatusVersion, skew, now)
		}
		if err != nil {
			if why == nil {
				why = map[int]string{}
			}
			why[i] = err.Error()
			if refused != nil {
				refused(items[i], err)
			}
		}
	}
	if why == nil {
		return apply(ctx, items)
	}
	keep := make([]sdk.Item, 0, len(items)-len(why))
	for i := range items {
		if _, bad := why[i]; !bad {
			keep = append(keep, items[i])
		}
	}
	var applied []sdk.ItemResult
	if len(keep) > 0 {
		var err error
		if applied, err = apply(ctx, keep); err != nil {
			return nil, err
		}
		if len(applied) != len(keep) {
			return applied, nil // reported by the caller
		}
	}
	out := make([]sdk.ItemResult, len(items))
	j := 0
	for i := range items {
		if msg, bad := why[i]; bad {
			out[i] = sdk.ItemResult{StatusCode: http.StatusBadRequest, Entity: []byte(msg)}
			continue
		}
		out[i] = applied[j]
		j++
	}
	return out, nil
}

// decodedInstances are the instances the batch endpoint decoded from the items' instanceInfo,
// keyed by the first byte of each Item.Instance: the items reach the receiver through the action
// chain as copies, whose Instance still shares the decoded body.
type decodedInstances struct {
	mu sync.Mutex
	m  map[*byte]decodedEntry
}

type decodedEntry struct {
	n int // len(Item.Instance)
	d codec.DecodedInstance
}

type decodedKey struct{}

func withDecodedInstances(ctx context.Context, b *codec.Batch) context.Context {
	var m map[*byte]decodedEntry
	for i := range b.Items {
		if raw := b.Items[i].Instance; len(raw) > 0 {
			if m == nil {
				m = make(map[*byte]decodedEntry, len(b.Items)-i)
			}
			m[&raw[0]] = decodedEntry{n: len(raw), d: b.Decoded[i]}
		}
	}
	if m == nil {
		return ctx
	}
	return context.WithValue(ctx, decodedKey{}, &decodedInstances{m: m})
}

// TakeDecodedInstance returns the instance the batch endpoint already decoded from raw, an item's
// instanceInfo, as codec.DecodeInstanceBare would decode it (with its error). ok is false when raw
// is not the very bytes the endpoint decoded (an item that came another way, or that an action
// handler replaced): decode it then. Each instance is handed out once, so that no two callers
// share one.
func TakeDecodedInstance(ctx context.Context, raw []byte) (codec.DecodedInstance, bool) {
	if len(raw) == 0 {
		return codec.DecodedInstance{}, false
	}
	d, _ := ctx.Value(decodedKey{}).(*decodedInstances)
	if d == nil {
		return codec.DecodedInstance{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, found := d.m[&raw[0]]
	if !found || e.n != len(raw) {
		return codec.DecodedInstance{}, false
	}
	delete(d.m, &raw[0])
	return e.d, true
}
