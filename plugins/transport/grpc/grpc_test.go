package grpctransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// recordingHost is the receiving node as the transport sees it: it records the batches handed to
// it and answers each item from its fields (a heartbeat for "missing" is 404, a register of
// "older" is 409 with the newer copy, anything else 200 with the item's id as entity, so answers
// can be matched to items).
type recordingHost struct {
	mu      sync.Mutex
	batches []sdk.Batch
	err     error         // refuse every batch with it
	jitter  time.Duration // answer after a random wait up to this
	block   chan struct{} // answer only once closed (or ctx ends)
}

func (h *recordingHost) Receive(ctx context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	h.mu.Lock()
	h.batches = append(h.batches, b)
	err, jitter, block := h.err, h.jitter, h.block
	h.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if jitter > 0 {
		time.Sleep(rand.N(jitter))
	}
	if err != nil {
		return nil, err
	}
	out := make([]sdk.ItemResult, len(b.Items))
	for i, it := range b.Items {
		switch {
		case it.Action == sdk.ActionHeartbeat && it.ID == "missing":
			out[i] = sdk.ItemResult{StatusCode: 404}
		case it.Action == sdk.ActionRegister && it.ID == "older":
			out[i] = sdk.ItemResult{StatusCode: 409, Entity: []byte(`{"instanceId":"older","lastDirtyTimestamp":"2000"}`)}
		default:
			out[i] = sdk.ItemResult{StatusCode: 200, Entity: []byte(it.ID)}
		}
	}
	return out, nil
}

func (h *recordingHost) received() []sdk.Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Batch(nil), h.batches...)
}

func (*recordingHost) Instance(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, sdk.ErrNoHost
}
func (*recordingHost) Apply(context.Context, []sdk.Item) ([]sdk.ItemResult, error) {
	return nil, sdk.ErrNoHost
}
func (*recordingHost) Replicate(context.Context, []sdk.Item) error { return sdk.ErrNoHost }

