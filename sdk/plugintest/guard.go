package plugintest

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// A guard stands between a suite (or herald's side of the gRPC path) and the plugin in the test
// process. It turns a panic in any plugin call into a failure of the test, with the panic's
// stack, instead of a crash of the whole test binary; and it watches the plugin's own calls, so
// that a suite can tell that the plugin's Send went on after its context ended even when the
// gRPC call (herald's side) returned at once.

// guard is what every guarded plugin shares: the plugin, the panics seen, the calls in flight.
type guard struct {
	impl any
	kind string

	mu       sync.Mutex
	panics   []string
	inFlight map[*call]struct{}
}

// call is one plugin call in flight: its context, and ended once it returned.
type call struct {
	ctx   context.Context
	ended chan struct{}
}

// guarded is implemented by the guards, to reach the plugin behind one.
type guarded interface{ theGuard() *guard }

func (g *guard) theGuard() *guard { return g }

// unguard returns the plugin behind p if p is a guard, p otherwise.
func unguard(p any) any {
	if g, ok := p.(guarded); ok {
		return g.theGuard().impl
	}
	return p
}

// newGuard makes the guard of impl for tb: the panics it catches fail tb when it ends.
func newGuard(tb testing.TB, kind string, impl any) *guard {
	g := &guard{impl: impl, kind: kind, inFlight: map[*call]struct{}{}}
	tb.Cleanup(func() {
		g.mu.Lock()
		ps := g.panics
		g.mu.Unlock()
		for i, p := range ps {
			if i == 3 {
				tb.Errorf("… and %d more panics", len(ps)-i)
				break
			}
			tb.Error(p)
		}
	})
	return g
}

// begin records a call in flight; end it with the returned function.
func (g *guard) begin(ctx context.Context) func() {
	c := &call{ctx: ctx, ended: make(chan struct{})}
	g.mu.Lock()
	g.inFlight[c] = struct{}{}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.inFlight, c)
		g.mu.Unlock()
		close(c.ended)
	}
}

// lingering waits until every call in flight whose context is done has returned, for at most
// limit after that context ended, and says whether one is still running.
func (g *guard) lingering(limit time.Duration) bool {
	g.mu.Lock()
	var calls []*call
	for c := range g.inFlight {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	for _, c := range calls {
		select {
		case <-c.ended:
			continue
		case <-c.ctx.Done():
		}
		select {
		case <-c.ended:
		case <-time.After(limit):
			return true
		}
	}
	return false
}

// caught records a recovered panic of the plugin's method and returns the error the call returns
// instead.
func (g *guard) caught(method string, r any) error {
	msg := fmt.Sprintf("the plugin panicked in %s: %v. A panic ends a plugin process: herald restarts it and retries, "+
		"and the same input panics again. Return an error instead. The panic's stack:\n%s", method, r, panicStack())
	g.mu.Lock()
	g.panics = append(g.panics, msg)
	g.mu.Unlock()
	return fmt.Errorf("plugintest: %s panicked: %v", method, r)
}

// panicStack is the stack of the goroutine that panicked, from the function that panicked on.
func panicStack() string {
	s := string(debug.Stack())
	head, rest, _ := strings.Cut(s, "\n")
	if i := strings.Index(rest, "\npanic("); i >= 0 {
		// Skip the recovering frames, the panic call and its file line.
		after := rest[i+1:]
		for k := 0; k < 2; k++ {
			if _, a, ok := strings.Cut(after, "\n"); ok {
				after = a
			}
		}
		rest = after
	}
	return head + "\n" + rest
}

// Info implements sdk.Describer (as the SDK does for a plugin that is not one: no name).
func (g *guard) Info() (info sdk.Info) {
	d, ok := g.impl.(sdk.Describer)
	if !ok {
		return sdk.Info{Kind: g.kind}
	}
	defer func() {
		if r := recover(); r != nil {
			_ = g.caught("Info", r)
			info = sdk.Info{Kind: g.kind}
		}
	}()
	return d.Info()
}

// Configure implements sdk.Configurable (accepting anything for a plugin that is not one, as the
// SDK does).
func (g *guard) Configure(ctx context.Context, req sdk.ConfigureRequest) (diags []sdk.Diagnostic) {
	c, ok := g.impl.(sdk.Configurable)
	if !ok {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			diags = []sdk.Diagnostic{{Message: g.caught("Configure", r).Error()}}
		}
	}()
	return c.Configure(ctx, req)
}

type guardedTransport struct{ *guard }

func (g guardedTransport) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) (rs []sdk.ItemResult, err error) {
	defer g.begin(ctx)()
	defer func() {
		if r := recover(); r != nil {
			rs, err = nil, sdk.Fail(sdk.Transient, g.caught("Send", r))
		}
	}()
	return g.impl.(sdk.Transport).Send(ctx, peer, b)
}

type guardedFlushPolicy struct{ *guard }

func (g guardedFlushPolicy) Decide(ctx context.Context, s sdk.PendingState) (d sdk.FlushDecision, err error) {
	defer g.begin(ctx)()
	defer func() {
		if r := recover(); r != nil {
			d, err = sdk.FlushDecision{}, g.caught("Decide", r)
		}
	}()
	return g.impl.(sdk.FlushPolicy).Decide(ctx, s)
}

type guardedActionHandler struct{ *guard }

func (g guardedActionHandler) Actions() (specs []sdk.ActionSpec) {
	defer func() {
		if r := recover(); r != nil {
			_ = g.caught("Actions", r)
			specs = nil
		}
	}()
	return g.impl.(sdk.ActionHandler).Actions()
}

func (g guardedActionHandler) Accept(ctx context.Context, it sdk.Item) (out sdk.Item, err error) {
	defer g.begin(ctx)()
	defer func() {
		if r := recover(); r != nil {
			out, err = it, g.caught("Accept", r)
		}
	}()
	return g.impl.(sdk.ActionHandler).Accept(ctx, it)
}

func (g guardedActionHandler) Receive(ctx context.Context, req sdk.ReceiveRequest) (rs []sdk.ItemResult, err error) {
	defer g.begin(ctx)()
	defer func() {
		if r := recover(); r != nil {
			rs, err = nil, g.caught("Receive", r)
		}
	}()
	return g.impl.(sdk.ActionHandler).Receive(ctx, req)
}

// guardAs returns impl, a plugin of kind, behind a guard for tb (impl itself if it is one).
func guardAs(tb testing.TB, kind string, impl any) any {
	if _, ok := impl.(guarded); ok {
		return impl
	}
	g := newGuard(tb, kind, impl)
	switch kind {
	case sdk.KindTransport:
		if _, ok := impl.(sdk.Transport); ok {
			return guardedTransport{g}
		}
	case sdk.KindFlushPolicy:
		if _, ok := impl.(sdk.FlushPolicy); ok {
			return guardedFlushPolicy{g}
		}
	case sdk.KindActionHandler:
		if _, ok := impl.(sdk.ActionHandler); ok {
			return guardedActionHandler{g}
		}
	}
	return impl // not of its kind: the SDK refuses it with its own message
}
