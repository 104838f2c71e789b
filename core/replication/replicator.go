package replication

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Options wire a Replicator to the rest of the node.
type Options struct {
	// Config is the pipeline configuration; PeerConfig, when set, adjusts it per peer.
	Config     Config
	PeerConfig func(peer sdk.Peer, base Config) Config
	// Plugins returns the transport and flush policy for a peer (nil policy: size-or-age from the
	// config).
	Plugins func(peer sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error)
	// EncodeInstance turns an instance into a bare Eureka JSON object for Register items.
	EncodeInstance func(*registry.Instance) []byte
	// OnConflict receives a peer's newer copy of an instance (a 409 entity); the node applies it
	// locally as a replicated write.
	OnConflict func(ctx context.Context, peer sdk.Peer, entity []byte)
	// Lookup returns the node's current copy of an instance. When set, a heartbeat a peer answers
	// with 404 is followed by a register of that copy, or by nothing when the instance is gone
	// (cancelled or evicted since: a register would bring it back on the peer after the cancel).
	// Without it, the copy the heartbeat carried is sent, as Eureka's PeerEurekaNode does.
	Lookup   func(app, id string) (*registry.Instance, bool)
	Observer Observer
	Clock    registry.Clock
	Logger   hclog.Logger
}

// Replicator owns one pipeline per peer and turns the registry's client writes into tasks.
type Replicator struct {
	opts     Options
	batchSeq atomic.Uint64

	mu        sync.RWMutex
	pipelines map[string]*pipeline // by peer name
	list      []*pipeline
	closed    bool
}

// New returns a Replicator with no peers; SetPeers adds them.
func New(opts Options) *Replicator {
	if opts.Observer == nil {
		opts.Observer = NopObserver{}
	}
	if opts.Clock == nil {
		opts.Clock = registry.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	opts.Config = opts.Config.withDefaults()
	if opts.Plugins == nil {
		opts.Plugins = func(sdk.Peer) (sdk.Transport, sdk.FlushPolicy, error) {
			return nil, nil, fmt.Errorf("replication: no transport configured")
		}
	}
	return &Replicator{opts: opts, pipelines: map[string]*pipeline{}}
}

// Listener returns the registry listener: each client write becomes one task, handed to every
// peer's acceptor queue. Writes that came from a peer are never replicated again.
func (r *Replicator) Listener() registry.Listener {
	return func(ctx context.Context, w registry.Write) {
		if w.Origin != registry.FromClient {
			return
		}
		r.mu.RLock()
		defer r.mu.RUnlock()
		if len(r.list) == 0 {
			return
		}
		t := NewTask(w, trace.SpanContextFromContext(ctx), r.opts.Clock.Now().UnixMilli(), r.opts.Config.MaxTimeForReplication)
		t.prepare(r.opts.EncodeInstance) // encoded once, shared by every peer and every retry
		for _, p := range r.list {
			p.accept(t)
		}
	}
}

// Replicate hands items written on this node (custom actions of action handlers) to every peer,
// as the Listener does with the registry's writes: a newer item with the same action, app and id
// supersedes an older one still pending.
func (r *Replicator) Replicate(ctx context.Context, items []sdk.Item) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.list) == 0 {
		return nil
	}
	now := r.opts.Clock.Now().UnixMilli()
	span := trace.SpanContextFromContext(ctx)
	for _, it := range items {
		t := NewItemTask(it, span, now, r.opts.Config.MaxTimeForReplication).prepare(r.opts.EncodeInstance)
		for _, p := range r.list {
			p.accept(t)
		}
	}
	return nil
}

// Enqueue hands a task to one peer's pipeline (used by repairs); false when the peer is unknown.
func (r *Replicator) Enqueue(peer string, t *Task) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p := r.pipelines[peer]
	if p == nil {
		return false
	}
	if t.wire == 0 {
		t.prepare(r.opts.EncodeInstance)
	}
	p.accept(t)
	return true
}

// TooLargeError refuses a client registration whose replication item would not fit in a batch:
// acknowledged, it could never reach the peers. Its status code is 413.
type TooLargeError struct {
	App, ID     string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("registration of %s/%s is %d bytes as a replication item, more than the %d a batch to peers may carry "+
		"(replication.max_batch_bytes): it could not be replicated", e.App, e.ID, e.Size, e.Limit)
}

