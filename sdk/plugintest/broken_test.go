package plugintest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// Deliberately broken plugins. Each suite must fail on them, saying what to fix.

// brokenTransport is the wire transport with one thing done wrong.
type brokenTransport struct {
	*wire
	send func(ctx context.Context, inner sdk.Transport, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error)
}

func (b *brokenTransport) Send(ctx context.Context, peer sdk.Peer, batch sdk.Batch) ([]sdk.ItemResult, error) {
	return b.send(ctx, b.wire, peer, batch)
}

// looseConfig accepts any config key.
type looseConfig struct{ *wire }

func (looseConfig) Configure(context.Context, sdk.ConfigureRequest) []sdk.Diagnostic { return nil }

func transportCase(send func(context.Context, sdk.Transport, sdk.Peer, sdk.Batch) ([]sdk.ItemResult, error)) plugintest.TransportCase {
	return plugintest.TransportCase{
		New: func(*testing.T) sdk.Transport {
			return &brokenTransport{wire: newWire(), send: send}
		},
		Peer:   wirePeer,
		PeerAt: wirePeerAt,
	}
}

type decide func(context.Context, sdk.PendingState) (sdk.FlushDecision, error)

func (f decide) Decide(ctx context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
	return f(ctx, s)
}

func flushCase(f decide) plugintest.FlushPolicyCase {
	return plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return f }}
}

// brokenHandler validates and accepts registrations, with one thing done wrong.
type brokenHandler struct {
	sdk.UnimplementedActionHandler
	actions []sdk.ActionSpec
	accept  func(sdk.Item) (sdk.Item, error)
	receive func(sdk.ReceiveRequest) ([]sdk.ItemResult, error)
}

func (h *brokenHandler) Actions() []sdk.ActionSpec { return h.actions }

func (h *brokenHandler) Accept(ctx context.Context, it sdk.Item) (sdk.Item, error) {
	if h.accept != nil {
		return h.accept(it)
	}
	return it, nil
}

func (h *brokenHandler) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	if h.receive != nil {
		return h.receive(req)
	}
	return h.UnimplementedActionHandler.Receive(ctx, req)
}

func handlerCase(h brokenHandler) plugintest.ActionHandlerCase {
	if h.actions == nil {
		h.actions = []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true, Receive: sdk.ReceiveValidate},
			{Action: sdk.ActionCancel, Receive: sdk.ReceiveObserve}}
	}
	return plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { c := h; return &c }}
}

