package main

// End-to-end tests of peer authentication: forged peer writes against real herald processes, with
// a cluster secret and with mutual TLS.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// forgery is one attack on a node's peer surface: the request and the answers that refuse it.
type forgery struct {
	name, method, path, body string
	header                   map[string]string
	want                     []int
}

func forgeries(future int64) []forgery {
	batch := func(items string) string { return `{"replicationList":[` + items + `]}` }
	ts := strconv.FormatInt(future, 10)
	forgedInstance := strings.Replace(string(e2e.InstanceJSON("VICTIM", "v-1", future, "UP", nil)), `"127.0.0.1"`, `"6.6.6.6"`, -1)
	forgedInstance = strings.TrimSuffix(strings.TrimPrefix(forgedInstance, `{"instance":`), "}")
	return []forgery{
		{name: "batch Cancel", method: "POST", path: "peerreplication/batch",
			body: batch(`{"appName":"VICTIM","id":"v-1","action":"Cancel"}`), want: []int{403}},
		{name: "batch Register from the future", method: "POST", path: "peerreplication/batch",
			body: batch(`{"appName":"VICTIM","id":"v-1","action":"Register","lastDirtyTimestamp":` + ts + `,"instanceInfo":` + forgedInstance + `}`),
			want: []int{403}},
		{name: "batch StatusUpdate", method: "POST", path: "peerreplication/batch",
			body: batch(`{"appName":"VICTIM","id":"v-1","action":"StatusUpdate","status":"OUT_OF_SERVICE","overriddenStatus":"OUT_OF_SERVICE","lastDirtyTimestamp":` + ts + `}`),
			want: []int{403}},
		{name: "batch with a signature from another secret", method: "POST", path: "peerreplication/batch",
			body:   batch(`{"appName":"VICTIM","id":"v-1","action":"Cancel"}`),
			header: map[string]string{"wrong-secret": "1"}, want: []int{401}},
		{name: "replication header on a registration from the future", method: "POST", path: "apps/VICTIM",
			body: string(e2e.InstanceJSON("VICTIM", "v-1", future, "UP", nil)), header: repl, want: []int{400}},
		{name: "replication header on a status change from the future", method: "PUT",
			path: "apps/VICTIM/v-1/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=" + ts, header: repl, want: []int{400}},
		{name: "digest", method: "GET", path: "//herald/v1/digest", want: []int{403}},
		{name: "pull", method: "GET", path: "//herald/v1/apps/VICTIM", want: []int{403}},
	}
}

// send sends f to the node at root (ending in "/eureka/" for the API) with c.
func (f forgery) send(t *testing.T, c *e2e.Client, n *e2e.Node) int {
	t.Helper()
	u := n.URL() + f.path
	if strings.HasPrefix(f.path, "//") {
		u = n.Root() + f.path[1:]
	}
	if f.header["wrong-secret"] != "" {
		s, err := peerauth.NewSigner("mallory", peerauth.NewSecret())
		if err != nil {
			t.Fatal(err)
		}
		base := c.HTTP.Transport
		c = &e2e.Client{HTTP: &http.Client{Timeout: 5 * time.Second, Transport: &peerauth.SigningTransport{Signer: s, Base: base}}}
	}
	ct := ""
	if f.body != "" {
		ct = "application/json"
	}
	code, _, err := c.Do(context.Background(), f.method, u, ct, []byte(f.body), f.header)
	if err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	return code
}

// untouched checks that VICTIM/v-1 is UP with its own address and timestamp on every node, after
// two anti-entropy rounds on each, so a forged write that slipped in anywhere would have spread.
func untouched(t *testing.T, c *e2e.Client, ts int64, nodes ...*e2e.Node) {
	t.Helper()
	for _, n := range nodes {
		base := aeExchanges(t, c, n)
		e2e.Eventually(t, time.Minute, func() error { // two anti-entropy rounds on n
			if v := aeExchanges(t, c, n); v < base+2*float64(len(nodes)-1) {
				return fmt.Errorf("%v exchanges since", v-base)
			}
			return nil
		})
	}
	for _, n := range nodes {
		code, b, err := c.Do(context.Background(), "GET", n.URL()+"apps/VICTIM/v-1", "", nil, nil)
		if err != nil || code != 200 {
			t.Fatalf("VICTIM/v-1 on %s: %d %v", n.Name, code, err)
		}
		s := string(b)
		if !strings.Contains(s, `"status":"UP"`) || strings.Contains(s, "6.6.6.6") ||
			!strings.Contains(s, `"lastDirtyTimestamp":"`+strconv.FormatInt(ts, 10)+`"`) {
			t.Fatalf("VICTIM/v-1 on %s was changed by a forged write: %s", n.Name, s)
		}
	}
}

