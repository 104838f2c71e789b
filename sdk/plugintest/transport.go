package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// TransportCase describes the transport under test.
type TransportCase struct {
	// New returns a new, unconfigured transport. The suite configures it with Config (and a
	// FakeHost) itself, and closes it at the end of the test if it is an io.Closer.
	New func(t *testing.T) sdk.Transport
	// Config is the transport's config {} block for the test (nil: empty).
	Config map[string]any
	// Peer starts a reachable peer and names it. The peer must hand every batch it gets to
	// host.Receive and answer with what that returns, as a herald node does, so the suite can
	// control the answers: for a transport with a receiving side, start a second instance with
	// StartReceiver(t, impl, cfg, host); for one that speaks an existing protocol, a fake server
	// that decodes the batch, calls host.Receive and encodes the answers (or set
	// Options.PeerIgnoresHost).
	Peer func(t *testing.T, host *FakeHost) sdk.Peer
	// PeerAt names a peer at a TCP address (host:port) for this transport, e.g.
	//
	//	func(addr string) sdk.Peer { return sdk.Peer{Name: addr, URL: "http://" + addr + "/eureka/"} }
	//
	// The suite uses it for a port nothing listens on and for a peer that never answers. Needed
	// unless Options.SkipUnreachable.
	PeerAt func(addr string) sdk.Peer
	Options
}

// Transport runs the transport conformance suite: in-process, through the gRPC path, and a few
// checks on the transport in a plugin process of its own (the test binary started again, serving
// what New returns; code of the test that runs before the suite runs there too).
func Transport(t *testing.T, c TransportCase) {
	t.Helper()
	switch {
	case c.New == nil:
		t.Fatal("plugintest.Transport: TransportCase.New is nil: give a function that returns a new transport")
	case c.Peer == nil:
		t.Fatal("plugintest.Transport: TransportCase.Peer is nil: give a function that starts a reachable peer answering through the FakeHost")
	case c.PeerAt == nil && !c.SkipUnreachable:
		t.Fatal("plugintest.Transport: TransportCase.PeerAt is nil: say how a peer at a TCP address is named " +
			"(sdk.Peer URL or Address), or set Options.SkipUnreachable")
	}
	if serveAsChild(t, sdk.KindTransport, func() any { return c.New(t) }) {
		return
	}
	for _, via := range vias {
		s := &transportSuite{c: c, via: via, top: t.Name()}
		t.Run(via, func(t *testing.T) {
			if via == viaProcess {
				t.Run("one result per item, in order", s.inOrder)
				t.Run("a send cancelled while the peer works on it", s.cancelledInFlight)
				t.Run("describe and configure", s.describe)
				return
			}
			t.Run("one result per item, in order", s.inOrder)
			t.Run("every field of every item arrives", s.fields)
			t.Run("a large batch", s.large)
			t.Run("an empty batch", s.empty)
			t.Run("concurrent sends", s.concurrent)
			t.Run("a peer that cannot apply the batch now", s.peerBusy)
			t.Run("an unreachable peer", s.unreachable)
			t.Run("a peer that never answers", s.silent)
			t.Run("an already cancelled context", s.cancelled)
			t.Run("a send cancelled while the peer works on it", s.cancelledInFlight)
			t.Run("describe and configure", s.describe)
		})
	}
}

type transportSuite struct {
	c   TransportCase
	via string
	top string // the test that called the suite
}

// fresh returns a new transport, unconfigured, and what the suite talks to.
func (s *transportSuite) fresh(t *testing.T) (impl, tr sdk.Transport) {
	t.Helper()
	impl = s.c.New(t)
	if impl == nil {
		t.Fatal("TransportCase.New returned nil")
	}
	closeAtEnd(t, impl)
	impl = guardAs(t, sdk.KindTransport, impl).(sdk.Transport)
	tr = impl
	switch s.via {
	case viaGRPC:
		tr = ServeTransport(t, impl)
	case viaProcess:
		tr = serveProcess(t, s.top, sdk.KindTransport).(sdk.Transport)
	}
	return impl, tr
}

// transport returns a configured transport. Start peers before it: it is closed first.
func (s *transportSuite) transport(t *testing.T) sdk.Transport {
	t.Helper()
	_, tr := s.configured(t)
	return tr
}

// configured is transport, with the plugin (behind its guard) the suite talks to through tr.
func (s *transportSuite) configured(t *testing.T) (impl, tr sdk.Transport) {
	t.Helper()
	impl, tr = s.fresh(t)
	MustConfigure(t, tr, s.c.Config, NewFakeHost())
	return impl, tr
}

