package grpctransport

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// authPeer configures a transport with pa: a receiver (listen set) or a sender.
func authPeer(t *testing.T, pa peerauth.Config, host sdk.Host) *Plugin {
	t.Helper()
	cfg := sdk.RawConfig(`{"listen": "off"}`)
	if host != nil {
		cfg = sdk.RawConfig(`{"listen": "127.0.0.1:0"}`)
	}
	p := NewPlugin()
	if d := p.Configure(context.Background(), sdk.ConfigureRequest{Config: cfg, Host: host, PeerAuth: pa, NodeName: "n"}); len(d) > 0 {
		t.Fatalf("configure: %v", d)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// tlsFiles writes a node certificate from ca (and the CA) into dir.
func tlsFiles(t *testing.T, dir, name string, ca peerauth.PEMPair) peerauth.TLSFiles {
	t.Helper()
	pair, err := peerauth.NewNodeCert(ca, name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := peerauth.TLSFiles{CAFile: filepath.Join(dir, name+"-ca.pem"), CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
	for path, b := range map[string][]byte{f.CAFile: ca.Cert, f.CertFile: pair.Cert, f.KeyFile: pair.Key} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// The receiving side takes batches only from authenticated peers: a sender without the cluster
// secret, with another secret, or with a certificate from another CA gets nothing through, and
// its sends fail as congestion (retried, never dropped).
func TestListenerAuthenticatesPeers(t *testing.T) {
	dir := t.TempDir()
	ca, _ := peerauth.NewCA("cluster", time.Hour)
	other, _ := peerauth.NewCA("other", time.Hour)
	secret := peerauth.NewSecret()
	cases := []struct {
		name     string
		receiver peerauth.Config
		sender   peerauth.Config
		ok       bool
	}{
		{"same secret", peerauth.Config{Secrets: []string{secret}}, peerauth.Config{Secrets: []string{secret}}, true},
		{"no secret", peerauth.Config{Secrets: []string{secret}}, peerauth.Config{}, false},
		{"another secret", peerauth.Config{Secrets: []string{secret}}, peerauth.Config{Secrets: []string{peerauth.NewSecret()}}, false},
		{"receiver without any authentication refuses everyone", peerauth.Config{}, peerauth.Config{Secrets: []string{secret}}, false},
		{"mutual TLS", peerauth.Config{TLS: tlsFiles(t, dir, "rx", ca), MTLS: true},
			peerauth.Config{TLS: tlsFiles(t, dir, "tx", ca), MTLS: true}, true},
		{"certificate from another CA", peerauth.Config{TLS: tlsFiles(t, dir, "rx2", ca), MTLS: true},
			peerauth.Config{TLS: tlsFiles(t, dir, "tx2", other), MTLS: true}, false},
		{"TLS without a client certificate the allow-list names", peerauth.Config{TLS: tlsFiles(t, dir, "rx3", ca), MTLS: true, PeerNames: []string{"someone-else"}},
			peerauth.Config{TLS: tlsFiles(t, dir, "tx3", ca), MTLS: true}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := &recordingHost{}
			rx := authPeer(t, c.receiver, host)
			tx := authPeer(t, c.sender, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := tx.Send(ctx, peerAt(rx.Addr().String()), sdk.Batch{ID: "b1", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "x"}}})
			if c.ok {
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				if len(host.received()) != 1 {
					t.Fatalf("host got %d batches", len(host.received()))
				}
				return
			}
			if err == nil {
				t.Fatal("an unauthenticated sender's batch was taken")
			}
			if cl := sdk.ClassOf(err); cl == sdk.Permanent {
				t.Fatalf("refusal classed permanent (the writes would be dropped): %v", err)
			}
			if n := len(host.received()); n != 0 {
				t.Fatalf("host got %d batches from an unauthenticated sender", n)
			}
		})
	}
}

// traceHost records the span context each batch arrives with.
type traceHost struct {
	recordingHost
	got chan trace.SpanContext
}

func (h *traceHost) Receive(ctx context.Context, b sdk.Batch) ([]sdk.ItemResult, error) {
	h.got <- trace.SpanContextFromContext(ctx)
	return h.recordingHost.Receive(ctx, b)
}

// A batch carries its span's context: the receiving node's handling of it joins the batch's trace.
func TestBatchCarriesTraceContext(t *testing.T) {
	host := &traceHost{got: make(chan trace.SpanContext, 1)}
	rx := receiver(t, host, "", nil)
	tx := sender(t, nil)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	if _, err := tx.Send(ctx, peerAt(rx.Addr().String()), sdk.Batch{ID: "b1", Items: []sdk.Item{{Action: sdk.ActionCancel, App: "A", ID: "x"}}}); err != nil {
		t.Fatal(err)
	}
	got := <-host.got
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsRemote() {
		t.Fatalf("the receiving side got span context %v, want the sender's %v as remote", got, sc)
	}
}
