package eureka

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk/peerauth"
)

func TestSplitPath(t *testing.T) {
	cases := []struct {
		raw  string
		path string
		segs []string
	}{
		{"/", "/", nil},
		{"/eureka/v2/apps", "/eureka/v2/apps/", []string{"eureka", "v2", "apps"}},
		{"/eureka/v2/apps/", "/eureka/v2/apps/", []string{"eureka", "v2", "apps"}},
		{"/eureka/apps/DEMO/a%2Fb", "/eureka/apps/DEMO/a/b/", []string{"eureka", "apps", "DEMO", "a/b"}},
		{"/eureka/apps/DEMO/a%20b/status", "/eureka/apps/DEMO/a b/status/", []string{"eureka", "apps", "DEMO", "a b", "status"}},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			p, segs, ok := splitPath(u)
			if !ok || p != tc.path || fmt.Sprint(segs) != fmt.Sprint(tc.segs) {
				t.Errorf("splitPath = %q %q %v, want %q %q", p, segs, ok, tc.path, tc.segs)
			}
		})
	}
}

func TestRequestFormat(t *testing.T) {
	cases := []struct {
		ct     string
		f      codec.Format
		latin1 bool
		ok     bool
	}{
		{"application/json", codec.JSON, false, true},
		{"application/xml", codec.XML, false, true},
		{"Application/JSON; charset=UTF-8", codec.JSON, false, true},
		{"application/xml;charset=iso-8859-1", codec.XML, true, true},
		{"application/json; charset=utf-16", 0, false, false},
		{"text/xml", 0, false, false},
		{"text/plain", 0, false, false},
		{"", 0, false, false},
		{"application/json; charset", 0, false, false},
	}
	for _, tc := range cases {
		f, latin1, ok := requestFormat(tc.ct)
		if ok != tc.ok || (ok && (f != tc.f || latin1 != tc.latin1)) {
			t.Errorf("requestFormat(%q) = %v %v %v, want %v %v %v", tc.ct, f, latin1, ok, tc.f, tc.latin1, tc.ok)
		}
	}
}

func TestCachedFormatAndCompact(t *testing.T) {
	cases := []struct {
		accept, eurekaAccept string
		f                    codec.Format
		compact              bool
	}{
		{"", "", codec.XML, false},
		{"*/*", "full", codec.XML, false},
		{"application/xml", "COMPACT", codec.XML, true},
		{"application/json", "compact", codec.JSON, true},
		{"text/x-json-ish", "other", codec.JSON, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", tc.accept)
		r.Header.Set("X-Eureka-Accept", tc.eurekaAccept)
		if f, c := cachedFormat(r), compactRequested(r); f != tc.f || c != tc.compact {
			t.Errorf("Accept %q / %q: %v %v, want %v %v", tc.accept, tc.eurekaAccept, f, c, tc.f, tc.compact)
		}
	}
}

func TestReadBody(t *testing.T) {
	h := &Handler{maxBody: 64}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	exact := []byte(strings.Repeat("a", 64))
	cases := []struct {
		name  string
		body  []byte
		enc   string
		chunk bool // hide the length, as a chunked request does
		code  int
		want  []byte
	}{
		{"exactly the limit", exact, "", false, 0, exact},
		{"exactly the limit chunked", exact, "", true, 0, exact},
		{"one over", append(exact, 'b'), "", false, 413, nil},
		{"one over chunked", append(exact, 'b'), "", true, 413, nil},
		{"gzip within", gz([]byte("hello")), "gzip", false, 0, []byte("hello")},
		{"gzip inflates over", gz(bytes.Repeat([]byte("z"), 1000)), "gzip", false, 413, nil},
		{"x-gzip", gz([]byte("hi")), "x-gzip", false, 0, []byte("hi")},
		{"corrupt gzip", []byte("definitely not"), "gzip", false, 400, nil},
		{"deflate", []byte("x"), "deflate", false, 415, nil},
		{"identity", []byte("x"), "identity", false, 0, []byte("x")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(tc.body))
			if tc.chunk {
				r.ContentLength = -1
				r.Body = io.NopCloser(bytes.NewReader(tc.body))
			}
			if tc.enc != "" {
				r.Header.Set("Content-Encoding", tc.enc)
			}
			var buf bytes.Buffer
			got, err := h.readBody(r, &buf)
			if tc.code == 0 {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("readBody = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			be, ok := err.(*bodyError)
			if !ok || be.code != tc.code {
				t.Fatalf("readBody error = %v, want status %d", err, tc.code)
			}
		})
	}
}

// A body that peer authentication already read whole (a signed request) is used as it is, not
// read and copied again; the handler's limit still holds, and a gzip body is still inflated.
func TestReadBodyBuffered(t *testing.T) {
	h := &Handler{maxBody: 64}
	secret := strings.Repeat("s", 32)
	signer, err := peerauth.NewSigner("node-2", secret)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := peerauth.NewVerifier([]string{secret}, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	type read struct {
		body   string
		shared bool
		code   int
	}
	reads := make(chan read, 1)
	auth := &peerauth.Authenticator{Verifier: verifier, MaxBody: 1 << 20}
	srv := httptest.NewServer(auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd read
		var before []byte
		if bb, ok := r.Body.(*peerauth.BufferedBody); ok {
			before = bb.Bytes()
		}
		got, err := h.readBody(r, new(bytes.Buffer))
		if err != nil {
			rd.code = err.(*bodyError).code
		} else {
			rd.body = string(got)
			rd.shared = len(got) > 0 && len(before) > 0 && &got[0] == &before[0]
		}
		reads <- rd
	})))
	defer srv.Close()
	client := &http.Client{Transport: &peerauth.SigningTransport{Signer: signer}}
	send := func(body []byte, enc string) read {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/eureka/peerreplication/batch", bytes.NewReader(body))
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("signed request answered %d: %s", resp.StatusCode, msg)
		}
		return <-reads
	}
	if rd := send([]byte("peer-body"), ""); rd.body != "peer-body" || !rd.shared {
		t.Fatalf("signed body read as %+v; want its buffered bytes themselves", rd)
	}
	if rd := send(bytes.Repeat([]byte("x"), 65), ""); rd.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("signed body over the handler's limit read as %+v; want 413", rd)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte("inflated"))
	_ = zw.Close()
	if rd := send(zb.Bytes(), "gzip"); rd.body != "inflated" || rd.shared {
		t.Fatalf("signed gzip body read as %+v", rd)
	}
}