// noLingering fails the test if the plugin's own Send went on for 2 s after its context ended
// (after what), although the call returned: through gRPC, herald's side returns at once when it
// cancels, and only the plugin's side shows whether the plugin let go. (A plugin process cannot
// be watched from here; the in-process and gRPC runs check the same code.)
func (s *transportSuite) noLingering(t *testing.T, impl sdk.Transport, what string) {
	t.Helper()
	g, ok := impl.(guarded)
	if !ok || s.via == viaProcess {
		return
	}
	if g.theGuard().lingering(2 * time.Second) {
		t.Fatalf("the plugin's Send went on for 2 s after %s, although herald's side of the call had returned: pass ctx to "+
			"every blocking call (dial, write, read) or close the connection when ctx is done. A Send that ignores its context "+
			"keeps a connection and a goroutine of the plugin busy for every cancelled batch, and herald cancels sends when it "+
			"stops and when a send takes too long", what)
	}
}

// peer starts a reachable peer whose node answers each item as answerFor says.
func (s *transportSuite) peer(t *testing.T) (*FakeHost, sdk.Peer) {
	t.Helper()
	host := NewFakeHost()
	host.SetAnswer(answerFor)
	return host, s.c.Peer(t, host)
}

// answerFor is the peer's answer to an item whose id ends in -N: 200, 404, 409 with the peer's
// copy as Entity, or 500, by N, so results in the wrong order do not go unnoticed.
func answerFor(it sdk.Item) sdk.ItemResult {
	n := 0
	if i := strings.LastIndexByte(it.ID, '-'); i >= 0 {
		n, _ = strconv.Atoi(it.ID[i+1:])
	}
	switch n % 4 {
	case 1:
		return sdk.ItemResult{StatusCode: http.StatusNotFound}
	case 2:
		return sdk.ItemResult{StatusCode: http.StatusConflict, Entity: Instance(it.App, it.ID)}
	case 3:
		return sdk.ItemResult{StatusCode: http.StatusInternalServerError}
	}
	return sdk.ItemResult{StatusCode: http.StatusOK}
}

type sendResult struct {
	rs  []sdk.ItemResult
	err error
}

// send calls Send and waits at most limit for it; ok is false if it did not return in time.
func send(ctx context.Context, tr sdk.Transport, peer sdk.Peer, b sdk.Batch, limit time.Duration) (sendResult, bool) {
	done := make(chan sendResult, 1)
	go func() {
		rs, err := tr.Send(ctx, peer, b)
		done <- sendResult{rs, err}
	}()
	select {
	case r := <-done:
		return r, true
	case <-time.After(limit):
		return sendResult{}, false
	}
}

// sendOK sends b to a reachable peer and checks the results against the peer's answers.
func (s *transportSuite) sendOK(t *testing.T, tr sdk.Transport, host *FakeHost, peer sdk.Peer, b sdk.Batch) {
	t.Helper()
	r, ok := send(context.Background(), tr, peer, b, 20*time.Second)
	if !ok {
		t.Fatalf("Send of a batch of %d items to a reachable peer did not return within 20 s", len(b.Items))
	}
	if r.err != nil {
		t.Fatalf("Send of a batch of %d items to a reachable peer failed (%s): %v", len(b.Items), sdk.ClassOf(r.err), r.err)
	}
	if msg := s.checkResults(host, b, r.rs); msg != "" {
		t.Fatal(msg)
	}
}

// checkResults says what is wrong with rs as the results of b ("" if nothing).
func (s *transportSuite) checkResults(host *FakeHost, b sdk.Batch, rs []sdk.ItemResult) string {
	n := len(b.Items)
	if len(rs) != n {
		return fmt.Sprintf("Send returned %d results for a batch of %d items: return exactly one result per item, in order", len(rs), n)
	}
	if !s.c.PeerIgnoresHost && n > 0 && host != nil && len(host.Received()) == 0 {
		return "Send returned results, but the FakeHost the suite gave the peer received nothing: the Peer must hand each batch " +
			"to host.Receive and answer with its results (start a receiving side with plugintest.StartReceiver(t, impl, cfg, host)), " +
			"or set Options.PeerIgnoresHost"
	}
	for i, r := range rs {
		if r.StatusCode == 0 {
			return fmt.Sprintf("result %d of %d has no status code: give every item the peer's answer (200, 404, 409, 500)", i, n)
		}
		if s.c.PeerIgnoresHost {
			continue
		}
		want := answerFor(b.Items[i])
		if r.StatusCode != want.StatusCode {
			return fmt.Sprintf("result %d is %d, but the peer answered %d for item %d (%s %s): return the results in the order "+
				"of the batch's items, one per item, as the peer gave them", i, r.StatusCode, want.StatusCode, i, b.Items[i].Action, b.Items[i].ID)
		}
		if want.Entity != nil && !jsonEqual(r.Entity, want.Entity) {
			return fmt.Sprintf("result %d (409) came back with Entity %.80q, the peer sent its copy of the instance: carry "+
				"ItemResult.Entity unchanged (herald adopts the peer's newer copy from it)", i, r.Entity)
		}
	}
	return ""
}

