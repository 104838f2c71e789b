package plugintest

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
)

// TransportCase describes the transport under test.
type TransportCase struct {
	// New returns a fresh transport. The suite configures it with Config and a FakeHost.
	New func(t *testing.T) sdk.Transport
	// Config is the plugin's config {} block for the test (nil: empty).
	Config map[string]any
	// Peer returns a reachable peer that answers every item (for a transport with a receiving side,
	// typically a second instance of it, configured with a FakeHost).
	Peer func(t *testing.T) sdk.Peer
	// Unreachable returns a peer nothing listens for (nil: the suite skips that check).
	Unreachable func(t *testing.T) sdk.Peer
	// SkipUnknownKey skips the check that an unknown config key is refused (for plugins that take
	// free-form config).
	SkipUnknownKey bool
}

// Transport runs the transport conformance suite, in-process and through the gRPC path.
func Transport(t *testing.T, c TransportCase) {
	t.Helper()
	if c.New == nil || c.Peer == nil {
		t.Fatal("plugintest.Transport: TransportCase needs New and Peer")
	}
	for _, via := range []string{"in-process", "grpc"} {
		t.Run(via, func(t *testing.T) {
			var impl sdk.Transport
			get := func(t *testing.T) sdk.Transport {
				impl = c.New(t)
				if via == "grpc" {
					tr := ServeTransport(t, impl)
					mustConfigure(t, tr, c.Config, NewFakeHost())
					return tr
				}
				mustConfigure(t, impl, c.Config, NewFakeHost())
				return impl
			}
			t.Run("one result per item, in order", func(t *testing.T) {
				tr, peer := get(t), c.Peer(t)
				for _, n := range []int{1, 7, 250} {
					b := Batch("conformance", n)
					rs, err := tr.Send(context.Background(), peer, b)
					if err != nil {
						t.Fatalf("Send of a batch of %d items to a reachable peer failed: %v", n, err)
					}
					if len(rs) != n {
						t.Fatalf("Send returned %d results for a batch of %d items: return exactly one result per item, in order", len(rs), n)
					}
					for i, r := range rs {
						if r.StatusCode == 0 {
							t.Fatalf("result %d of %d has no status code: set the peer's answer (200, 404, 409, …) for every item", i, n)
						}
					}
				}
			})
			t.Run("empty batch", func(t *testing.T) {
				rs, err := get(t).Send(context.Background(), c.Peer(t), sdk.Batch{ID: "empty"})
				if err == nil && len(rs) != 0 {
					t.Fatalf("Send returned %d results for an empty batch: return none", len(rs))
				}
			})
			t.Run("unreachable peer is retried", func(t *testing.T) {
				if c.Unreachable == nil {
					t.Skip("no Unreachable peer given")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				_, err := get(t).Send(ctx, c.Unreachable(t), Batch("down", 3))
				if err == nil {
					t.Fatal("Send to a peer nothing listens for succeeded: return an error made with sdk.Fail(sdk.Transient, err)")
				}
				if cl := sdk.ClassOf(err); cl == sdk.Permanent {
					t.Fatalf("Send to an unreachable peer failed as %s (%v): a network failure must be sdk.Transient "+
						"(or sdk.Congestion for a timeout), or herald drops the batch and loses writes", cl, err)
				}
			})
			t.Run("cancelled context", func(t *testing.T) {
				tr := get(t)
				peer := c.Peer(t)
				if c.Unreachable != nil {
					peer = c.Unreachable(t)
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				done := make(chan error, 1)
				go func() { _, err := tr.Send(ctx, peer, Batch("cancelled", 3)); done <- err }()
				select {
				case err := <-done:
					if err != nil && sdk.ClassOf(err) == sdk.Permanent {
						t.Fatalf("Send with a cancelled context failed as permanent (%v): herald cancels sends when it stops, "+
							"and the batch must be kept for retry (return ctx.Err() or sdk.Fail(sdk.Transient, …))", err)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("Send ignored a cancelled context for 2 s: pass ctx to every blocking call (dial, write, read)")
				}
			})
			t.Run("describe and configure", func(t *testing.T) {
				tr := get(t)
				checkBase(t, tr, impl, sdk.KindTransport, c.SkipUnknownKey)
			})
		})
	}
}

// checkBase checks Info and that Configure refuses an unknown key.
// impl is the plugin itself (p may be its gRPC client, which always has Configure).
func checkBase(t *testing.T, p, impl any, kind string, skipUnknown bool) {
	t.Helper()
	if _, ok := impl.(sdk.Describer); ok {
		info := p.(sdk.Describer).Info()
		if info.Name == "" {
			t.Error("Info().Name is empty: give the plugin a name, herald shows it in logs and errors")
		}
		if info.Kind != "" && info.Kind != kind {
			t.Errorf("Info().Kind is %q, want %q", info.Kind, kind)
		}
		for _, k := range info.Schema {
			if k.Path == "" {
				t.Error("a ConfigKey in Info().Schema has no Path")
			}
		}
	}
	if _, ok := impl.(sdk.Configurable); !ok || skipUnknown {
		return
	}
	for _, d := range Configure(t, p, map[string]any{"plugintest_no_such_key": 1}, nil) {
		if !d.Warning && d.Path == "plugintest_no_such_key" {
			return
		}
	}
	t.Error(`Configure accepted an unknown key "plugintest_no_such_key": answer sdk.Diagnostic{Path: key, Message: "unknown key"} ` +
		"so a typo in an operator's config {} block stops herald with the block's file and line (or set SkipUnknownKey)")
}
