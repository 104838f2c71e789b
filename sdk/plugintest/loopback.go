package plugintest

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// LoopbackCase describes the two ends of a loopback: one transport, run twice.
type LoopbackCase struct {
	// New returns a new, unconfigured transport. It is called twice: for the sending node and for
	// the receiving node.
	New func(t *testing.T) sdk.Transport
	// Config is the sending node's config {} block (nil: empty).
	Config map[string]any
	// ReceiverConfig is the receiving node's config {} block: it must start the receiving side,
	// on a free port (e.g. listen = "127.0.0.1:0").
	ReceiverConfig map[string]any
	// Peer names the receiving node for the sender, given the receiving node's transport once it
	// is configured (read the address it listens on from it).
	Peer func(receiver sdk.Transport) sdk.Peer
}

// Loopback is two nodes joined by a transport, in the test process: Send runs the sending node's
// transport, whose batches reach the receiving node's transport, which hands them to its node's
// Host.Receive. The receiving node is Node, an in-memory registry (see NewNode), so a test sees
// what its receiving side made of each batch without starting herald.
type Loopback struct {
	// Sender is herald's side of the sending node's transport (through the gRPC path).
	Sender sdk.Transport
	// Peer is the receiving node, as the sender names it.
	Peer sdk.Peer
	// Node is the receiving node's registry and host service: it records each batch it receives
	// (Received) and holds the instances the batches registered (Instance, Instances).
	Node *FakeHost
	// SenderHost is the sending node's host service.
	SenderHost *FakeHost
}

// NewLoopback starts the two nodes of c: both transports run through the gRPC path as herald runs
// plugins, the receiving one configured with c.ReceiverConfig and the host service of its node (a
// NewNode), the sending one with c.Config. Both stop when the test ends (their Close is called
// if they are io.Closers). It fails the test if either refuses its config.
func NewLoopback(t *testing.T, c LoopbackCase) *Loopback {
	t.Helper()
	switch {
	case c.New == nil:
		t.Fatal("plugintest.NewLoopback: LoopbackCase.New is nil: give a function that returns a new transport")
	case c.Peer == nil:
		t.Fatal("plugintest.NewLoopback: LoopbackCase.Peer is nil: say how the sender names the receiving node")
	}
	l := &Loopback{Node: NewNode(), SenderHost: NewFakeHost()}
	rx := c.New(t)
	if rx == nil {
		t.Fatal("LoopbackCase.New returned nil")
	}
	StartReceiver(t, rx, c.ReceiverConfig, l.Node)
	l.Peer = c.Peer(rx)
	tx := c.New(t)
	if tx == nil {
		t.Fatal("LoopbackCase.New returned nil")
	}
	closeAtEnd(t, tx)
	l.Sender = ServeTransport(t, tx)
	MustConfigure(t, l.Sender, c.Config, l.SenderHost)
	return l
}

// Send sends b from the sending node to the receiving node and returns the receiving node's
// answers, one per item.
func (l *Loopback) Send(ctx context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	return l.Sender.Send(ctx, l.Peer, b)
}
