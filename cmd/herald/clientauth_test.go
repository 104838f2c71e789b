package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hudl/fargo"
	logging "github.com/op/go-logging"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// secureSolo starts a node in this process that serves HTTPS and asks clients for credentials:
// "orders" (register ORDERS and ORDERS-*, Basic), "reader" (read, Basic), "ops" (admin, bearer).
func secureSolo(t *testing.T) (int, *pki) {
	t.Helper()
	p := newPKI(t, "client test CA")
	cert, key := p.node("solo")
	dir := t.TempDir()
	passFile := filepath.Join(dir, "orders.pass")
	if err := os.WriteFile(passFile, []byte("s3cret-orders\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := e2e.FreePorts(t, 1)[0]
	hcl := fmt.Sprintf(`
node {
  name = "solo"
  port = %d
}
log { level = "error" }
response_cache { use_read_only = false }
tls {
  cert_file = %q
  key_file  = %q
  ca_file   = %q
}
client_auth {
  credential "orders" {
    password_file = %q
    role          = "register"
    apps          = ["ORDERS", "ORDERS-*"]
  }
  credential "reader" {
    password = "just-looking"
    role     = "read"
  }
  credential "ops" {
    token = "ops-token-0123456789"
    role  = "admin"
  }
}
`, port, cert, key, p.caFile(), passFile)
	path := filepath.Join(dir, "solo.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rn, err := startNode(context.Background(), cfg, hclog.NewNullLogger(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rn.Stop(context.Background()) })

	return port, p
}

// fargo, a real Eureka client, against a node serving HTTPS with client credentials: it
// registers, fetches, heartbeats and deregisters with Basic credentials in its URL; a read
// credential fetches but cannot register; a register credential cannot write another app; no
// credentials get 401.
func TestFargoOverHTTPSWithCredentials(t *testing.T) {
	logging.SetLevel(logging.CRITICAL, "fargo")
	port, p := secureSolo(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.Cert)
	saved := fargo.HttpClient
	fargo.HttpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() { fargo.HttpClient = saved })

	base := func(userinfo string) string {
		return fmt.Sprintf("https://%s127.0.0.1:%d/eureka", userinfo, port)
	}
	instance := func(app, id string) *fargo.Instance {
		return &fargo.Instance{InstanceId: id, HostName: "host-" + id, App: app, IPAddr: "10.0.0.1", VipAddress: strings.ToLower(app),
			Status: fargo.UP, Port: 8080, PortEnabled: true, DataCenterInfo: fargo.DataCenterInfo{Name: fargo.MyOwn},
			LeaseInfo: fargo.LeaseInfo{RenewalIntervalInSecs: 30, DurationInSecs: 90}}
	}
	for _, json := range []bool{true, false} {
		orders := fargo.NewConn(base("orders:s3cret-orders@"))
		orders.UseJson = json
		ins := instance("ORDERS", fmt.Sprintf("o-json-%v", json))
		if err := orders.RegisterInstance(ins); err != nil {
			t.Fatalf("register over HTTPS with Basic credentials (json %v): %v", json, err)
		}
		app, err := orders.GetApp("ORDERS")
		if err != nil || len(app.Instances) == 0 {
			t.Fatalf("fetch (json %v): %v", json, err)
		}
		if err := orders.HeartBeatInstance(ins); err != nil {
			t.Fatalf("heartbeat (json %v): %v", json, err)
		}
		if err := orders.RegisterInstance(instance("PAYMENTS", "p-1")); err == nil {
			t.Fatalf("a register credential for ORDERS registered PAYMENTS (json %v)", json)
		}
		reader := fargo.NewConn(base("reader:just-looking@"))
		reader.UseJson = json
		if _, err := reader.GetApp("ORDERS"); err != nil {
			t.Fatalf("read credential cannot fetch (json %v): %v", json, err)
		}
		if err := reader.RegisterInstance(instance("ORDERS", "r-1")); err == nil {
			t.Fatalf("a read credential registered (json %v)", json)
		}
		if err := orders.DeregisterInstance(ins); err != nil {
			t.Fatalf("deregister (json %v): %v", json, err)
		}
	}
	anon := fargo.NewConn(base(""))
	anon.UseJson = true
	if _, err := anon.GetApps(); err == nil {
		t.Fatal("an anonymous caller fetched the registry")
	}
	wrong := fargo.NewConn(base("orders:wrong@"))
	wrong.UseJson = true
	if err := wrong.RegisterInstance(instance("ORDERS", "w-1")); err == nil {
		t.Fatal("a wrong password registered")
	}

	// Answers: 401 with a Basic challenge, 403 for a role that does not allow it; a bearer admin
	// may override any app's status.
	c := &e2e.Client{HTTP: fargo.HttpClient}
	code, _, _ := c.Do(context.Background(), "GET", base("")+"/apps", "", nil, nil)
	if code != 401 {
		t.Fatalf("anonymous read: %d, want 401", code)
	}
	eu := fargo.NewConn(base("orders:s3cret-orders@"))
	eu.UseJson = true
	if err := eu.RegisterInstance(instance("ORDERS-EU", "o-eu")); err != nil {
		t.Fatalf("register under a matching pattern: %v", err)
	}
	code, _, _ = c.Do(context.Background(), "PUT", base("reader:just-looking@")+"/apps/ORDERS-EU/o-eu/status?value=OUT_OF_SERVICE", "", nil, nil)
	if code != 403 {
		t.Fatalf("status override with a read credential: %d, want 403", code)
	}
	code, _, _ = c.Do(context.Background(), "PUT", base("")+"/apps/ORDERS-EU/o-eu/status?value=OUT_OF_SERVICE", "", nil,
		map[string]string{"Authorization": "Bearer ops-token-0123456789"})
	if code != 200 {
		t.Fatalf("status override with an admin token: %d, want 200", code)
	}
}

// eureka-js-client, the Node.js Eureka client, registers, fetches and deregisters over HTTPS with
// Basic credentials; with a read credential it cannot register. It needs Node.js and the client
// installed (npm ci in testdata/eureka-js, as .ci/run does); without them the test is skipped.
func TestEurekaJSOverHTTPSWithCredentials(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("Node.js is not installed")
	}
	dir, _ := filepath.Abs(filepath.Join("testdata", "eureka-js"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "eureka-js-client")); err != nil {
		t.Skip("eureka-js-client is not installed: run npm ci in " + dir)
	}
	port, p := secureSolo(t)
	run := func(userinfo string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "client.js"),
			fmt.Sprintf("https://%s127.0.0.1:%d/eureka/apps/", userinfo, port), p.caFile())
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("orders:s3cret-orders@"); err != nil {
		t.Fatalf("eureka-js-client with a register credential: %v\n%s", err, out)
	}
	out, err := run("reader:just-looking@")
	if err == nil || !strings.Contains(out, "register") {
		t.Fatalf("eureka-js-client registered with a read credential (%v):\n%s", err, out)
	}
	if out, err := run(""); err == nil {
		t.Fatalf("eureka-js-client registered without credentials:\n%s", out)
	}
}
