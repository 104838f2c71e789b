package eureka_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/core/replication/receive"
)

// testNode is one herald node's registry and Eureka API behind a real HTTP server.
type testNode struct {
	reg *registry.Registry
	h   *eureka.Handler
	srv *httptest.Server
	// base is the API prefix under test, e.g. "/eureka/v2".
	base   string
	client *http.Client
}

type nodeConfig struct {
	base   string
	reg    func(*registry.Config)
	opts   func(*eureka.Options)
	noOpen bool
}

// newNode starts a standalone node as section 7 of the reference assumes: no peers, read-only
// cache off (reads see writes at once), registry defaults otherwise.
func newNode(t testing.TB, cfg nodeConfig) *testNode {
	t.Helper()
	rc := registry.DefaultConfig()
	if cfg.reg != nil {
		cfg.reg(&rc)
	}
	reg := registry.New(rc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Start's contract is "until ctx ends"; run it on its own goroutine whether or not it blocks.
	go reg.Start(ctx)
	if !cfg.noOpen {
		reg.OpenForTraffic(0)
	}
	// Callers are authenticated peers here (the node's middleware decides that in production);
	// trust_test.go covers callers that are not.
	opts := eureka.Options{Registry: reg, Batch: receive.New(reg), IsPeer: func(*http.Request) bool { return true }}
	if cfg.opts != nil {
		cfg.opts(&opts)
	}
	h := eureka.NewHandler(opts)
	h.Start(ctx)
	t.Cleanup(h.Stop)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base := cfg.base
	if base == "" {
		base = "/eureka/v2"
	}
	// DisableCompression: the tests ask for gzip themselves and look at the raw bytes.
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &testNode{reg: reg, h: h, srv: srv, base: base, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

type response struct {
	code int
	hdr  http.Header
	body []byte
}

// do sends one request; path is relative to the node's base unless it starts with "//", which
// means "from the server root".
func (n *testNode) do(t testing.TB, method, path, body string, hdr ...string) response {
	t.Helper()
	return n.doBytes(t, method, path, []byte(body), hdr...)
}

func (n *testNode) doBytes(t testing.TB, method, path string, body []byte, hdr ...string) response {
	t.Helper()
	u := n.srv.URL + n.base + path
	if strings.HasPrefix(path, "//") {
		u = n.srv.URL + path[1:]
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, hdr: resp.Header, body: b}
}

// register posts I(app,id,ip,status,ts) and requires 204.
func (n *testNode) register(t testing.TB, app string, inst instance) {
	t.Helper()
	r := n.do(t, "POST", "/apps/"+app, inst.json(), "Content-Type", "application/json")
	if r.code != http.StatusNoContent {
		t.Fatalf("register %s/%s: got %d %q, want 204", app, inst.ID, r.code, r.body)
	}
}

// instance builds the registration bodies of the reference's tests: I(app,id,ip,status,ts).
type instance struct {
	App, ID, IP, Status string
	TS                  int64
	VIP, SVIP           string
	Metadata            map[string]string
	Duration            int
	// Omit lists top-level keys to leave out; Set overrides or adds raw JSON values.
	Omit []string
	Set  map[string]string
}

func inst(app, id, ip, status string, ts int64) instance {
	return instance{App: app, ID: id, IP: ip, Status: status, TS: ts}
}

func (i instance) json() string {
	return `{"instance":` + i.bare() + `}`
}

// bare renders the instance without the wrapper, in Eureka's key order.
func (i instance) bare() string {
	vip := i.VIP
	if vip == "" {
		vip = strings.ToLower(i.App)
	}
	dur := i.Duration
	if dur == 0 {
		dur = 90
	}
	md := `{"@class":"java.util.Collections$EmptyMap"}`
	if len(i.Metadata) > 0 {
		b, _ := json.Marshal(i.Metadata)
		md = string(b)
	}
	ts := strconv.FormatInt(i.TS, 10)
	fields := []struct{ k, v string }{
		{"instanceId", q(i.ID)},
		{"hostName", q("host-" + i.ID)},
		{"app", q(i.App)},
		{"ipAddr", q(i.IP)},
		{"status", q(i.Status)},
		{"overriddenStatus", q("UNKNOWN")},
		{"port", `{"$":8080,"@enabled":"true"}`},
		{"securePort", `{"$":8443,"@enabled":"false"}`},
		{"countryId", "1"},
		{"dataCenterInfo", `{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}`},
		{"leaseInfo", fmt.Sprintf(`{"renewalIntervalInSecs":30,"durationInSecs":%d}`, dur)},
		{"metadata", md},
		{"homePageUrl", q("http://host-" + i.ID + ":8080/")},
		{"vipAddress", q(vip)},
		{"secureVipAddress", q(orDefault(i.SVIP, vip))},
		{"isCoordinatingDiscoveryServer", q("false")},
		{"lastUpdatedTimestamp", q(ts)},
		{"lastDirtyTimestamp", q(ts)},
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, f := range fields {
		if contains(i.Omit, f.k) {
			continue
		}
		v := f.v
		if s, ok := i.Set[f.k]; ok {
			v = s
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(q(f.k) + ":" + v)
	}
	for k, v := range i.Set {
		if !hasField(fields, k) {
			b.WriteString("," + q(k) + ":" + v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

func hasField(fields []struct{ k, v string }, k string) bool {
	for _, f := range fields {
		if f.k == k {
			return true
		}
	}
	return false
}

func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// xmlInstance is the XML registration body of reference 1.4.1.
func xmlInstance(app, id string, ts int64) string {
	return fmt.Sprintf(`<instance>
  <instanceId>%[2]s</instanceId>
  <hostName>host-%[2]s</hostName>
  <app>%[1]s</app>
  <ipAddr>10.0.0.11</ipAddr>
  <status>UP</status>
  <port enabled="true">8080</port>
  <securePort enabled="false">8443</securePort>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
    <name>MyOwn</name>
  </dataCenterInfo>
  <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>
  <metadata><zone>z1</zone></metadata>
  <vipAddress>%[3]s</vipAddress>
  <lastDirtyTimestamp>%[4]d</lastDirtyTimestamp>
</instance>`, app, id, strings.ToLower(app), ts)
}

// doc is a decoded JSON document with path lookups.
type doc map[string]any

func decode(t testing.TB, b []byte) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return d
}

// get walks a dotted path ("instance.port.$"); numeric parts index arrays.
func (d doc) get(path string) any {
	var cur any = map[string]any(d)
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func (d doc) str(path string) string {
	v := d.get(path)
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "<nil>"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// instanceIDs lists the instance ids of an applications document, as "APP/id".
func instanceIDs(d doc) []string {
	var ids []string
	apps, _ := d.get("applications.application").([]any)
	for _, a := range apps {
		am, _ := a.(map[string]any)
		insts, _ := am["instance"].([]any)
		for _, i := range insts {
			im, _ := i.(map[string]any)
			ids = append(ids, fmt.Sprint(am["name"], "/", im["instanceId"]))
		}
	}
	return ids
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// eventually polls cond every 20 ms until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t testing.TB, what string, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: got %d (body %q), want %d", what, r.code, r.body, code)
	}
}