// StatusCode is 413 Request Entity Too Large.
func (e *TooLargeError) StatusCode() int { return 413 }

// AdmitRegistration returns a *TooLargeError when inst, encoded as a Register item, would be larger
// than a batch may be (MaxBatchBytes, envelope included): peers refuse such a batch, so the node must
// refuse the registration instead of acknowledging a write it cannot deliver. The instance is encoded
// to measure it: JSON escapes make its size on the wire differ from the client's body.
func (r *Replicator) AdmitRegistration(inst *registry.Instance) error {
	if inst == nil || r.opts.EncodeInstance == nil {
		return nil
	}
	t := &Task{Action: registry.ActionRegister, App: inst.App, Instance: inst.ID(), Snapshot: inst,
		LastDirty: inst.LastDirtyTimestamp, Status: inst.Status}
	t.prepare(r.opts.EncodeInstance)
	// A traced write also carries a traceparent; count one, so a traced registration fits too.
	size := t.size() + traceParentSize
	if limit := r.opts.Config.MaxBatchBytes - batchEnvelope; size > limit {
		return &TooLargeError{App: inst.App, ID: inst.ID(), Size: size, Limit: limit}
	}
	return nil
}

// SetPeers makes the pipelines match peers: new peers get a pipeline, removed peers' pipelines are
// stopped (their queued work dropped, as Eureka does), and unchanged peers keep theirs with every
// queued task.
func (r *Replicator) SetPeers(peers []sdk.Peer) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	keep := map[string]bool{}
	var removed []*pipeline
	for _, peer := range peers {
		keep[peer.Name] = true
		if old := r.pipelines[peer.Name]; old != nil {
			if old.peer == peer {
				continue
			}
			removed = append(removed, old) // same name, new address: start over
		}
		p, err := r.newPipeline(peer)
		if err != nil {
			r.opts.Logger.Error("cannot replicate to peer", "peer", peer.Name, "error", err)
			delete(r.pipelines, peer.Name)
			continue
		}
		r.pipelines[peer.Name] = p
		p.start()
		r.opts.Logger.Info("replicating to peer", "peer", peer.Name, "url", peer.URL)
	}
	for name, p := range r.pipelines {
		if !keep[name] {
			removed = append(removed, p)
			delete(r.pipelines, name)
			r.opts.Logger.Info("peer removed", "peer", name)
		}
	}
	r.list = r.list[:0]
	for _, p := range r.pipelines {
		r.list = append(r.list, p)
	}
	sort.Slice(r.list, func(i, j int) bool { return r.list[i].peer.Name < r.list[j].peer.Name })
	r.mu.Unlock()
	for _, p := range removed {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a removed peer's queue is dropped, not drained
		p.stop(ctx)
	}
}

func (r *Replicator) newPipeline(peer sdk.Peer) (*pipeline, error) {
	cfg := r.opts.Config
	if r.opts.PeerConfig != nil {
		cfg = r.opts.PeerConfig(peer, cfg)
	}
	tr, pol, err := r.opts.Plugins(peer)
	if err != nil {
		return nil, err
	}
	if tr == nil {
		return nil, fmt.Errorf("replication: no transport for peer %s", peer.Name)
	}
	return newPipeline(peer, cfg, tr, pol, hooks{
		encode:     r.opts.EncodeInstance,
		onConflict: r.opts.OnConflict,
		lookup:     r.opts.Lookup,
		observer:   r.opts.Observer,
		clock:      r.opts.Clock,
		logger:     r.opts.Logger.Named("peer"),
		batchSeq:   &r.batchSeq,
	}), nil
}

// Close lets every pipeline send what it can within ctx, then stops them all.
func (r *Replicator) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	ps := append([]*pipeline(nil), r.list...)
	r.pipelines, r.list = map[string]*pipeline{}, nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func(p *pipeline) { defer wg.Done(); p.stop(ctx) }(p)
	}
	wg.Wait()
	return ctx.Err()
}

// Stats returns one snapshot per peer, in peer-name order.
func (r *Replicator) Stats() []PeerStats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]PeerStats, 0, len(r.list))
	for _, p := range r.list {
		out = append(out, p.stats())
	}
	return out
}
