package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/plugins/flush/sizeorage"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// eurekaPeer is an HTTP server that answers POST /peerreplication/batch as a node does, 200 per item.
func eurekaPeer(t *testing.T) sdk.Peer {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		items, err := eurekawire.DecodeReplicationList(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs := make([]sdk.ItemResult, len(items))
		for i := range rs {
			rs[i].StatusCode = 200
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(eurekawire.AppendReplicationListResponse(nil, rs))
	}))
	t.Cleanup(srv.Close)
	return sdk.Peer{Name: "peer", URL: srv.URL + "/eureka/"}
}

// closedPeer is a peer on a port nothing listens on.
func closedPeer(t *testing.T) sdk.Peer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return sdk.Peer{Name: "down", URL: "http://" + addr + "/eureka/"}
}

func TestFirstPartyPluginsConform(t *testing.T) {
	t.Run("transport http", func(t *testing.T) {
		plugintest.Transport(t, plugintest.TransportCase{
			New:         func(*testing.T) sdk.Transport { return httptransport.NewPlugin() },
			Config:      map[string]any{"read_timeout": "2s"},
			Peer:        eurekaPeer,
			Unreachable: closedPeer,
		})
	})
	t.Run("flush size-or-age", func(t *testing.T) {
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return sizeorage.New() }})
	})
	t.Run("flush adaptive", func(t *testing.T) {
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return adaptive.New(adaptive.DefaultConfig()) }})
	})
	t.Run("action handler eureka", func(t *testing.T) {
		plugintest.ActionHandler(t, plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { return eureka.New() }})
	})
}

// The host service reaches a handler through the broker: what the handler applies arrives at the
// test's FakeHost.
func TestHostThroughTheBroker(t *testing.T) {
	host := plugintest.NewFakeHost()
	h := plugintest.ServeActionHandler(t, eureka.New())
	if d := plugintest.Configure(t, h, nil, host); len(d) != 0 {
		t.Fatal(d)
	}
	items := []sdk.Item{plugintest.Item(sdk.ActionRegister, "A", "1"), plugintest.Item(sdk.ActionRegister, "A", "2")}
	rs, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items})
	if err != nil || len(rs) != 2 || rs[0].StatusCode != 200 {
		t.Fatalf("receive: %v %v", rs, err)
	}
	if got := host.Applied(); len(got) != 2 || got[1].ID != "2" || string(got[0].Instance) != string(items[0].Instance) {
		t.Fatalf("the host got %+v", got)
	}
	host.Err = errors.New("registry unavailable")
	if _, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items}); err == nil ||
		!strings.Contains(err.Error(), "registry unavailable") {
		t.Fatalf("a host error must reach the caller, got %v", err)
	}
}

// --- broken plugins: each suite must fail on them, saying what is wrong ---

type shortTransport struct{}

func (shortTransport) Send(_ context.Context, _ sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if len(b.Items) == 0 {
		return nil, nil
	}
	return make([]sdk.ItemResult, len(b.Items)-1), nil
}

type stubbornTransport struct{}

func (stubbornTransport) Send(_ context.Context, p sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	if p.Name == "down" {
		return nil, errors.New("connection refused") // no class: permanent
	}
	rs := make([]sdk.ItemResult, len(b.Items))
	for i := range rs {
		rs[i].StatusCode = 200
	}
	return rs, nil
}

type neverCuts struct{}

func (neverCuts) Decide(context.Context, sdk.PendingState) (sdk.FlushDecision, error) {
	return sdk.FlushDecision{MaxBatch: 250}, nil
}

type loudRefusal struct{ sdk.UnimplementedActionHandler }

func (loudRefusal) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true}}
}

func (loudRefusal) Accept(_ context.Context, it sdk.Item) (sdk.Item, error) {
	return it, fmt.Errorf("owner missing")
}

// TestBrokenPlugin runs a suite on a broken plugin; it only runs inside TestSuitesCatchBrokenPlugins.
func TestBrokenPlugin(t *testing.T) {
	switch os.Getenv("PLUGINTEST_BROKEN") {
	case "":
		t.Skip("run by TestSuitesCatchBrokenPlugins")
	case "short":
		plugintest.Transport(t, plugintest.TransportCase{New: func(*testing.T) sdk.Transport { return shortTransport{} }, Peer: eurekaPeer})
	case "permanent":
		plugintest.Transport(t, plugintest.TransportCase{New: func(*testing.T) sdk.Transport { return stubbornTransport{} },
			Peer: eurekaPeer, Unreachable: func(*testing.T) sdk.Peer { return sdk.Peer{Name: "down"} }})
	case "nevercuts":
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return neverCuts{} }})
	case "refusal":
		plugintest.ActionHandler(t, plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { return loudRefusal{} }})
	}
}

func TestSuitesCatchBrokenPlugins(t *testing.T) {
	for broken, want := range map[string]string{
		"short":     "return exactly one result per item, in order",
		"permanent": "a network failure must be sdk.Transient",
		"nevercuts": "nothing would ever cut a batch",
		"refusal":   "refuse with sdk.Refuse",
	} {
		t.Run(broken, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPlugin$", "-test.v")
			cmd.Env = append(os.Environ(), "PLUGINTEST_BROKEN="+broken)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the suite hung on a broken plugin")
			}
			if err == nil {
				t.Fatalf("the suite passed a broken plugin (%s):\n%s", broken, out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed without saying %q:\n%s", want, out)
			}
		})
	}
}
