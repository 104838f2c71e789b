package plugintest_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald/plugins/action/eureka"
	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/plugins/flush/sizeorage"
	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	httptransport "github.com/heraldhq/herald/plugins/transport/http"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/plugintest"
)

// eurekaPeer is an HTTP server that answers POST {base}/peerreplication/batch as a herald node
// does: it decodes the ReplicationList, hands it to host.Receive, and answers with the results (503
// when the node cannot take the batch now).
func eurekaPeer(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/peerreplication/batch/") {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, _ := io.ReadAll(body)
		items, err := eurekawire.DecodeReplicationList(data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rs, err := host.Receive(r.Context(), sdk.Batch{Items: items})
		if err != nil {
			http.Error(w, "batch not applied, retry: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(eurekawire.AppendReplicationListResponse(nil, rs))
	}))
	t.Cleanup(srv.Close)
	return sdk.Peer{Name: "peer", URL: srv.URL + "/eureka/"}
}

func httpPeerAt(addr string) sdk.Peer {
	return sdk.Peer{Name: addr, URL: "http://" + addr + "/eureka/"}
}

func TestFirstPartyPluginsConform(t *testing.T) {
	t.Run("transport http", func(t *testing.T) {
		plugintest.Transport(t, plugintest.TransportCase{
			New:    func(*testing.T) sdk.Transport { return httptransport.NewPlugin() },
			Config: map[string]any{"read_timeout": "2s", "compress": true},
			Peer:   eurekaPeer,
			PeerAt: httpPeerAt,
		})
	})
	t.Run("transport grpc", func(t *testing.T) {
		plugintest.Transport(t, plugintest.TransportCase{
			New:    func(*testing.T) sdk.Transport { return grpctransport.NewPlugin() },
			Config: map[string]any{"listen": "off", "read_timeout": "2s"},
			Peer: func(t *testing.T, host *plugintest.FakeHost) sdk.Peer {
				rx := grpctransport.NewPlugin()
				plugintest.StartReceiver(t, rx, map[string]any{"listen": "127.0.0.1:0"}, host)
				return sdk.Peer{Name: "peer", Address: rx.Addr().String()}
			},
			PeerAt: func(addr string) sdk.Peer { return sdk.Peer{Name: addr, Address: addr} },
		})
	})
	t.Run("flush size-or-age", func(t *testing.T) {
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{
			New: func(*testing.T) sdk.FlushPolicy { return sizeorage.New() },
			// size-or-age takes its batch size from its own config, not from the host's limit in the
			// PendingState; it conforms when the two agree (the smallest limit among the States).
			Config: map[string]any{"max_batch_size": float64(50), "batching_delay": "1ms"},
		})
	})
	t.Run("flush adaptive", func(t *testing.T) {
		plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{New: func(*testing.T) sdk.FlushPolicy { return adaptive.New(adaptive.DefaultConfig()) }})
	})
	t.Run("action handler eureka", func(t *testing.T) {
		plugintest.ActionHandler(t, plugintest.ActionHandlerCase{New: func(*testing.T) sdk.ActionHandler { return eureka.New() }})
	})
}

// The host service reaches a handler through the broker: what the handler applies arrives at the
// test's FakeHost, and the host's errors reach the caller.
func TestHostThroughTheBroker(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.SetAnswer(func(it sdk.Item) sdk.ItemResult {
		if it.ID == "2" {
			return sdk.ItemResult{StatusCode: 409, Entity: plugintest.Instance(it.App, it.ID)}
		}
		return sdk.ItemResult{StatusCode: 200}
	})
	h := plugintest.ServeActionHandler(t, eureka.New())
	plugintest.MustConfigure(t, h, nil, host)
	items := []sdk.Item{plugintest.Item(sdk.ActionRegister, "A", "1"), plugintest.Item(sdk.ActionRegister, "A", "2")}
	rs, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items})
	if err != nil || len(rs) != 2 || rs[0].StatusCode != 200 || rs[1].StatusCode != 409 || string(rs[1].Entity) != string(plugintest.Instance("A", "2")) {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if got := host.Applied(); len(got) != 2 || got[1].ID != "2" || string(got[0].Instance) != string(items[0].Instance) ||
		got[0].TraceParent != items[0].TraceParent {
		t.Fatalf("the host got %+v", got)
	}
	host.SetErr(errors.New("registry unavailable"))
	if _, err := h.Receive(context.Background(), sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: sdk.ActionRegister, Items: items}); err == nil ||
		!strings.Contains(err.Error(), "registry unavailable") {
		t.Fatalf("a host error must reach the caller, got %v", err)
	}
}

// hostUser is a handler that uses every host call, to check FakeHost over the broker.
type hostUser struct {
	sdk.UnimplementedActionHandler
	host sdk.Host
}

func (h *hostUser) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: plugintest.CustomAction, Accept: true, Receive: sdk.ReceiveApply}}
}

func (h *hostUser) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	h.host = req.Host
	return nil
}

func (h *hostUser) Accept(ctx context.Context, it sdk.Item) (sdk.Item, error) {
	inst, found, err := h.host.Instance(ctx, it.App, it.ID)
	if err != nil {
		return it, err
	}
	if !found {
		return it, sdk.Refuse(404, "no instance %s/%s", it.App, it.ID)
	}
	it.Instance = inst
	return it, h.host.Replicate(ctx, []sdk.Item{it})
}

func (h *hostUser) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	return h.host.Receive(ctx, sdk.Batch{ID: "relay", Items: req.Items})
}

func TestFakeHostOverTheBroker(t *testing.T) {
	host := plugintest.NewFakeHost()
	host.PutInstance("orders", "o-1", plugintest.Instance("ORDERS", "o-1"))
	h := plugintest.ServeActionHandler(t, &hostUser{})
	plugintest.MustConfigure(t, h, nil, host)
	ctx := context.Background()

	it := plugintest.Item(plugintest.CustomAction, "ORDERS", "o-1")
	out, err := h.Accept(ctx, it)
	if err != nil || string(out.Instance) != string(plugintest.Instance("ORDERS", "o-1")) {
		t.Fatalf("accept: %+v %v", out, err)
	}
	if got := host.Replicated(); len(got) != 1 || got[0].ID != "o-1" || string(got[0].Payload) != string(it.Payload) {
		t.Fatalf("replicated %+v", got)
	}
	var r *sdk.Refusal
	if _, err := h.Accept(ctx, plugintest.Item(plugintest.CustomAction, "ORDERS", "o-2")); !errors.As(err, &r) || r.Code != 404 ||
		r.Message != "no instance ORDERS/o-2" {
		t.Fatalf("a refusal through gRPC: %v", err)
	}
	if host.Lookups() != 2 {
		t.Fatalf("lookups %d", host.Lookups())
	}
	rs, err := h.Receive(ctx, sdk.ReceiveRequest{Mode: sdk.ReceiveApply, Action: plugintest.CustomAction, Items: []sdk.Item{it}})
	if err != nil || len(rs) != 1 || rs[0].StatusCode != 200 {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if got := host.Received(); len(got) != 1 || got[0].ID != "relay" || len(host.ReceivedItems()) != 1 {
		t.Fatalf("received %+v", got)
	}
	host.SetErr(errors.New("down"))
	if _, err := h.Accept(ctx, it); err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("host error through the broker: %v", err)
	}
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