func (s *transportSuite) inOrder(t *testing.T) {
	host, peer := s.peer(t)
	tr := s.transport(t)
	for _, n := range []int{1, 7, 250} {
		s.sendOK(t, tr, host, peer, Batch(fmt.Sprintf("order-%d", n), n))
	}
}

// fieldsBatch is a batch whose items use every field: the five actions, a custom action with a
// payload, and an instance with characters JSON escapes.
func fieldsBatch() sdk.Batch {
	b := Batch("fields", 6)
	b.Items[5].Instance = []byte(strings.Replace(string(Instance("PLUGINTEST", "i-5")), `"zone":"eu-1"`,
		`"zone":"eu-1","note":"a \"quoted\" ü ✓ \\ path <&>"`, 1))
	b.Items[5].OverriddenStatus = "OUT_OF_SERVICE"
	b.Items = append(b.Items, Item(CustomAction, "PLUGINTEST", "i-6"))
	return b
}

func (s *transportSuite) fields(t *testing.T) {
	if s.c.PeerIgnoresHost {
		t.Skip("Options.PeerIgnoresHost: the suite cannot see what the peer received")
	}
	host, peer := s.peer(t)
	tr := s.transport(t)
	b := fieldsBatch()
	s.sendOK(t, tr, host, peer, b)
	got := host.ReceivedItems()
	if len(got) != len(b.Items) {
		t.Fatalf("the peer's node received %d items of a batch of %d: deliver every item once", len(got), len(b.Items))
	}
	bad := 0
	for i := range b.Items {
		if d := diffItem(b.Items[i], got[i]); d != "" {
			t.Errorf("item %d (%s) arrived with %s: carry every field of sdk.Item unchanged (the receiving node needs the instance "+
				"to register it, the payload to apply a custom action, the traceparent to join the sender's trace)", i, b.Items[i].Action, d)
			if bad++; bad == 3 {
				return
			}
		}
	}
}

// diffItem names the first field in which got differs from sent ("" if none).
func diffItem(sent, got sdk.Item) string {
	str := func(name, a, b string) string {
		if a != b {
			return fmt.Sprintf("%s %q instead of %q", name, b, a)
		}
		return ""
	}
	for _, d := range []string{
		str("Action", string(sent.Action), string(got.Action)),
		str("App", sent.App, got.App),
		str("ID", sent.ID, got.ID),
		str("Status", sent.Status, got.Status),
		str("OverriddenStatus", sent.OverriddenStatus, got.OverriddenStatus),
		str("TraceParent", sent.TraceParent, got.TraceParent),
	} {
		if d != "" {
			return d
		}
	}
	if sent.LastDirtyTimestamp != got.LastDirtyTimestamp {
		return fmt.Sprintf("LastDirtyTimestamp %d instead of %d", got.LastDirtyTimestamp, sent.LastDirtyTimestamp)
	}
	if !jsonEqual(sent.Instance, got.Instance) {
		return fmt.Sprintf("Instance %.80q… instead of %.80q…", got.Instance, sent.Instance)
	}
	if !bytes.Equal(sent.Payload, got.Payload) {
		return fmt.Sprintf("Payload %.80q instead of %.80q", got.Payload, sent.Payload)
	}
	return ""
}

// jsonEqual reports whether a and b are the same bytes or the same JSON value.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func (s *transportSuite) large(t *testing.T) {
	host, peer := s.peer(t)
	tr := s.transport(t)
	b := Batch("large", 2500)
	custom := Item(CustomAction, "PLUGINTEST", "i-2500")
	custom.Payload = bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	b.Items = append(b.Items, custom)
	s.sendOK(t, tr, host, peer, b)
	if !s.c.PeerIgnoresHost {
		got := host.ReceivedItems()
		if len(got) != len(b.Items) {
			t.Fatalf("the peer's node received %d items of a batch of %d: deliver every item once", len(got), len(b.Items))
		}
		if last := got[len(got)-1]; !bytes.Equal(last.Payload, custom.Payload) {
			t.Fatalf("a 256 KiB payload arrived as %d bytes: carry large items whole", len(last.Payload))
		}
	}
}