func aeExchanges(t *testing.T, c *e2e.Client, n *e2e.Node) float64 {
	t.Helper()
	code, b, err := c.Do(context.Background(), "GET", n.Root()+"/metrics", "", nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("metrics of %s: %d %v", n.Name, code, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "herald_antientropy_exchanges_total ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, "herald_antientropy_exchanges_total "), 64)
			return v
		}
	}
	return 0
}

// Three nodes with a cluster secret: replication, sync and anti-entropy work between them, and no
// forged peer write changes any node's registry.
func TestForgedPeerWritesRefusedWithSecret(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, "")
	ts := time.Now().UnixMilli()
	register(t, nodes[0], "VICTIM", "v-1", ts, nil)
	visibleOn(t, "VICTIM", "v-1", nodes...)
	future := time.Now().Add(10 * 365 * 24 * time.Hour).UnixMilli()
	for _, f := range forgeries(future) {
		for _, n := range nodes[:2] {
			if code := f.send(t, client, n); !contains(f.want, code) {
				t.Errorf("%s at %s: answered %d, want %v", f.name, n.Name, code, f.want)
			}
		}
	}
	untouched(t, e2e.PeerClient, ts, nodes...)

	// Startup sync is authenticated too: a fourth node that no peer replicates to and that runs
	// no anti-entropy has the instance as soon as it is ready, from its startup sync alone.
	port := e2e.FreePorts(t, 1)[0]
	peers := []string{urlOf(port)}
	for _, n := range nodes {
		peers = append(peers, n.URL())
	}
	hcl := strings.Replace(clusterHCL(port, peers, ""), `anti_entropy { interval = "1s" }`, `anti_entropy { enabled = false }`, 1)
	late := e2e.NewNode(t, heraldBin, "late", port, hcl)
	late.Start()
	if _, ok, err := instance(t, late, "VICTIM", "v-1"); err != nil || !ok {
		t.Fatalf("startup sync did not copy VICTIM/v-1 (%v)", err)
	}

	// The same requests signed with the cluster secret are a peer's: the secret is what makes
	// the difference, not the requests' shape.
	code, _ := do(t, "GET", nodes[0].Root()+"/herald/v1/digest", nil, repl)
	if code != 200 {
		t.Fatalf("signed digest: %d", code)
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// pki writes a cluster CA and node certificates into a test directory.
type pki struct {
	t   testing.TB
	dir string
	ca  peerauth.PEMPair
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	ca, err := peerauth.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), ca: ca}
	if err := os.WriteFile(p.caFile(), ca.Cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pki) caFile() string { return filepath.Join(p.dir, "ca.pem") }

