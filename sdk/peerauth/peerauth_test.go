package peerauth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	secretA = strings.Repeat("a", 32)
	secretB = strings.Repeat("b", 40)
)

func signed(t *testing.T, s *Signer, method, target string, body []byte) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	s.Sign(req, body)
	return req
}

func TestSignAndVerify(t *testing.T) {
	s, err := NewSigner("node-1", secretA)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"replicationList":[]}`)
	fresh := func() *Verifier {
		v, err := NewVerifier([]string{secretA}, time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("valid", func(t *testing.T) {
		name, err := fresh().Verify(signed(t, s, "POST", "/eureka/peerreplication/batch", body), body)
		if err != nil || name != "node-1" {
			t.Fatalf("got %q, %v", name, err)
		}
	})
	cases := []struct {
		name   string
		mutate func(r *http.Request) []byte
	}{
		{"altered body", func(r *http.Request) []byte { return []byte(`{"replicationList":[{"action":"Cancel"}]}`) }},
		{"other path", func(r *http.Request) []byte { r.URL.Path = "/eureka/apps/X"; return body }},
		{"other method", func(r *http.Request) []byte { r.Method = "DELETE"; return body }},
		{"other query", func(r *http.Request) []byte { r.URL.RawQuery = "value=DOWN"; return body }},
		{"other peer name", func(r *http.Request) []byte { r.Header.Set(HeaderPeer, "node-2"); return body }},
		{"other timestamp", func(r *http.Request) []byte {
			r.Header.Set(HeaderTimestamp, r.Header.Get(HeaderTimestamp)+"1")
			return body
		}},
		{"no nonce", func(r *http.Request) []byte { r.Header.Del(HeaderNonce); return body }},
		{"garbage signature", func(r *http.Request) []byte { r.Header.Set(HeaderSignature, "v1=zz"); return body }},
		{"unknown version", func(r *http.Request) []byte {
			r.Header.Set(HeaderSignature, strings.Replace(r.Header.Get(HeaderSignature), "v1=", "v2=", 1))
			return body
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := signed(t, s, "POST", "/eureka/peerreplication/batch", body)
			b := c.mutate(r)
			if _, err := fresh().Verify(r, b); err == nil {
				t.Fatal("verified")
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/eureka/peerreplication/batch", nil)
		if _, err := fresh().Verify(r, nil); !errors.Is(err, ErrUnsigned) {
			t.Fatalf("got %v, want ErrUnsigned", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		v, _ := NewVerifier([]string{secretB}, time.Minute, nil)
		if _, err := v.Verify(signed(t, s, "POST", "/x", body), body); err == nil {
			t.Fatal("verified with another secret")
		}
	})
	t.Run("previous secret accepted during a rotation", func(t *testing.T) {
		v, _ := NewVerifier([]string{secretB, secretA}, time.Minute, nil)
		if _, err := v.Verify(signed(t, s, "POST", "/x", body), body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		v := fresh()
		r := signed(t, s, "POST", "/x", body)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(r, body); err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("outside the window", func(t *testing.T) {
		old := &Signer{node: "node-1", secret: []byte(secretA), now: func() time.Time { return time.Now().Add(-2 * time.Minute) }}
		if _, err := fresh().Verify(signed(t, old, "POST", "/x", body), body); err == nil || !strings.Contains(err.Error(), "window") {
			t.Fatalf("stale signature: %v", err)
		}
		ahead := &Signer{node: "node-1", secret: []byte(secretA), now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
		if _, err := fresh().Verify(signed(t, ahead, "POST", "/x", body), body); err == nil {
			t.Fatal("a signature from the future verified")
		}
	})
	t.Run("short secret", func(t *testing.T) {
		if _, err := NewSigner("n", "short"); err == nil {
			t.Fatal("short secret accepted")
		}
		if _, err := NewVerifier([]string{"short"}, 0, nil); err == nil {
			t.Fatal("short secret accepted")
		}
	})
}

// The replay cache is bounded: when it is full of signatures still in their window it refuses
// with ErrBusy (a retryable 503), and it forgets signatures whose window ended.
func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(3 * replayEntryBytes)
	now := time.Now()
	for i := 0; i < 3; i++ {
		if ok, err := c.add([]byte{byte(i)}, now.Add(time.Second), now); !ok || err != nil {
			t.Fatalf("add %d: %v %v", i, ok, err)
		}
	}
	if _, err := c.add([]byte{9}, now.Add(time.Second), now); !errors.Is(err, ErrBusy) {
		t.Fatalf("full cache: %v, want ErrBusy", err)
	}
	later := now.Add(2 * time.Second)
	if ok, err := c.add([]byte{9}, later.Add(time.Second), later); !ok || err != nil {
		t.Fatalf("after the window: %v %v", ok, err)
	}
	if c.Len() != 1 {
		t.Fatalf("%d signatures remembered, want 1", c.Len())
	}
}

// The middleware serves peers with their identity, clients unmarked, and refuses a failed attempt.
func TestMiddleware(t *testing.T) {
	s, _ := NewSigner("node-2", secretA)
	v, _ := NewVerifier([]string{secretA}, time.Minute, nil)
	a := &Authenticator{Verifier: v, MaxBody: 64}
	var got, buffered []string
	srv := httptest.NewServer(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A signed body was read whole once; the handler can take those bytes without reading.
		if bb, ok := r.Body.(*BufferedBody); ok {
			buffered = append(buffered, string(bb.Bytes()))
		}
		b, _ := io.ReadAll(r.Body)
		if bb, ok := r.Body.(*BufferedBody); ok && len(bb.Bytes()) != 0 {
			t.Errorf("Bytes after the body was read: %q", bb.Bytes())
		}
		id, ok := PeerFrom(r.Context())
		if ok {
			got = append(got, id.Name+":"+string(b))
		} else {
			got = append(got, "client:"+string(b))
		}
	})))
	defer srv.Close()
	signedClient := &http.Client{Transport: &SigningTransport{Signer: s}}
	do := func(c *http.Client, body string) int {
		resp, err := c.Post(srv.URL+"/eureka/peerreplication/batch", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(signedClient, "peer-body"); code != 200 {
		t.Fatalf("signed: %d", code)
	}
	if code := do(http.DefaultClient, "client-body"); code != 200 {
		t.Fatalf("unsigned: %d", code)
	}
	if code := do(signedClient, strings.Repeat("x", 65)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized signed body: %d, want 413", code)
	}
	// A signature from a wrong secret is refused, not served as a client's request.
	bad, _ := NewSigner("node-3", secretB)
	if code := do(&http.Client{Transport: &SigningTransport{Signer: bad}}, "forged"); code != http.StatusUnauthorized {
		t.Fatalf("forged: %d, want 401", code)
	}
	if want := []string{"node-2:peer-body", "client:client-body"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("served %q, want %q", got, want)
	}
	if len(buffered) != 1 || buffered[0] != "peer-body" {
		t.Fatalf("buffered bodies %q, want the signed one", buffered)
	}
}

func writePair(t *testing.T, dir, name string, p PEMPair) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(cert, p.Cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, p.Key, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// Mutual TLS over real sockets: a node certificate from the cluster CA is a peer, one from another
// CA cannot even connect to a peer, a caller without a certificate is a client, and the allow-list
// narrows the peers.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("cluster CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("another CA", time.Hour)
	caFile, _ := writePair(t, dir, "ca", ca)
	otherFile, _ := writePair(t, dir, "other", other)
	mk := func(caPair PEMPair, caPath, name string) *TLS {
		p, err := NewNodeCert(caPair, name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, k := writePair(t, dir, name, p)
		tl, err := LoadTLS(TLSFiles{CAFile: caPath, CertFile: c, KeyFile: k}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	server := mk(ca, caFile, "node-1")
	a := &Authenticator{MTLS: true}
	who := ""
	srv := httptest.NewUnstartedServer(a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := PeerFrom(r.Context()); ok {
			who = "peer " + id.Name
		} else {
			who = "client"
		}
	})))
	srv.TLS = server.ServerConfig(false)
	srv.StartTLS()
	defer srv.Close()
	get := func(tl *TLS, plainCA string) error {
		who = ""
		var tr http.Transport
		if tl != nil {
			tr.TLSClientConfig = tl.ClientConfig()
		} else {
			tr.TLSClientConfig = mk(ca, plainCA, "unused").ClientConfig()
			tr.TLSClientConfig.GetClientCertificate = nil
		}
		resp, err := (&http.Client{Transport: &tr}).Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(mk(ca, caFile, "node-2"), ""); err != nil || who != "peer node-2" {
		t.Fatalf("peer from the cluster CA: %v, served as %q", err, who)
	}
	if err := get(nil, caFile); err != nil || who != "client" {
		t.Fatalf("caller without a certificate: %v, served as %q", err, who)
	}
	if err := get(mk(other, otherFile, "intruder"), ""); err == nil || who != "" {
		t.Fatalf("a node of another CA connected (served as %q)", who)
	}
	a.Names = map[string]bool{"node-3": true}
	if err := get(mk(ca, caFile, "node-2"), ""); err != nil || who != "client" {
		t.Fatalf("certificate outside the allow-list: %v, served as %q", err, who)
	}
	if err := get(mk(ca, caFile, "node-3"), ""); err != nil || who != "peer node-3" {
		t.Fatalf("certificate in the allow-list: %v, served as %q", err, who)
	}
}

// Rotating the node's certificate: Reload picks up new files; a broken file keeps the old ones.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca, _ := NewCA("ca", time.Hour)
	caFile, _ := writePair(t, dir, "ca", ca)
	p1, _ := NewNodeCert(ca, "first", nil, time.Hour)
	c, k := writePair(t, dir, "node", p1)
	tl, err := LoadTLS(TLSFiles{CAFile: caFile, CertFile: c, KeyFile: k}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := tl.Certificate().Subject.CommonName; n != "first" {
		t.Fatalf("loaded %q", n)
	}
	p2, _ := NewNodeCert(ca, "second", nil, time.Hour)
	writePair(t, dir, "node", p2)
	if err := tl.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := tl.Certificate().Subject.CommonName; n != "second" {
		t.Fatalf("after reload %q, want second", n)
	}
	if err := os.WriteFile(c, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tl.Reload(); err == nil {
		t.Fatal("a broken certificate file reloaded")
	}
	if n := tl.Certificate().Subject.CommonName; n != "second" {
		t.Fatalf("after a failed reload %q, want second kept", n)
	}
}

// FuzzVerify feeds arbitrary signature headers and bodies to Verify: it must never panic, and
// never accept a request that was not signed with the secret.
func FuzzVerify(f *testing.F) {
	// A well-formed signature, made with another secret.
	s, _ := NewSigner("node-1", secretB)
	good := signed(&testing.T{}, s, "POST", "/eureka/peerreplication/batch", []byte("{}"))
	f.Add("node-1", good.Header.Get(HeaderTimestamp), good.Header.Get(HeaderNonce), good.Header.Get(HeaderSignature), []byte("{}"))
	f.Add("", "", "", "v1=", []byte(nil))
	f.Add("n", "99999999999999999999", strings.Repeat("0", 32), "v1="+strings.Repeat("ab", 32), []byte("x"))
	f.Fuzz(func(t *testing.T, peer, ts, nonce, sig string, body []byte) {
		v, _ := NewVerifier([]string{secretA}, time.Minute, NewReplayCache(1<<10))
		r := httptest.NewRequest("POST", "/eureka/peerreplication/batch", nil)
		r.Header.Set(HeaderPeer, peer)
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderNonce, nonce)
		r.Header.Set(HeaderSignature, sig)
		if name, err := v.Verify(r, body); err == nil {
			t.Fatalf("forged signature accepted for %q", name)
		}
	})
}
