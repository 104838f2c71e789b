package httptransport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func batch(n int) sdk.Batch {
	b := sdk.Batch{ID: "b1"}
	for i := 0; i < n; i++ {
		b.Items = append(b.Items, sdk.Item{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "i" + string(rune('a'+i%26)),
			LastDirtyTimestamp: 1000, Status: "UP"})
	}
	return b
}

func TestSendSuccessAndHeaders(t *testing.T) {
	var gotPath, gotCT, gotName, gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotCT, gotName = r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("DiscoveryIdentity-Name")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"responseList":[{"statusCode":200},{"statusCode":404}]}`)
	}))
	defer srv.Close()
	tr := New(Options{NodeID: "n1"})
	res, err := tr.Send(context.Background(), sdk.Peer{Name: "p", URL: srv.URL + "/eureka/"}, batch(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].StatusCode != 200 || res[1].StatusCode != 404 {
		t.Fatalf("results %+v", res)
	}
	if gotPath != "/eureka/peerreplication/batch/" || gotCT != "application/json" || gotName != "DefaultServer" {
		t.Fatalf("path %q content-type %q identity %q", gotPath, gotCT, gotName)
	}
	if !strings.HasPrefix(gotBody, `{"replicationList":[`) || !strings.Contains(gotBody, `"action":"Heartbeat"`) {
		t.Fatalf("body %s", gotBody)
	}
}

func TestFailureClasses(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/eureka/"
	}()
	cases := []struct {
		name    string
		handler http.HandlerFunc
		url     string
		want    sdk.FailureClass
	}{
		{"503 is congestion", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, "", sdk.Congestion},
		{"500 is permanent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "", sdk.Permanent},
		{"404 is permanent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, "", sdk.Permanent},
		{"garbage answer is permanent", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>") }, "", sdk.Permanent},
		{"wrong answer count is permanent", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"responseList":[{"statusCode":200}]}`)
		}, "", sdk.Permanent},
		{"read timeout is congestion", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond) // longer than the transport's read timeout
		}, "", sdk.Congestion},
		{"connection refused is transient", nil, closed, sdk.Transient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := c.url
			if c.handler != nil {
				srv := httptest.NewServer(c.handler)
				defer srv.Close()
				url = srv.URL + "/eureka/"
			}
			tr := New(Options{ReadTimeout: 200 * time.Millisecond, ConnectTimeout: 200 * time.Millisecond})
			_, err := tr.Send(context.Background(), sdk.Peer{Name: "p", URL: url}, batch(2))
			if err == nil {
				t.Fatal("want an error")
			}
			if got := sdk.ClassOf(err); got != c.want {
				t.Fatalf("class %v, want %v (%v)", got, c.want, err)
			}
		})
	}
}

func TestTooLargeIsPermanentAndMarked(t *testing.T) {
	// The peer answers 413 without reading the body, as a body limit does.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	b := batch(3)
	b.Items[1].Action, b.Items[1].Instance = sdk.ActionRegister, []byte(`{"metadata":{"blob":"`+strings.Repeat("x", 2<<20)+`"}}`)
	peer := sdk.Peer{Name: "p", URL: srv.URL + "/eureka/"}
	for name, tr := range map[string]sdk.Transport{
		"in-process": New(Options{}),
		// As a plugin process would run it: the error crosses gRPC as a class and a text.
		"over gRPC": plugintest.ServeTransport(t, NewPlugin()),
	} {
		_, err := tr.Send(context.Background(), peer, b)
		if sdk.ClassOf(err) != sdk.Permanent || !errors.Is(err, sdk.ErrTooLarge) {
			t.Fatalf("%s: a 413 must be a permanent failure marked sdk.ErrTooLarge, got %v", name, err)
		}
		if !strings.Contains(err.Error(), "peer p") || !strings.Contains(err.Error(), "3 items") {
			t.Fatalf("%s: the error must name the peer and the batch: %v", name, err)
		}
	}
}

func BenchmarkSend250(b *testing.B) {
	resp := `{"responseList":[` + strings.TrimSuffix(strings.Repeat(`{"statusCode":200},`, 250), ",") + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, resp)
	}))
	defer srv.Close()
	tr := New(Options{})
	peer := sdk.Peer{Name: "p", URL: srv.URL + "/eureka/"}
	bt := batch(250)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Send(context.Background(), peer, bt); err != nil {
			b.Fatal(err)
		}
	}
}

// The node name a peer gives in its answers (peerauth.HeaderNode) is handed to OnPeerName once per
// change, with the peer's URL, and named beside the URL in the transport's errors.
func TestPeerNameLearned(t *testing.T) {
	name := "node-b"
	code := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Herald-Node", name)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"responseList":[{"statusCode":200}]}`)
	}))
	defer srv.Close()
	type learned struct{ url, name string }
	var got []learned
	tr := New(Options{})
	tr.OnPeerName(func(u, n string) { got = append(got, learned{u, n}) })
	peer := sdk.Peer{Name: srv.URL + "/eureka/", URL: srv.URL + "/eureka/"}
	for i := 0; i < 2; i++ {
		if _, err := tr.Send(context.Background(), peer, batch(1)); err != nil {
			t.Fatal(err)
		}
	}
	name, code = "node-b2", http.StatusInternalServerError
	_, err := tr.Send(context.Background(), peer, batch(1))
	if err == nil || !strings.Contains(err.Error(), peer.Name+" (node-b2)") {
		t.Fatalf("the error must name the peer's URL and node name: %v", err)
	}
	want := []learned{{peer.URL, "node-b"}, {peer.URL, "node-b2"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("learned %v, want %v", got, want)
	}
}
