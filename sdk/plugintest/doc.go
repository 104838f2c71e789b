// Package plugintest is what a herald plugin's author imports in tests.
//
// It has four parts:
//
//   - a harness that runs a plugin through the same gRPC path herald uses (go-plugin, the SDK's
//     adapters, and the host service served back to the plugin over go-plugin's broker), inside
//     the test process: ServeTransport, ServeFlushPolicy, ServeActionHandler, StartReceiver;
//   - FakeHost, an sdk.Host that serves instances from a map and records what the plugin asks of
//     it (Apply, Replicate, Receive), to hand to a plugin at Configure; NewNode makes one that is
//     a node's registry, applying what it receives;
//   - NewLoopback, two in-memory nodes joined by a transport, to test a receiving side;
//   - a conformance suite per plugin kind, called from the author's own test. Each runs its
//     checks as subtests: on the plugin in-process, through the gRPC path, and (a few of them) on
//     the plugin in a process of its own, and fails with a message that says what to fix.
//
// # Transports
//
//	func TestConformance(t *testing.T) {
//		plugintest.Transport(t, plugintest.TransportCase{
//			New:    func(t *testing.T) sdk.Transport { return carrier.New() },
//			Config: map[string]any{"listen": "off"},
//			// A reachable peer that answers through host: here a second carrier, the receiving side.
//			Peer: func(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
//				rx := carrier.New()
//				plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
//				return sdk.Peer{Name: "peer", Address: rx.Addr()}
//			},
//			// How a peer at a TCP address is named, for the unreachable and silent peers.
//			PeerAt: func(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} },
//		})
//	}
//
// The suite programs the FakeHost behind the peer to answer each item differently (200, 404, 409
// with an Entity, 500), so it can tell whether the results come back one per item and in order,
// and whether every field of every item reached the peer. A transport that talks to an existing
// protocol (Eureka's HTTP batch endpoint, say) gives a fake server as its Peer that decodes each
// batch, hands it to host.Receive and encodes the answers; one that cannot do even that sets
// Options.PeerIgnoresHost.
//
// Checks: results one per item and in order for batches of 1, 7 and 250 items, every Item field
// carried unchanged (custom actions with their Payload included), a 2500-item batch, an empty
// batch, concurrent sends, a peer whose node cannot apply the batch now (must be retried), a port
// nothing listens on (Transient or Congestion, never Permanent), a peer that never answers with the
// send cancelled or timing out (returns within 2 s, with an error that is not Permanent), an
// already cancelled context, a send cancelled while the peer's node holds the batch (FakeHost.Hold),
// and Info and Configure. Through gRPC herald's side of a cancelled call returns at once whatever
// the plugin does, so the suite also watches the plugin's own Send: it must return within 2 s of
// its context ending.
//
// # Flush policies
//
//	plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{
//		New:    func(t *testing.T) sdk.FlushPolicy { return window.New() },
//		Config: map[string]any{"window": "2ms"},
//	})
//
// Checks, on the States below: sane decisions (1 ≤ MaxBatch ≤ MaxBatchSize, 0 ≤ MinCount ≤
// MaxBatch, no negative durations), that a batch is eventually cut (within Options.MaxWait, asking
// again at every RecheckAfter as herald does), determinism, the same answer through gRPC, speed
// (median in-process decision under 250 µs), a cancelled context, and Info and Configure.
//
// # Action handlers
//
//	plugintest.ActionHandler(t, plugintest.ActionHandlerCase{
//		New:    func(t *testing.T) sdk.ActionHandler { return audit.New() },
//		Config: map[string]any{"path": filepath.Join(t.TempDir(), "audit.jsonl")},
//	})
//
// Checks: Actions is non-empty, every action named once with a valid mode; Accept returns the item
// with its action, app and id unchanged (a changed Instance still JSON with the same app and id),
// or a refusal made with sdk.Refuse (4xx and a message), and the refusal arrives through gRPC with
// its code and message; validate returns one result per item (0 or an error status); apply one
// Eureka answer per item; observe takes items with their results without failing; concurrent
// calls; Info and Configure.
//
// # Options
//
// Every case embeds Options, for plugins that legitimately differ from what a suite assumes:
//
//	plugintest.TransportCase{..., Options: plugintest.Options{SkipUnreachable: true}}
//
// Each option is documented on its field; none turns off the gRPC run.
//
// # The plugin process
//
// The third run starts the test binary again as a plugin process: with -test.run naming the test
// that called the suite and PLUGINTEST_SERVE set, the suite serves what the case's New returns
// with sdk.Serve instead of running checks, and the parent talks to it through go-plugin's client
// (handshake, mutual TLS) as herald does. Code of that test before the suite call runs in the
// plugin process too; keep it to setting up the case.
//
// # Panics and output
//
// A panic in the plugin fails the test with the panic's value and stack instead of crashing the
// test binary: in the test process the suites and the Serve functions recover it; a plugin process
// that dies is reported with its panic and stack, read from its stderr. go-plugin's log, and a
// plugin process's stderr, are printed only for a failing test, attached to its failure, or as
// they come with go test -v.
//
// # Testing a receiving side
//
// NewLoopback starts two nodes in the test process, each with its own instance of the transport
// served through the gRPC path: the sender, and a receiver whose node is NewNode, an in-memory
// registry behind Host.Receive that answers as a Eureka server answers a peer (200, 404 for a
// heartbeat of an instance it does not hold, 409 with its newer copy):
//
//	l := plugintest.NewLoopback(t, plugintest.LoopbackCase{
//		New:            func(*testing.T) sdk.Transport { return carrier.New() },
//		ReceiverConfig: map[string]any{"listen": "127.0.0.1:0"},
//		Peer:           func(rx sdk.Transport) sdk.Peer { return sdk.Peer{Name: "b", Address: rx.(*carrier.Carrier).Addr()} },
//	})
//	rs, err := l.Send(ctx, plugintest.Batch("b1", 5)) // the receiving node's answers
//	inst := l.Node.Instances()["PLUGINTEST/i-0"]    // what it registered
//
// # Temporary files
//
// go-plugin's connections leave unix sockets in the temporary directory; call Main from your
// TestMain so they go to a directory of the test binary's own, removed at the end:
//
//	func TestMain(m *testing.M) { plugintest.Main(m) }
package plugintest
