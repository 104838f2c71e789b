package httptransport_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

func TestConformance(t *testing.T) {
	plugintest.Transport(t, plugintest.TransportCase{
		New:    func(*testing.T) sdk.Transport { return httptransport.NewPlugin() },
		Config: map[string]any{"read_timeout": "10s", "compress": true},
		Peer:   eurekaPeer,
		PeerAt: httpPeerAt,
	})
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