// node writes a certificate for name and returns its cert and key paths.
func (p *pki) node(name string) (string, string) {
	p.t.Helper()
	pair, err := peerauth.NewNodeCert(p.ca, name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	c, k := filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	for f, b := range map[string][]byte{c: pair.Cert, k: pair.Key} {
		if err := os.WriteFile(f+".tmp", b, 0o600); err != nil {
			p.t.Fatal(err)
		}
		if err := os.Rename(f+".tmp", f); err != nil {
			p.t.Fatal(err)
		}
	}
	return c, k
}

// client trusts the CA and presents no certificate (an Eureka client over HTTPS).
func (p *pki) client() *e2e.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.Cert)
	return &e2e.Client{HTTP: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// mtlsNode is a node that serves TLS with a certificate from p and authenticates peers by mutual
// TLS only (no secret).
func mtlsNode(t *testing.T, p *pki, name string, port int, peers []string) *e2e.Node {
	cert, key := p.node(name)
	hcl := strings.Replace(clusterHCL(port, peers, ""), "cluster {", "cluster {\n  peer_auth { mtls = true }", 1)
	hcl = strings.Replace(hcl, "log {", fmt.Sprintf("tls {\n  cert_file = %q\n  key_file = %q\n  ca_file = %q\n}\nlog {", cert, key, p.caFile()), 1)
	n := e2e.NewNode(t, heraldBin, name, port, hcl)
	n.OwnPeerAuth, n.HTTPS = true, p.client()
	return n
}

// Three nodes with mutual TLS: replication over HTTPS works, Eureka clients register over HTTPS
// without a certificate, no forged peer write gets in, a node with a certificate from another CA
// cannot join, and rotating a node's certificate by SIGHUP keeps replication going.
func TestMutualTLSCluster(t *testing.T) {
	t.Parallel()
	p := newPKI(t, "cluster CA")
	ports := e2e.FreePorts(t, 4)
	var urls []string
	for _, port := range ports[:3] {
		urls = append(urls, fmt.Sprintf("https://127.0.0.1:%d/eureka/", port))
	}
	var nodes []*e2e.Node
	for i, port := range ports[:3] {
		n := mtlsNode(t, p, fmt.Sprintf("node-%d", i), port, urls)
		n.Start()
		nodes = append(nodes, n)
	}
	c := p.client()
	ts := time.Now().UnixMilli()
	code, b, err := c.Do(context.Background(), "POST", nodes[0].URL()+"apps/VICTIM", "application/json",
		e2e.InstanceJSON("VICTIM", "v-1", ts, "UP", nil), nil)
	if err != nil || code != 204 {
		t.Fatalf("register over HTTPS: %d %s %v", code, b, err)
	}
	visible := func(c *e2e.Client, app, id string, ns ...*e2e.Node) {
		t.Helper()
		for _, n := range ns {
			eventually(t, id+" on "+n.Name, func() error {
				code, _, err := c.Do(context.Background(), "GET", n.URL()+"apps/"+app+"/"+id, "", nil, nil)
				if err != nil || code != 200 {
					return fmt.Errorf("%d %v", code, err)
				}
				return nil
			})
		}
	}
	visible(c, "VICTIM", "v-1", nodes...)

	future := time.Now().Add(10 * 365 * 24 * time.Hour).UnixMilli()
	for _, f := range forgeries(future) {
		if f.header["wrong-secret"] != "" {
			f.want = []int{401, 403} // no secret in use: the signature cannot verify
		}
		if code := f.send(t, c, nodes[1]); !contains(f.want, code) {
			t.Errorf("%s: answered %d, want %v", f.name, code, f.want)
		}
	}
	// A plain-HTTP caller is not served (Go's TLS server answers it 400 at most).
	if code, _, err := e2e.DefaultClient.Do(context.Background(), "GET", strings.Replace(nodes[0].URL(), "https", "http", 1)+"apps", "", nil, nil); err == nil && code != 400 {
		t.Errorf("a plain-HTTP request to a TLS node was answered %d", code)
	}

	// A node whose certificate comes from another CA: its writes reach nobody, and it gets
	// nothing from the cluster.
	intruderPKI := newPKI(t, "another CA")
	intruder := mtlsNode(t, intruderPKI, "intruder", ports[3], append([]string{fmt.Sprintf("https://127.0.0.1:%d/eureka/", ports[3])}, urls...))
	intruder.Start()
	ic := intruderPKI.client()
	code, b, err = ic.Do(context.Background(), "POST", intruder.URL()+"apps/VICTIM", "application/json",
		e2e.InstanceJSON("VICTIM", "v-1", time.Now().UnixMilli()+1000, "UP", map[string]string{"owner": "intruder"}), nil)
	if err != nil || code != 204 {
		t.Fatalf("register at the intruder: %d %s %v", code, b, err)
	}
	eventually(t, "the intruder tried to replicate", func() error {
		v, err := intruderMetric(ic, intruder, "herald_replication_batches_total")
		if err == nil && v == 0 {
			err = fmt.Errorf("no batch attempted yet")
		}
		return err
	})
	untouchedMTLS(t, c, ts, nodes...)

	// Rotation under load: node-0 gets a new certificate and SIGHUP while clients write to
	// node-0 and node-2; every acknowledged write reaches every node.
	stop := make(chan struct{})
	var acked []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("l-%d", i)
			code, _, err := c.Do(context.Background(), "POST", nodes[(i%2)*2].URL()+"apps/ROTLOAD", "application/json",
				e2e.InstanceJSON("ROTLOAD", id, time.Now().UnixMilli(), "UP", nil), nil)
			if err == nil && code == 204 {
				acked = append(acked, id)
			}
		}
	}()
	e2e.Eventually(t, 30*time.Second, func() error { // some load before the rotation
		if v, _ := intruderMetric(c, nodes[0], "herald_replication_tasks_accepted_total"); v < 20 {
			return fmt.Errorf("%v tasks so far", v)
		}
		return nil
	})
	before := servedSerial(t, p, nodes[0])
	p.node("node-0")
	nodes[0].Signal(syscall.SIGHUP)
	e2e.Eventually(t, 30*time.Second, func() error {
		if servedSerial(t, p, nodes[0]) == before {
			return fmt.Errorf("node-0 still serves its old certificate")
		}
		return nil
	})
	e2e.Eventually(t, 30*time.Second, func() error { // and some after it
		if v, _ := intruderMetric(c, nodes[2], "herald_replication_tasks_accepted_total"); v < 60 {
			return fmt.Errorf("%v tasks so far", v)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write acknowledged during the rotation")
	}
	for _, n := range nodes {
		e2e.Eventually(t, time.Minute, func() error {
			code, b, err := c.Do(context.Background(), "GET", n.URL()+"apps/ROTLOAD", "", nil, nil)
			if err != nil || code != 200 {
				return fmt.Errorf("%d %v", code, err)
			}
			for _, id := range acked {
				if !strings.Contains(string(b), `"instanceId":"`+id+`"`) {
					return fmt.Errorf("%s missing on %s", id, n.Name)
				}
			}
			return nil
		})
	}
	ts2 := time.Now().UnixMilli()
	code, _, _ = c.Do(context.Background(), "POST", nodes[0].URL()+"apps/ROTATED", "application/json", e2e.InstanceJSON("ROTATED", "r-1", ts2, "UP", nil), nil)
	if code != 204 {
		t.Fatalf("register after rotation: %d", code)
	}
	code, _, _ = c.Do(context.Background(), "POST", nodes[2].URL()+"apps/ROTATED", "application/json", e2e.InstanceJSON("ROTATED", "r-2", ts2, "UP", nil), nil)
	if code != 204 {
		t.Fatalf("register after rotation: %d", code)
	}
	visible(c, "ROTATED", "r-1", nodes...)
	visible(c, "ROTATED", "r-2", nodes...)
}

// untouchedMTLS is untouched for a TLS cluster (and checks the intruder's write did not land).
func untouchedMTLS(t *testing.T, c *e2e.Client, ts int64, nodes ...*e2e.Node) {
	t.Helper()
	untouched(t, c, ts, nodes...)
	for _, n := range nodes {
		_, b, _ := c.Do(context.Background(), "GET", n.URL()+"apps/VICTIM/v-1", "", nil, nil)
		if strings.Contains(string(b), "intruder") {
			t.Fatalf("the intruder's write reached %s: %s", n.Name, b)
		}
	}
}

func intruderMetric(c *e2e.Client, n *e2e.Node, name string) (float64, error) {
	code, b, err := c.Do(context.Background(), "GET", n.Root()+"/metrics", "", nil, nil)
	if err != nil || code != 200 {
		return 0, fmt.Errorf("metrics: %d %v", code, err)
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum, nil
}

// A node with peers and no peer authentication refuses to start, naming the setting.
func TestPeersWithoutAuthRefuseToStart(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 2)
	n := e2e.NewNode(t, heraldBin, "lonely", ports[0], clusterHCL(ports[0], []string{urlOf(ports[0]), urlOf(ports[1])}, ""))
	n.OwnPeerAuth = true
	code, out := n.Run(30 * time.Second)
	if code == 0 || !strings.Contains(out, "cluster.peer_auth") || !strings.Contains(out, "insecure_peers") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// servedSerial is the serial number of the certificate a node presents.
func servedSerial(t *testing.T, p *pki, n *e2e.Node) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.Cert)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.Port), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
