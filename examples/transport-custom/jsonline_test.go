package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/peerauth"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// Addr is the receiving side's address (for the tests: a node's listener is where its config says).
func (j *JSONLine) Addr() string { j.mu.Lock(); defer j.mu.Unlock(); return j.ln.Addr().String() }

// receiver starts a jsonline receiving side whose node is host, as a peer runs it (a plugin
// process whose host service is herald's), and returns the peer that names it.
func receiver(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
	rx := New()
	plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
	return sdk.Peer{Name: "peer", Address: rx.Addr()}
}

func TestConformance(t *testing.T) {
	plugintest.Transport(t, plugintest.TransportCase{
		New:    func(*testing.T) sdk.Transport { return New() },
		Config: map[string]any{"listen": "off", "timeout": "10s"},
		Peer:   receiver,
		PeerAt: func(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} },
	})
}

// Two nodes joined by jsonline: what the sending node sends is applied by the receiving node
// (an in-memory registry behind the receiving side's Host.Receive), whose answers come back per
// item; a node that cannot take the batch makes the send fail as congestion.
func TestLoopback(t *testing.T) {
	l := plugintest.NewLoopback(t, plugintest.LoopbackCase{
		New:            func(*testing.T) sdk.Transport { return New() },
		Config:         map[string]any{"listen": "off"},
		ReceiverConfig: map[string]any{"listen": "127.0.0.1:0"},
		Peer:           func(rx sdk.Transport) sdk.Peer { return sdk.Peer{Name: "b", Address: rx.(*JSONLine).Addr()} },
	})
	ctx := context.Background()
	reg := plugintest.Item(sdk.ActionRegister, "ORDERS", "o-1")
	beat := plugintest.Item(sdk.ActionHeartbeat, "ORDERS", "o-1")
	unknown := plugintest.Item(sdk.ActionHeartbeat, "ORDERS", "o-2")
	rs, err := l.Send(ctx, sdk.Batch{ID: "b1", Items: []sdk.Item{reg, beat, unknown}})
	if err != nil || len(rs) != 3 || rs[0].StatusCode != 200 || rs[1].StatusCode != 200 || rs[2].StatusCode != 404 {
		t.Fatalf("results %+v %v, want 200, 200, 404", rs, err)
	}
	got, ok := l.Node.Instances()["ORDERS/o-1"]
	if !ok || string(got) != string(reg.Instance) {
		t.Fatalf("the receiving node holds %q, want the registered instance", got)
	}
	if b := l.Node.Received(); len(b) != 1 || b[0].ID != "b1" || b[0].Items[0].TraceParent != reg.TraceParent {
		t.Fatalf("the receiving node got %+v", b)
	}
	// A heartbeat older than the node's copy: 409 with that copy, carried back unchanged.
	stale := beat
	stale.LastDirtyTimestamp--
	if rs, err := l.Send(ctx, sdk.Batch{ID: "b2", Items: []sdk.Item{stale}}); err != nil || len(rs) != 1 || rs[0].StatusCode != 409 ||
		string(rs[0].Entity) != string(reg.Instance) {
		t.Fatalf("a stale heartbeat: %+v %v, want 409 with the node's copy", rs, err)
	}

	l.Node.SetErr(errors.New("action handler restarting"))
	if _, err := l.Send(ctx, plugintest.Batch("b3", 2)); sdk.ClassOf(err) != sdk.Congestion {
		t.Fatalf("a node that cannot take the batch: %v (%s), want congestion", err, sdk.ClassOf(err))
	}
}

// A peer without an Address is reached at its Eureka port plus port_offset.
func TestPeerByEurekaURL(t *testing.T) {
	host := plugintest.NewFakeHost()
	peer := receiver(t, host)
	_, port, _ := net.SplitHostPort(peer.Address)
	p, _ := strconv.Atoi(port)
	if p <= 1000 {
		t.Skipf("port %d leaves no room for an offset", p)
	}
	tr := New()
	plugintest.MustConfigure(t, tr, map[string]any{"listen": "off", "port_offset": float64(1000)}, nil)
	byURL := sdk.Peer{Name: "by-url", URL: "http://127.0.0.1:" + strconv.Itoa(p-1000) + "/eureka/"}
	if rs, err := tr.Send(context.Background(), byURL, plugintest.Batch("url", 2)); err != nil || len(rs) != 2 {
		t.Fatalf("send by URL: %+v %v", rs, err)
	}
	if len(host.ReceivedItems()) != 2 {
		t.Fatalf("the peer got %d items", len(host.ReceivedItems()))
	}
}