var brokenPlugins = map[string]struct {
	run  func(t *testing.T)
	want string
	also []string // more the output must say
}{
	"transport: a result short": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			if len(rs) > 0 {
				rs = rs[:len(rs)-1]
			}
			return rs, err
		}))
	}, "Send returned 0 results for a batch of 1 items: return exactly one result per item, in order", nil},
	"transport: results reversed": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			slices.Reverse(rs)
			return rs, err
		}))
	}, "return the results in the order of the batch's items", nil},
	"transport: traceparent dropped": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			b.Items = slices.Clone(b.Items)
			for i := range b.Items {
				b.Items[i].TraceParent = ""
			}
			return in.Send(ctx, p, b)
		}))
	}, "arrived with TraceParent \"\" instead of", nil},
	"transport: failures unclassified": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			if err != nil {
				return nil, errors.New(err.Error()) // no class: permanent
			}
			return rs, nil
		}))
	}, "a network failure must be sdk.Transient (or sdk.Congestion for a timeout), never sdk.Permanent", nil},
	"transport: context ignored": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(_ context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			return in.Send(context.Background(), p, b)
		}))
	}, "Send went on for 2 s after its context was cancelled while the peer's node was working on the batch", []string{
		"Send to a peer that never answers went on for 2 s after its context was cancelled",
		// Through gRPC herald's side returns at once; the plugin's side is what ignores the context.
		"the plugin's Send went on for 2 s after its context was cancelled while the peer's node was working on the batch, " +
			"although herald's side of the call had returned",
	}},
	"transport: results misordered": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			if len(rs) > 1 {
				rs[0], rs[1] = rs[1], rs[0]
			}
			return rs, err
		}))
	}, "result 0 is 404, but the peer answered 200 for item 0 (Register i-0): return the results in the order of the batch's items", nil},
	"transport: panics": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			return rs[:len(b.Items)+1], err // one result too many: out of range
		}))
	}, "the plugin panicked in Send: runtime error: slice bounds out of range", []string{
		"broken_test.go", // the stack
		"the plugin process died during the test: panic: runtime error: slice bounds out of range",
	}},
	"transport: results of another send": {func(t *testing.T) {
		var mu sync.Mutex
		var last []sdk.ItemResult
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			rs, err := in.Send(ctx, p, b)
			mu.Lock()
			last = rs
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			return last, err
		}))
	}, "make Send safe for concurrent use", nil},
	"transport: empty batch refused": {func(t *testing.T) {
		plugintest.Transport(t, transportCase(func(ctx context.Context, in sdk.Transport, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
			if len(b.Items) == 0 {
				return nil, errors.New("empty batch")
			}
			return in.Send(ctx, p, b)
		}))
	}, "Send of an empty batch failed", nil},
	"transport: unknown config key accepted": {func(t *testing.T) {
		plugintest.Transport(t, plugintest.TransportCase{
			New:  func(*testing.T) sdk.Transport { return looseConfig{newWire()} },
			Peer: wirePeer, PeerAt: wirePeerAt,
		})
	}, `Configure did not refuse the unknown key "plugintest_no_such_key"`, nil},

	"flush policy: never cuts": {func(t *testing.T) {
		plugintest.FlushPolicy(t, flushCase(func(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
			return sdk.FlushDecision{MaxBatch: s.MaxBatchSize, MaxAge: time.Hour}, nil
		}))
	}, "light state (Count 1, OldestAge 200µs, IdleWorkers 20, MaxBatchSize 250, MaxBufferSize 10000): nothing would cut a batch within 10s", nil},
	"flush policy: host limit ignored": {func(t *testing.T) {
		plugintest.FlushPolicy(t, flushCase(func(context.Context, sdk.PendingState) (sdk.FlushDecision, error) {
			return sdk.FlushDecision{MaxBatch: 250, MinCount: 250, MaxAge: time.Millisecond}, nil
		}))
	}, "MaxBatch is 250: it must be between 1 and the host's MaxBatchSize (50)", nil},
	"flush policy: state kept between asks": {func(t *testing.T) {
		var asks atomic.Int64
		plugintest.FlushPolicy(t, flushCase(func(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
			n := int(asks.Add(1)%5) + 1
			return sdk.FlushDecision{MaxBatch: n, MinCount: n, MaxAge: time.Millisecond}, nil
		}))
	}, "keep Decide a function of the PendingState", nil},
	"flush policy: slow": {func(t *testing.T) {
		plugintest.FlushPolicy(t, flushCase(func(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
			time.Sleep(time.Millisecond)
			return sdk.FlushDecision{MaxBatch: s.MaxBatchSize, MinCount: s.MaxBatchSize, MaxAge: time.Millisecond}, nil
		}))
	}, "keep Decide well under a millisecond", nil},

	"action handler: no actions": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{actions: []sdk.ActionSpec{}}))
	}, "Actions() is empty", nil},
	"action handler: refusal as a plain error": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{accept: func(it sdk.Item) (sdk.Item, error) {
			return it, errors.New("owner missing")
		}}))
	}, "refuse it with sdk.Refuse(4xx, message)", nil},
	"action handler: refusal with a 2xx code": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{accept: func(it sdk.Item) (sdk.Item, error) {
			return it, &sdk.Refusal{Code: 200, Message: "owner missing"}
		}}))
	}, "refused it with status 200: use a 4xx status", nil},
	"action handler: id changed": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{accept: func(it sdk.Item) (sdk.Item, error) {
			it.ID += "-enriched"
			return it, nil
		}}))
	}, "keep the action, app and id, only enrich the item", nil},
	"action handler: validate answers short": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{receive: func(req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
			if req.Mode == sdk.ReceiveValidate {
				return make([]sdk.ItemResult, len(req.Items)-1), nil
			}
			return nil, nil
		}}))
	}, "Receive (validate Register) of 2 items returned 1 results: return exactly one result per item, in order", nil},
	"action handler: validate lets through with 200": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{receive: func(req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
			rs := make([]sdk.ItemResult, len(req.Items))
			for i := range rs {
				rs[i].StatusCode = 200
			}
			return rs, nil
		}}))
	}, "StatusCode 0 lets an item through", nil},
	"action handler: panics": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{accept: func(it sdk.Item) (sdk.Item, error) {
			team := strings.Split(it.ID, "/")[1] // ids have no "/": out of range
			it.App = team
			return it, nil
		}}))
	}, "the plugin panicked in Accept: runtime error: index out of range [1] with length 1", []string{
		"the plugin process died during the test: panic: runtime error: index out of range [1] with length 1",
	}},
	"flush policy: panics": {func(t *testing.T) {
		plugintest.FlushPolicy(t, flushCase(func(_ context.Context, s sdk.PendingState) (sdk.FlushDecision, error) {
			return sdk.FlushDecision{MaxBatch: s.MaxBatchSize, MinCount: 250 / s.IdleWorkers, MaxAge: time.Millisecond}, nil
		}))
	}, "the plugin panicked in Decide: runtime error: integer divide by zero", []string{
		"the plugin process died during the test: panic: runtime error: integer divide by zero",
	}},
	"action handler: observer fails": {func(t *testing.T) {
		plugintest.ActionHandler(t, handlerCase(brokenHandler{receive: func(req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
			if req.Mode == sdk.ReceiveObserve {
				return nil, errors.New("a result is not 200")
			}
			return make([]sdk.ItemResult, len(req.Items)), nil
		}}))
	}, "observe, do not judge", nil},
}