func (s *transportSuite) empty(t *testing.T) {
	_, peer := s.peer(t)
	tr := s.transport(t)
	r, ok := send(context.Background(), tr, peer, sdk.Batch{ID: "empty"}, 20*time.Second)
	switch {
	case !ok:
		t.Fatal("Send of an empty batch did not return within 20 s")
	case r.err != nil:
		t.Fatalf("Send of an empty batch failed (%s): %v. Return no results and no error for a batch without items", sdk.ClassOf(r.err), r.err)
	case len(r.rs) != 0:
		t.Fatalf("Send returned %d results for an empty batch: return none", len(r.rs))
	}
}

func (s *transportSuite) concurrent(t *testing.T) {
	host, peer := s.peer(t)
	tr := s.transport(t)
	const senders, sends, size = 8, 3, 20
	if r, ok := send(context.Background(), tr, peer, Batch("sequential", size), 20*time.Second); !ok || r.err != nil ||
		s.checkResults(nil, Batch("sequential", size), r.rs) != "" {
		t.Skip("a single send fails already (see the other checks)")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < sends; k++ {
				b := Batch(fmt.Sprintf("concurrent-%d-%d", g, k), size)
				for i := range b.Items {
					// Shift the answers per batch, so that results of another send do not pass.
					b.Items[i].ID = fmt.Sprintf("g%d-s%d-%d", g, k, i+g+k)
				}
				r, ok := send(context.Background(), tr, peer, b, 20*time.Second)
				msg := ""
				switch {
				case !ok:
					msg = "a Send did not return within 20 s"
				case r.err != nil:
					msg = fmt.Sprintf("a Send failed (%s): %v", sdk.ClassOf(r.err), r.err)
				default:
					msg = s.checkResults(nil, b, r.rs)
				}
				if msg != "" {
					mu.Lock()
					problems = append(problems, msg)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("with %d goroutines sending at once: %s. herald sends from several workers at once: make Send safe for "+
			"concurrent use (and keep each send's results with its own batch)", senders, problems[0])
	}
	if got := len(host.ReceivedItems()) - size; !s.c.PeerIgnoresHost && got != senders*sends*size {
		t.Fatalf("with %d goroutines sending at once the peer's node received %d items, want %d", senders, got, senders*sends*size)
	}
}

func (s *transportSuite) peerBusy(t *testing.T) {
	if s.c.PeerIgnoresHost {
		t.Skip("Options.PeerIgnoresHost: the suite cannot make the peer's node fail")
	}
	host, peer := s.peer(t)
	tr := s.transport(t)
	host.SetErr(errors.New("plugintest: the node cannot apply batches right now (an action handler is restarting)"))
	r, ok := send(context.Background(), tr, peer, Batch("busy", 3), 20*time.Second)
	switch {
	case !ok:
		t.Fatal("Send to a peer whose node cannot apply the batch did not return within 20 s")
	case r.err == nil:
		t.Fatalf("Send succeeded (results %s) although the peer's node could not apply the batch (its Host.Receive failed): "+
			"the receiving side must pass the failure back so that the sender fails the send and herald retries it", fmtResults(r.rs))
	case sdk.ClassOf(r.err) == sdk.Permanent:
		t.Fatalf("Send failed as permanent (%v) when the peer's node could not apply the batch now: herald drops permanent "+
			"failures, so the peer would miss these writes. Answer so that the sender returns sdk.Congestion (herald's own "+
			"batch endpoint answers 503) or sdk.Transient", r.err)
	}
}

func (s *transportSuite) unreachable(t *testing.T) {
	if s.c.SkipUnreachable {
		t.Skip("Options.SkipUnreachable")
	}
	tr := s.transport(t)
	peer := s.c.PeerAt(ClosedAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ok := send(ctx, tr, peer, Batch("down", 3), 5*time.Second)
	switch {
	case !ok:
		t.Fatal("Send to a port nothing listens on did not return within 5 s: a refused connection is immediate; do not retry inside Send, herald retries")
	case r.err == nil:
		t.Fatalf("Send to a port nothing listens on succeeded (results %s): return an error made with sdk.Fail(sdk.Transient, err)", fmtResults(r.rs))
	case sdk.ClassOf(r.err) == sdk.Permanent:
		t.Fatalf("Send to an unreachable peer failed as permanent (%v): a network failure must be sdk.Transient "+
			"(or sdk.Congestion for a timeout), never sdk.Permanent, or herald drops the batch and the peer misses writes", r.err)
	}
}

func (s *transportSuite) silent(t *testing.T) {
	if s.c.SkipUnreachable {
		t.Skip("Options.SkipUnreachable")
	}
	for _, how := range []string{"cancelled", "deadline"} {
		impl, tr := s.configured(t)
		peer := s.c.PeerAt(SilentAddr(t))
		var ctx context.Context
		var cancel context.CancelFunc
		if how == "deadline" {
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
		}
		r, ok := send(ctx, tr, peer, Batch("silent", 3), 2*time.Second)
		cancel()
		what := map[string]string{"cancelled": "its context was cancelled", "deadline": "its context's deadline passed"}[how]
		switch {
		case !ok:
			t.Fatalf("Send to a peer that never answers went on for 2 s after %s: pass ctx to every blocking call "+
				"(dial, write, read) or close the connection when ctx is done; herald cancels sends when it stops", what)
		case r.err == nil:
			t.Fatalf("Send to a peer that never answers returned no error after %s (results %s)", what, fmtResults(r.rs))
		case sdk.ClassOf(r.err) == sdk.Permanent:
			t.Fatalf("Send to a peer that never answers failed as permanent after %s (%v): return ctx.Err() or an error "+
				"made with sdk.Fail(sdk.Congestion or sdk.Transient, …), so that the batch is kept and sent again", what, r.err)
		}
		s.noLingering(t, impl, what)
	}
}

// cancelledInFlight cancels a send while the peer's node holds the batch, as herald does when it
// stops: Send must return at once, keeping the batch for retry, and the plugin must let go too.
func (s *transportSuite) cancelledInFlight(t *testing.T) {
	if s.c.PeerIgnoresHost {
		t.Skip("Options.PeerIgnoresHost: the suite cannot hold the batch at the peer's node")
	}
	host, peer := s.peer(t)
	release := host.Hold()
	defer release()
	impl, tr := s.configured(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan sendResult, 1)
	go func() {
		rs, err := tr.Send(ctx, peer, Batch("in-flight", 3))
		done <- sendResult{rs, err}
	}()
	for deadline := time.Now().Add(20 * time.Second); len(host.Received()) == 0; {
		select {
		case r := <-done:
			t.Fatalf("Send returned (results %s, error %v) before the peer's node answered: wait for the peer's answer", fmtResults(r.rs), r.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer's node did not receive the batch within 20 s")
		}
	}
	cancel()
	select {
	case r := <-done:
		switch {
		case r.err == nil:
			t.Fatalf("Send returned no error (results %s) although its context was cancelled before the peer answered: "+
				"return ctx.Err(); herald cancels sends when it stops", fmtResults(r.rs))
		case sdk.ClassOf(r.err) == sdk.Permanent:
			t.Fatalf("Send failed as permanent (%v) when its context was cancelled before the peer answered: return ctx.Err() "+
				"(or sdk.Fail(sdk.Transient, …)) so that the batch is kept for retry", r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Send went on for 2 s after its context was cancelled while the peer's node was working on the batch: " +
			"pass ctx to every blocking call (dial, write, read) or close the connection when ctx is done; herald cancels " +
			"sends when it stops")
	}
	s.noLingering(t, impl, "its context was cancelled while the peer's node was working on the batch")
}

func (s *transportSuite) cancelled(t *testing.T) {
	_, peer := s.peer(t)
	impl, tr := s.configured(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, ok := send(ctx, tr, peer, Batch("cancelled", 3), 2*time.Second)
	switch {
	case !ok:
		t.Fatal("Send with a cancelled context did not return within 2 s: check ctx, and pass it to every blocking call")
	case r.err == nil:
		t.Fatalf("Send with a cancelled context returned no error (results %s): return ctx.Err(); herald cancels sends when it stops", fmtResults(r.rs))
	case sdk.ClassOf(r.err) == sdk.Permanent:
		t.Fatalf("Send with a cancelled context failed as permanent (%v): return ctx.Err() (or sdk.Fail(sdk.Transient, …)) so "+
			"that the batch is kept for retry", r.err)
	}
	s.noLingering(t, impl, "its context was cancelled")
}

func (s *transportSuite) describe(t *testing.T) {
	impl, tr := s.fresh(t)
	checkDescribeConfigure(t, sdk.KindTransport, impl, tr, s.c.Config, s.c.Options)
}

// fmtResults shows results as status codes: [200 404 409+entity 500].
func fmtResults(rs []sdk.ItemResult) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r.StatusCode)
		if len(r.Entity) > 0 {
			parts[i] += "+entity"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