// receiver starts a configured plugin listening on addr (127.0.0.1:0 when empty).
func receiver(t *testing.T, host sdk.Host, addr string, config map[string]any) *Plugin {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg := map[string]any{"listen": addr}
	for k, v := range config {
		cfg[k] = v
	}
	p := NewPlugin()
	if d := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, cfg), Host: host, PeerAuth: testAuth}); len(d) > 0 {
		t.Fatalf("configure receiver: %v", d)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// testAuth is the cluster secret of the tests' senders and receivers.
var testAuth = peerauth.Config{Secrets: []string{peerauth.NewSecret()}}

// sender is a plugin that only sends.
func sender(t *testing.T, config map[string]any) *Plugin {
	t.Helper()
	cfg := map[string]any{"listen": "off"}
	for k, v := range config {
		cfg[k] = v
	}
	p := NewPlugin()
	if d := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, cfg), PeerAuth: testAuth}); len(d) > 0 {
		t.Fatalf("configure sender: %v", d)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func peerAt(addr string) sdk.Peer {
	return sdk.Peer{Name: "peer-" + addr, URL: "http://" + addr + "/eureka/", Address: addr}
}

func classOf(t *testing.T, err error) sdk.FailureClass {
	t.Helper()
	var se *sdk.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) has no failure class", err, err)
	}
	return se.Class
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSendCarriesItemsAndAnswersInOrder(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run("compress="+strconv.FormatBool(compress), func(t *testing.T) {
			host := &recordingHost{}
			r := receiver(t, host, "", map[string]any{"compress": compress})
			s := sender(t, map[string]any{"compress": compress})
			items := []sdk.Item{
				{Action: sdk.ActionRegister, App: "DEMO", ID: "a", LastDirtyTimestamp: 1000, Status: "UP",
					Instance:    []byte(`{"instanceId":"a","app":"DEMO","status":"UP"}`),
					TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
				{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "missing", LastDirtyTimestamp: 1000, Status: "UP"},
				{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: "b", LastDirtyTimestamp: 1001, Status: "OUT_OF_SERVICE", OverriddenStatus: "OUT_OF_SERVICE",
					StatusVersion: 1700000000123},
				{Action: sdk.ActionRegister, App: "DEMO", ID: "older", LastDirtyTimestamp: 1000, Status: "UP", Instance: []byte(`{}`)},
				{Action: "AuditNote", App: "DEMO", ID: "c", Payload: []byte{0, 1, 2, 255}},
				{Action: sdk.ActionCancel, App: "DEMO", ID: "d"},
			}
			res, err := s.Send(context.Background(), peerAt(r.Addr().String()), sdk.Batch{ID: "batch-1", Items: items})
			if err != nil {
				t.Fatal(err)
			}
			want := []int{200, 404, 200, 409, 200, 200}
			if len(res) != len(want) {
				t.Fatalf("%d results for %d items", len(res), len(items))
			}
			for i, r := range res {
				if r.StatusCode != want[i] {
					t.Errorf("item %d: status %d, want %d", i, r.StatusCode, want[i])
				}
			}
			if string(res[0].Entity) != "a" || res[1].Entity != nil || !strings.Contains(string(res[3].Entity), `"2000"`) {
				t.Errorf("entities: %q %q %q", res[0].Entity, res[1].Entity, res[3].Entity)
			}
			got := host.received()
			if len(got) != 1 || got[0].ID != "batch-1" {
				t.Fatalf("host got %+v", got)
			}
			for i := range items {
				if fmt.Sprintf("%+v", got[0].Items[i]) != fmt.Sprintf("%+v", items[i]) {
					t.Errorf("item %d arrived as\n%+v\nsent\n%+v", i, got[0].Items[i], items[i])
				}
			}
			if st := s.Stats(); st.Batches != 1 || st.Items != int64(len(items)) || st.BytesSent == 0 || st.BytesReceived == 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Many workers send at once: every send gets its own batch's answers, all on one stream, while
// the receiving node answers out of order.
func TestConcurrentSendsShareOneStream(t *testing.T) {
	host := &recordingHost{jitter: 3 * time.Millisecond}
	r := receiver(t, host, "", nil)
	s := sender(t, nil)
	peer := peerAt(r.Addr().String())
	const workers, each = 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				n := 1 + (w+k)%7
				items := make([]sdk.Item, n)
				for i := range items {
					items[i] = sdk.Item{Action: sdk.ActionHeartbeat, App: "LOAD", ID: fmt.Sprintf("w%d-k%d-i%d", w, k, i)}
				}
				res, err := s.Send(context.Background(), peer, sdk.Batch{ID: fmt.Sprintf("w%d-k%d", w, k), Items: items})
				if err != nil {
					errs <- err
					continue
				}
				for i, x := range res {
					if string(x.Entity) != items[i].ID {
						errs <- fmt.Errorf("batch w%d-k%d item %d answered for %q", w, k, i, x.Entity)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(host.received()); n != workers*each {
		t.Errorf("host got %d batches, want %d", n, workers*each)
	}
	if n := r.current().srv.streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want 1", n)
	}
}

func TestReceiverDownIsTransient(t *testing.T) {
	s := sender(t, nil)
	start := time.Now()
	_, err := s.Send(context.Background(), peerAt(freeAddr(t)), sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}})
	if err == nil {
		t.Fatal("send to a port nobody listens on succeeded")
	}
	if c := classOf(t, err); c != sdk.Transient {
		t.Fatalf("class %v (%v), want transient", c, err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("refused connection took %v", el)
	}
}

func TestHostErrorIsCongestion(t *testing.T) {
	host := &recordingHost{err: errors.New("node is starting")}
	r := receiver(t, host, "", nil)
	s := sender(t, nil)
	_, err := s.Send(context.Background(), peerAt(r.Addr().String()), sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}})
	if err == nil {
		t.Fatal("refused batch succeeded")
	}
	if c := classOf(t, err); c != sdk.Congestion || !strings.Contains(err.Error(), "node is starting") {
		t.Fatalf("class %v (%v), want congestion naming the host's error", c, err)
	}
	// The stream survives a refused batch.
	host.mu.Lock()
	host.err = nil
	host.mu.Unlock()
	if _, err := s.Send(context.Background(), peerAt(r.Addr().String()), sdk.Batch{ID: "c", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}}); err != nil {
		t.Fatal(err)
	}
	if n := r.current().srv.streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want 1", n)
	}
}