// TestBrokenPlugin runs a suite on one broken plugin; TestSuitesCatchBrokenPlugins runs it in a
// child process and reads its verdict.
func TestBrokenPlugin(t *testing.T) {
	name := os.Getenv("PLUGINTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestSuitesCatchBrokenPlugins")
	}
	b, ok := brokenPlugins[name]
	if !ok {
		t.Fatalf("no broken plugin %q", name)
	}
	b.run(t)
}

// withProcess are the broken plugins whose suite also runs them in a plugin process (that run
// starts processes, and costs time): the ones whose process must say something of its own.
var withProcess = map[string]bool{"transport: panics": true, "flush policy: panics": true, "action handler: panics": true}

func TestSuitesCatchBrokenPlugins(t *testing.T) {
	for name, b := range brokenPlugins {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			runs := "in-process|grpc"
			if withProcess[name] {
				runs += "|process"
			}
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokenPlugin$/^("+runs+")$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PLUGINTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the suite hung on the broken plugin:\n%s", out)
			}
			if err == nil {
				t.Fatalf("the suite passed the broken plugin:\n%s", out)
			}
			for _, want := range append([]string{b.want}, b.also...) {
				if !strings.Contains(string(out), want) {
					t.Fatalf("the suite failed without saying %q:\n%s", want, out)
				}
			}
		})
	}
}

// A passing suite prints nothing of go-plugin's debug log; with -v it does.
func TestQuietUnlessVerbose(t *testing.T) {
	if os.Getenv("PLUGINTEST_BROKEN") != "" || os.Getenv("PLUGINTEST_SERVE") != "" {
		t.Skip("in a child process")
	}
	for _, verbose := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConformingPluginsPass$/^flush_policy$", "-test.count=1",
			"-test.v="+strconv.FormatBool(verbose))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("the suite failed on a conforming policy: %v\n%s", err, out)
		}
		if debug := strings.Contains(string(out), "[DEBUG] plugintest"); debug != verbose {
			t.Errorf("with -v=%v go-plugin's debug log printed: %v, want %v:\n%s", verbose, debug, verbose, out)
		}
	}
}