func TestLatin1(t *testing.T) {
	if got := string(latin1ToUTF8([]byte("caf\xe9"))); got != "café" {
		t.Errorf("latin1ToUTF8 = %q", got)
	}
	in := []byte("plain")
	if out := latin1ToUTF8(in); &out[0] != &in[0] {
		t.Errorf("ASCII input was copied")
	}
}

func TestValidateRegistration(t *testing.T) {
	valid := func() *registry.Instance {
		return &registry.Instance{InstanceID: "i1", HostName: "h", IPAddr: "1.2.3.4", App: "DEMO",
			HasDataCenterInfo: true, DataCenterInfo: registry.DataCenterInfo{Name: "MyOwn"}}
	}
	cases := []struct {
		name string
		path string
		mod  func(*registry.Instance)
		want string
	}{
		{"valid", "demo", func(*registry.Instance) {}, ""},
		{"no id at all", "DEMO", func(i *registry.Instance) { i.InstanceID, i.HostName = "", "" }, "Missing instanceId"},
		{"id from hostname", "DEMO", func(i *registry.Instance) { i.InstanceID = "" }, ""},
		{"blank hostname", "DEMO", func(i *registry.Instance) { i.HostName = " " }, "Missing hostname"},
		{"no ip", "DEMO", func(i *registry.Instance) { i.IPAddr = "" }, "Missing ip address"},
		{"no app", "DEMO", func(i *registry.Instance) { i.App = "" }, "Missing appName"},
		{"mismatch", "FOO", func(*registry.Instance) {}, "Mismatched appName, expecting FOO but was DEMO"},
		{"no dc", "DEMO", func(i *registry.Instance) { i.HasDataCenterInfo = false }, "Missing dataCenterInfo"},
		{"no dc name", "DEMO", func(i *registry.Instance) { i.DataCenterInfo.Name = "" }, "Missing dataCenterInfo Name"},
		// The order is Eureka's: the first failing check wins.
		{"ip and app missing", "DEMO", func(i *registry.Instance) { i.IPAddr, i.App = "", "" }, "Missing ip address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := valid()
			tc.mod(i)
			err := ValidateRegistration(tc.path, i)
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("ValidateRegistration = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("amazon back-fill", func(t *testing.T) {
		i := valid()
		i.DataCenterInfo = registry.DataCenterInfo{Name: "Amazon", Class: "com.netflix.appinfo.AmazonInfo"}
		if err := ValidateRegistration("DEMO", i); err != nil {
			t.Fatal(err)
		}
		if got := i.DataCenterInfo.Metadata["instance-id"]; got != "i1" {
			t.Errorf("instance-id = %q, want i1", got)
		}
	})
}

func TestRefusalStatus(t *testing.T) {
	if got := refusalStatus(fmt.Errorf("x")); got != http.StatusBadRequest {
		t.Errorf("plain error: %d", got)
	}
	if got := refusalStatus(fmt.Errorf("wrapped: %w", coded(409))); got != 409 {
		t.Errorf("coded error: %d", got)
	}
	// An admission handler that is down answers 503, which Eureka clients retry.
	if got := refusalStatus(coded(503)); got != http.StatusServiceUnavailable {
		t.Errorf("503 refusal: got %d", got)
	}
	if got := refusalStatus(coded(302)); got != http.StatusBadRequest {
		t.Errorf("a non-error status must become 400, got %d", got)
	}
}

type coded int

func (c coded) Error() string   { return "coded" }
func (c coded) StatusCode() int { return int(c) }

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept []string
		f      codec.Format
		ok     bool
	}{
		{nil, codec.XML, true},
		{[]string{"*/*"}, codec.XML, true},
		{[]string{"application/json"}, codec.JSON, true},
		{[]string{"application/json, */*"}, codec.JSON, true},
		{[]string{"application/xml;q=0.5, application/json"}, codec.JSON, true},
		{[]string{"application/json;q=0.5, application/xml"}, codec.XML, true},
		{[]string{"application/*, application/json;q=0.5"}, codec.XML, true},
		{[]string{"text/html", "application/json"}, codec.JSON, true},
		{[]string{"text/plain"}, codec.XML, false},
		{[]string{"application/json;q=0"}, codec.XML, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		for _, a := range tc.accept {
			r.Header.Add("Accept", a)
		}
		if f, ok := negotiate(r); f != tc.f || ok != tc.ok {
			t.Errorf("Accept %q: %v %v, want %v %v", tc.accept, f, ok, tc.f, tc.ok)
		}
	}
}
