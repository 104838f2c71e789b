package cluster

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sdk/peerauth"
)

func TestPeerNames(t *testing.T) {
	n := NewPeerNames(nil)
	n.Learn("http://User:pw@Node-B.example:80/eureka/peerreplication/batch/", "node-b")
	n.Learn("https://node-c.example:443/eureka/", "node-c")
	n.Learn("http://node-d.example:8761/eureka/", "")                       // no name
	n.Learn("http://node-d.example:8761/eureka/", strings.Repeat("x", 200)) // overlong
	n.Learn("http://node-d.example:8761/eureka/", "bad\x00name")            // unprintable
	n.Learn("ftp://node-e.example/", "node-e")                              // not a peer URL
	for _, c := range []struct{ url, want string }{
		{"http://node-b.example/eureka/", "node-b"},
		{"http://node-b.example:80/herald/v1/digest", "node-b"},
		{"https://node-b.example/eureka/", ""},
		{"https://NODE-C.example/eureka/", "node-c"},
		{"http://node-d.example:8761/eureka/", ""},
		{"ftp://node-e.example/", ""},
		{"not a url", ""},
	} {
		if got := n.Name(c.url); got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.url, got, c.want)
		}
	}
	n.Learn("http://node-b.example/eureka/", "node-b-renamed")
	if got := n.Name("http://node-b.example/eureka/"); got != "node-b-renamed" {
		t.Errorf("a changed name is kept: %q", got)
	}
	var none *PeerNames
	none.Learn("http://x/", "x")
	if none.Name("http://x/") != "" {
		t.Error("a nil PeerNames knows no names")
	}
}

// The transport learns the name in every answer that carries one, for the peer it came from.
func TestPeerNamesTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/named" {
			w.Header().Set(peerauth.HeaderNode, "node-x")
		}
	}))
	defer srv.Close()
	n := NewPeerNames(nil)
	c := &http.Client{Transport: n.Transport(nil)}
	get := func(path string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/anonymous")
	if got := n.Name(srv.URL + "/eureka/"); got != "" {
		t.Fatalf("learned %q from an answer without the header", got)
	}
	get("/named")
	if got := n.Name(srv.URL + "/eureka/"); got != "node-x" {
		t.Fatalf("learned %q, want node-x", got)
	}
}