func TestSendHonoursContext(t *testing.T) {
	host := &recordingHost{block: make(chan struct{})}
	defer close(host.block)
	r := receiver(t, host, "", nil)
	s := sender(t, map[string]any{"read_timeout": "30s"})
	peer := peerAt(r.Addr().String())
	batch := sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Send(ctx, peer, batch)
	if el := time.Since(start); err == nil || el > time.Second {
		t.Fatalf("cancelled send returned %v after %v", err, el)
	}
	if c := classOf(t, err); c != sdk.Transient {
		t.Errorf("cancelled: class %v, want transient", c)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.Send(ctx, peer, batch)
	if el := time.Since(start); err == nil || el > time.Second {
		t.Fatalf("send past its deadline returned %v after %v", err, el)
	}
	if c := classOf(t, err); c != sdk.Congestion {
		t.Errorf("deadline: class %v, want congestion", c)
	}

	// An already cancelled ctx returns at once, without touching the network.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, peer, batch); err == nil || classOf(t, err) != sdk.Transient {
		t.Errorf("send with a cancelled ctx: %v", err)
	}
}

func TestReadTimeoutIsCongestion(t *testing.T) {
	host := &recordingHost{block: make(chan struct{})}
	defer close(host.block)
	r := receiver(t, host, "", nil)
	s := sender(t, map[string]any{"read_timeout": "150ms"})
	start := time.Now()
	_, err := s.Send(context.Background(), peerAt(r.Addr().String()), sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}})
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("send to a stuck node returned %v after %v", err, time.Since(start))
	}
	if c := classOf(t, err); c != sdk.Congestion {
		t.Errorf("class %v (%v), want congestion", c, err)
	}
}

// The receiving node restarts: sends fail as transient while it is down, and the sender
// reconnects on its own once it is back.
func TestReconnectAfterReceiverRestarts(t *testing.T) {
	host := &recordingHost{}
	addr := freeAddr(t)
	r := receiver(t, host, addr, nil)
	s := sender(t, nil)
	peer := peerAt(addr)
	batch := sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionHeartbeat, App: "A", ID: "1"}}}
	if _, err := s.Send(context.Background(), peer, batch); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Send(context.Background(), peer, batch)
	if err == nil {
		t.Fatal("send to a stopped receiver succeeded")
	}
	if c := classOf(t, err); c != sdk.Transient {
		t.Fatalf("class %v (%v), want transient", c, err)
	}
	receiver(t, host, addr, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Send(context.Background(), peer, batch)
		if err == nil {
			break
		}
		if c := classOf(t, err); c != sdk.Transient {
			t.Fatalf("while reconnecting: class %v (%v)", c, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect within 5s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(host.received()); n != 2 {
		t.Errorf("host got %d batches, want 2", n)
	}
}

// A peer port where something else speaks gRPC: retrying cannot help.
func TestUnknownServiceIsPermanent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	s := sender(t, nil)
	_, err = s.Send(context.Background(), peerAt(l.Addr().String()), sdk.Batch{ID: "b", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "1"}}})
	if err == nil || classOf(t, err) != sdk.Permanent {
		t.Fatalf("send to a server without the service: %v, want permanent", err)
	}
}

func TestClosedTransport(t *testing.T) {
	host := &recordingHost{}
	r := receiver(t, host, "", nil)
	s := sender(t, nil)
	_ = s.Close()
	_, err := s.Send(context.Background(), peerAt(r.Addr().String()), sdk.Batch{ID: "b"})
	if err == nil || classOf(t, err) != sdk.Transient {
		t.Fatalf("send after Close: %v", err)
	}
}

// A peer whose address cannot be found (sdk.PeerAddress) is a permanent failure.
func TestUnderivableAddress(t *testing.T) {
	s := sender(t, nil)
	if _, err := s.Send(context.Background(), sdk.Peer{Name: "x", URL: "http://127.0.0.1:65000/eureka/"}, sdk.Batch{}); err == nil || classOf(t, err) != sdk.Permanent {
		t.Errorf("send to an underivable address: %v", err)
	}
}