// Batches to a peer share a connection, and a connection the peer closed while it was idle (a
// restarted peer) costs no failed send: the batch goes out again on a new one.
func TestConnectionReuse(t *testing.T) {
	host := plugintest.NewFakeHost()
	rx := New()
	plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
	peer := sdk.Peer{Name: "peer", Address: rx.Addr()}
	tx := New()
	plugintest.MustConfigure(t, tx, map[string]any{"listen": "off"}, nil)
	t.Cleanup(func() { tx.Close() })
	ctx := context.Background()
	for i := range 3 {
		if _, err := tx.Send(ctx, peer, plugintest.Batch("b"+strconv.Itoa(i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	tx.mu.Lock()
	idle := len(tx.idle[peer.Address])
	tx.mu.Unlock()
	rx.mu.Lock()
	served := len(rx.conns)
	for c := range rx.conns {
		c.Close()
	}
	rx.mu.Unlock()
	if idle != 1 || served != 1 {
		t.Fatalf("three batches in a row: %d idle connections at the sender, %d at the receiver, want 1 and 1", idle, served)
	}
	if rs, err := tx.Send(ctx, peer, plugintest.Batch("after", 2)); err != nil || len(rs) != 2 {
		t.Fatalf("a send after the peer closed the idle connection: %+v %v", rs, err)
	}
	if got := len(host.ReceivedItems()); got != 8 {
		t.Fatalf("the peer received %d items, want 8", got)
	}
}

func TestConfigDiagnostics(t *testing.T) {
	d := plugintest.Configure(t, New(), map[string]any{"timeout": "soon", "port_offset": 0.5, "listen": 8000}, nil)
	paths := map[string]bool{}
	for _, x := range d {
		paths[x.Path] = !x.Warning && x.Message != ""
	}
	if len(d) != 3 || !paths["timeout"] || !paths["port_offset"] || !paths["listen"] {
		t.Errorf("diagnostics %+v, want one each for timeout, port_offset and listen", d)
	}
	busy := plugintest.ClosedAddr(t)
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	if d := plugintest.Configure(t, New(), map[string]any{"listen": busy}, nil); len(d) != 1 || d[0].Path != "listen" {
		t.Errorf("a port in use: diagnostics %+v", d)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }

// The receiving side takes batches from peers only: a batch without a signature, or signed with
// another cluster's secret, or altered after it was signed, is refused and never reaches the node.
func TestReceivingSideAuthenticates(t *testing.T) {
	host := plugintest.NewFakeHost()
	peer := receiver(t, host)
	batch := eurekawire.AppendReplicationList(nil, plugintest.Batch("forged", 2).Items)
	other, err := peerauth.NewSigner("intruder", peerauth.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	ours, err := plugintest.PeerAuth.Signer("node-b")
	if err != nil {
		t.Fatal(err)
	}
	altered := append([]byte(nil), batch...)
	altered[len(altered)-3] ^= 1
	for name, req := range map[string]message{
		"unsigned":              {ID: "u", Batch: batch},
		"another secret":        {ID: "o", Batch: batch, Auth: other.SignValues("POST", signedPath, batch)},
		"altered after signing": {ID: "a", Batch: altered, Auth: ours.SignValues("POST", signedPath, batch)},
	} {
		conn, err := net.Dial("tcp", peer.Address)
		if err != nil {
			t.Fatal(err)
		}
		var resp message
		if err := json.NewEncoder(conn).Encode(req); err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(conn).Decode(&resp)
		conn.Close()
		if err != nil || resp.Error == "" || resp.Results != nil {
			t.Errorf("%s: answer %+v (%v), want a refusal", name, resp, err)
		}
	}
	if got := host.ReceivedItems(); len(got) != 0 {
		t.Fatalf("the node received %d items from unauthenticated senders", len(got))
	}
	// The same batch, signed with the cluster's secret, goes through.
	req := message{ID: "ok", Batch: batch, Auth: ours.SignValues("POST", signedPath, batch)}
	conn, err := net.Dial("tcp", peer.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var resp message
	if err := json.NewEncoder(conn).Encode(req); err != nil || json.NewDecoder(conn).Decode(&resp) != nil || resp.Error != "" {
		t.Fatalf("a signed batch: %+v", resp)
	}
	if got := host.ReceivedItems(); len(got) != 2 {
		t.Fatalf("the node received %d items, want 2", len(got))
	}
}

// The receiving side closes a connection that brings no batch for idleTimeout, so a caller
// cannot hold connections open for nothing; the sender's next batch goes on a new one.
func TestIdleConnectionClosed(t *testing.T) {
	host := plugintest.NewFakeHost()
	rx := New()
	rx.idleFor = 50 * time.Millisecond
	plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
	conn, err := net.Dial("tcp", rx.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The receiver sends nothing on its own: the read ends when it closes the connection (EOF),
	// or at the test's own deadline when it keeps it open.
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle connection was not closed by the receiver: %v", err)
	}
	tx := New()
	plugintest.MustConfigure(t, tx, map[string]any{"listen": "off"}, nil)
	t.Cleanup(func() { tx.Close() })
	peer := sdk.Peer{Name: "peer", Address: rx.Addr()}
	if _, err := tx.Send(context.Background(), peer, plugintest.Batch("first", 1)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rx.mu.Lock()
		open := len(rx.conns)
		rx.mu.Unlock()
		if open == 0 {
			break // the receiver closed the sender's idle connection
		}
		if time.Now().After(deadline) {
			t.Fatal("the receiver kept the sender's idle connection open")
		}
	}
	if rs, err := tx.Send(context.Background(), peer, plugintest.Batch("second", 1)); err != nil || len(rs) != 1 {
		t.Fatalf("a send after the receiver closed the idle connection: %+v %v", rs, err)
	}
}