func TestConfigure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct {
		name   string
		config map[string]any
		node   string
		want   []string // "path: message part"
	}{
		{"unknown key", map[string]any{"listen": "off", "port": 9000}, "", []string{"port: unknown key (known: compress, connect_timeout, listen, port_offset, read_timeout)"}},
		{"wrong types", map[string]any{"listen": 9000.0, "compress": "yes", "connect_timeout": 5.0, "port_offset": 1.5},
			"", []string{`listen: want a string, got the number 9000`, "compress: want true or false", "connect_timeout: want a duration with a unit",
				"port_offset: want a whole number"}},
		{"negative timeout", map[string]any{"listen": "off", "read_timeout": "-1s"}, "", []string{"read_timeout: want a positive duration"}},
		{"bad listen", map[string]any{"listen": "nowhere"}, "", []string{`listen: want "host:port" (or "off" to take no batches)`}},
		{"port out of range", map[string]any{"listen": "127.0.0.1:70000"}, "", []string{"listen: want"}},
		{"offset out of range", map[string]any{"listen": "off", "port_offset": 70000.0}, "", []string{"port_offset: want a whole number from 1 to 65534"}},
		{"no node URL for the default", nil, "", []string{"listen: cannot take the default from the node's URL"}},
		{"address in use", map[string]any{"listen": taken.Addr().String()}, "", []string{"listen: cannot listen on " + taken.Addr().String()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewPlugin()
			defer p.Close()
			diags := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, c.config), NodeURL: c.node})
			var got []string
			for _, d := range diags {
				if d.Message == "" {
					t.Errorf("diagnostic for %q has no message", d.Path)
				}
				got = append(got, d.Path+": "+d.Message)
			}
			if len(got) != len(c.want) {
				t.Fatalf("diagnostics %q, want %d like %q", got, len(c.want), c.want)
			}
			for _, w := range c.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("no diagnostic like %q in %q", w, got)
				}
			}
		})
	}

	t.Run("default listen is the node's port plus port_offset", func(t *testing.T) {
		addr := freeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		if n <= 7 {
			t.Skip("port too low")
		}
		p := NewPlugin()
		defer p.Close()
		if d := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, map[string]any{"port_offset": 7, "compress": true}),
			NodeURL: fmt.Sprintf("http://127.0.0.1:%d/eureka/", n-7), Host: &recordingHost{}}); len(d) > 0 {
			t.Fatal(d)
		}
		if p.Addr() == nil || p.Addr().String() != addr {
			t.Fatalf("listening on %v, want %s", p.Addr(), addr)
		}
		if !p.current().opts.Compress || p.current().opts.PortOffset != 7 {
			t.Errorf("options %+v", p.current().opts)
		}
	})
	t.Run("off takes no batches", func(t *testing.T) {
		p := NewPlugin()
		defer p.Close()
		if d := p.Configure(context.Background(), sdk.ConfigureRequest{Config: raw(t, map[string]any{"listen": "off"}), NodeURL: "http://127.0.0.1:8761/eureka/"}); len(d) > 0 {
			t.Fatal(d)
		}
		if p.Addr() != nil {
			t.Fatalf("listening on %v", p.Addr())
		}
	})
	t.Run("info documents every key", func(t *testing.T) {
		info, err := sdk.InfoOf(NewPlugin(), sdk.KindTransport)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "grpc" || info.Kind != sdk.KindTransport || info.ProtocolVersion != sdk.ProtocolVersion {
			t.Errorf("info %+v", info)
		}
		var keys []string
		for _, k := range info.Schema {
			keys = append(keys, k.Path)
			if k.Description == "" || k.Type == "" {
				t.Errorf("key %s undocumented", k.Path)
			}
		}
		if strings.Join(keys, ",") != "listen,port_offset,compress,connect_timeout,read_timeout" {
			t.Errorf("schema keys %v", keys)
		}
	})
}

func TestFrameSize(t *testing.T) {
	var b sdk.Batch
	for i := 0; i < 100; i++ {
		id := "i-" + strconv.Itoa(i)
		b.Items = append(b.Items,
			sdk.Item{Action: sdk.ActionRegister, App: "LOAD", ID: id, LastDirtyTimestamp: 1000, Status: "UP",
				Instance: []byte(`{"instanceId":"` + id + `","app":"LOAD","hostName":"host-` + id + `","status":"UP"}`)},
			sdk.Item{Action: sdk.ActionHeartbeat, App: "LOAD", ID: id, LastDirtyTimestamp: 1000, Status: "UP"})
	}
	plain, zipped := FrameSize(b, false), FrameSize(b, true)
	if json := len(eurekawire.AppendReplicationList(nil, b.Items)); plain <= 0 || plain >= json {
		t.Errorf("frame %d bytes, JSON %d", plain, json)
	}
	if zipped <= 0 || zipped >= plain {
		t.Errorf("gzipped frame %d bytes, plain %d", zipped, plain)
	}
}

// raw is a config block as the host hands it to a plugin.
func raw(t *testing.T, m map[string]any) sdk.RawConfig {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
