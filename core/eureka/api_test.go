package eureka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
)

func TestRegisterValidation(t *testing.T) {
	amazonNoID := inst("DEMO", "", "10.0.0.1", "UP", 1)
	amazonNoID.Omit = []string{"instanceId"}
	amazonNoID.Set = map[string]string{
		"hostName":       `""`,
		"dataCenterInfo": `{"@class":"com.netflix.appinfo.AmazonInfo","name":"Amazon","metadata":{"instance-id":""}}`,
	}
	cases := []struct {
		name string
		path string
		body string
		ct   string
		code int
		want string
	}{
		{"missing instanceId", "/apps/DEMO", amazonNoID.json(), jsonCT, 400, "Missing instanceId"},
		{"missing ip", "/apps/DEMO", instance{App: "DEMO", ID: "x", IP: "", Status: "UP", TS: 1}.json(), jsonCT, 400, "Missing ip address"},
		{"blank app", "/apps/DEMO", instance{App: "DEMO", ID: "x", IP: "1.2.3.4", TS: 1, Status: "UP", Set: map[string]string{"app": `""`}}.json(), jsonCT, 400, "Missing appName"},
		{"hostname checked before ip", "/apps/DEMO", instance{App: "DEMO", ID: "x", IP: "", Status: "UP", TS: 1, Set: map[string]string{"hostName": `" "`}}.json(), jsonCT, 400, "Missing hostname"},
		{"missing dataCenterInfo name", "/apps/DEMO", instance{App: "DEMO", ID: "x", IP: "1.2.3.4", Status: "UP", TS: 1,
			Set: map[string]string{"dataCenterInfo": `{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"}`}}.json(), jsonCT, 400, "Missing dataCenterInfo Name"},
		{"malformed JSON", "/apps/DEMO", `{"instance":`, jsonCT, 400, `{"error": "cannot parse request body"}`},
		{"malformed XML", "/apps/DEMO", `<instance><app>`, "application/xml", 400, `<error><message>cannot parse request body</message></error>`},
		{"charset utf-16", "/apps/DEMO", inst("DEMO", "x", "1.2.3.4", "UP", 1).json(), "application/json; charset=utf-16", 415, ""},
		{"no content type", "/apps/DEMO", inst("DEMO", "x", "1.2.3.4", "UP", 1).json(), "", 415, ""},
		{"text/xml", "/apps/DEMO", xmlInstance("DEMO", "x", 1), "text/xml", 415, ""},
		{"charset utf-8", "/apps/DEMO", inst("DEMO", "c1", "1.2.3.4", "UP", 1).json(), "application/json; charset=UTF-8", 204, ""},
		{"charset iso-8859-1", "/apps/DEMO", inst("DEMO", "c2", "1.2.3.4", "UP", 1).json(), "application/json;charset=ISO-8859-1", 204, ""},
	}
	n := newNode(t, nodeConfig{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ct != "" {
				hdr = []string{"Content-Type", tc.ct}
			}
			r := n.do(t, "POST", tc.path, tc.body, hdr...)
			wantCode(t, "register", r, tc.code)
			if tc.want != "" && string(r.body) != tc.want {
				t.Errorf("body = %q, want %q", r.body, tc.want)
			}
		})
	}
	if got := n.reg.Stats().Instances; got != 2 {
		t.Errorf("registry holds %d instances, want only the 2 accepted", got)
	}
}

func TestRegisterAmazonBackfill(t *testing.T) {
	n := newNode(t, nodeConfig{})
	i := inst("DEMO", "i-123", "10.0.0.1", "UP", 1)
	i.Set = map[string]string{"dataCenterInfo": `{"@class":"com.netflix.appinfo.AmazonInfo","name":"Amazon","metadata":{"availability-zone":"a"}}`}
	n.register(t, "DEMO", i)
	d := decode(t, n.do(t, "GET", "/apps/DEMO/i-123", "", "Accept", jsonCT).body)
	if got := d.str("instance.dataCenterInfo.metadata.instance-id"); got != "i-123" {
		t.Errorf("instance-id = %s, want back-filled i-123", got)
	}
}

func TestRegisterWithoutLastDirtyUsesServerClock(t *testing.T) {
	n := newNode(t, nodeConfig{})
	i := inst("DEMO", "t1", "10.0.0.1", "UP", 0)
	i.Omit = []string{"lastDirtyTimestamp", "lastUpdatedTimestamp"}
	before := time.Now().UnixMilli()
	n.register(t, "DEMO", i)
	ts, _ := decode(t, n.do(t, "GET", "/apps/DEMO/t1", "", "Accept", jsonCT).body).get("instance.lastDirtyTimestamp").(string)
	var got int64
	fmt.Sscan(ts, &got)
	if got < before || got > time.Now().UnixMilli() {
		t.Errorf("lastDirtyTimestamp = %q, want the server clock at registration", ts)
	}
}

func TestBodyLimitsAndGzipRequests(t *testing.T) {
	n := newNode(t, nodeConfig{opts: func(o *eureka.Options) { o.MaxBodyBytes = 2048 }})
	small := inst("DEMO", "g1", "10.0.0.1", "UP", 1).json()
	big := inst("DEMO", "g2", "10.0.0.1", "UP", 1)
	big.Metadata = map[string]string{"pad": strings.Repeat("x", 4096)}
	cases := []struct {
		name string
		body []byte
		hdr  []string
		code int
		msg  string
	}{
		{"gzip body", gzipBytes([]byte(small)), []string{"Content-Encoding", "gzip"}, 204, ""},
		{"over limit", []byte(big.json()), nil, 413, "request body larger than 2048 bytes"},
		{"over limit once inflated", gzipBytes([]byte(big.json())), []string{"Content-Encoding", "gzip"}, 413, "request body larger than 2048 bytes"},
		{"not gzip", []byte(small), []string{"Content-Encoding", "gzip"}, 400, ""},
		{"unknown encoding", []byte(small), []string{"Content-Encoding", "br"}, 415, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{"Content-Type", jsonCT}, tc.hdr...)
			r := n.doBytes(t, "POST", "/apps/DEMO", tc.body, hdr...)
			wantCode(t, "register", r, tc.code)
			if tc.msg != "" && string(r.body) != tc.msg {
				t.Errorf("body = %q, want %q", r.body, tc.msg)
			}
		})
	}
	if len(gzipBytes([]byte(big.json()))) >= 2048 {
		t.Fatal("test bug: the compressed big body must fit the limit")
	}
}

func TestHeartbeatParameters(t *testing.T) {
	n := newNode(t, nodeConfig{})
	n.register(t, "DEMO", inst("DEMO", "h1", "10.0.0.1", "UP", 1000))
	repl := []string{eureka.ReplicationHeader, "true"}
	cases := []struct {
		name  string
		query string
		hdr   []string
		code  int
	}{
		{"no timestamp", "", nil, 200},
		{"equal", "?lastDirtyTimestamp=1000", nil, 200},
		{"non-numeric timestamp", "?lastDirtyTimestamp=abc", nil, 400},
		{"status parameter ignored", "?status=DOWN&lastDirtyTimestamp=1000", nil, 200},
		{"replicated equal", "?lastDirtyTimestamp=1000", repl, 200},
		{"replicated newer with invalid override", "?lastDirtyTimestamp=5000&overriddenstatus=bogus", repl, 500},
		{"unknown app", "", nil, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "/apps/DEMO/h1" + tc.query
			if tc.name == "unknown app" {
				path = "/apps/NOPE/h1"
			}
			r := n.do(t, "PUT", path, "", tc.hdr...)
			wantCode(t, "heartbeat", r, tc.code)
			if tc.code == 400 && !bytes.Contains(r.body, []byte("lastDirtyTimestamp")) {
				t.Errorf("400 body %q does not name the parameter", r.body)
			}
		})
	}
	if s := decode(t, n.do(t, "GET", "/apps/DEMO/h1", "", "Accept", jsonCT).body).str("instance.status"); s != "UP" {
		t.Errorf("the ignored status parameter changed the status to %s", s)
	}
}

func TestRoutingAndMethods(t *testing.T) {
	n := newNode(t, nodeConfig{})
	n.register(t, "DEMO", inst("DEMO", "m1", "10.0.0.1", "UP", 1000))
	cases := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/apps/", 200, ""},
		{"GET", "/apps/DEMO/", 200, ""},
		{"GET", "/apps/DEMO/m1/", 200, ""},
		{"HEAD", "/apps", 200, ""},
		{"POST", "/apps", 405, "GET, HEAD"},
		{"DELETE", "/apps/DEMO", 405, "GET, HEAD, POST"},
		{"POST", "/apps/DEMO/m1", 405, "GET, HEAD, PUT, DELETE"},
		{"GET", "/apps/DEMO/m1/status", 405, "PUT, DELETE"},
		{"GET", "/apps/DEMO/m1/metadata", 405, "PUT"},
		{"GET", "/peerreplication/batch", 405, "POST"},
		{"GET", "/nothing", 404, ""},
		{"GET", "/apps/DEMO/m1/other", 404, ""},
		{"GET", "//eureka/v1/apps/DEMO/m1", 200, ""},
		{"GET", "//serverinfo/statusoverrides", 200, ""},
		{"GET", "//eureka/serverinfo/statusoverrides", 200, ""},
		{"GET", "//eureka/status", 200, ""},
		{"GET", "//", 200, ""},
		{"POST", "//", 405, "GET, HEAD"},
		{"GET", "//elsewhere", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := n.do(t, tc.method, tc.path, "")
			wantCode(t, tc.method+" "+tc.path, r, tc.code)
			if got := r.hdr.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestNegotiationSingleInstance(t *testing.T) {
	n := newNode(t, nodeConfig{})
	n.register(t, "DEMO", inst("DEMO", "n1", "10.0.0.1", "UP", 1000))
	cases := []struct {
		accept string
		code   int
		ctype  string
	}{
		{"", 200, "application/xml"},
		{"*/*", 200, "application/xml"},
		{"application/json", 200, jsonCT},
		{"application/xml;q=0.5, application/json", 200, jsonCT},
		{"application/json;q=0.5, application/xml", 200, "application/xml"},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200, "application/xml"},
		{"application/json, */*", 200, jsonCT},
		{"application/*, application/json;q=0.5", 200, "application/xml"},
		{"text/plain", 406, ""},
	}
	for _, tc := range cases {
		t.Run(tc.accept, func(t *testing.T) {
			r := n.do(t, "GET", "/apps/DEMO/n1", "", "Accept", tc.accept)
			wantCode(t, "GET", r, tc.code)
			if tc.ctype != "" && r.hdr.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", r.hdr.Get("Content-Type"), tc.ctype)
			}
		})
	}
	t.Run("gzip", func(t *testing.T) {
		r := n.do(t, "GET", "/apps/DEMO/n1", "", "Accept", jsonCT, "Accept-Encoding", "gzip")
		if r.hdr.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding = %q", r.hdr.Get("Content-Encoding"))
		}
		if d := decode(t, gunzip(t, r.body)); d.str("instance.instanceId") != "n1" {
			t.Errorf("gunzipped body: %v", d)
		}
	})
}

func TestCompactAndV1(t *testing.T) {
	n := newNode(t, nodeConfig{})
	n.register(t, "DEMO", inst("DEMO", "c1", "10.0.0.1", "UP", 1000))
	wantCode(t, "override", n.do(t, "PUT", "/apps/DEMO/c1/status?value=OUT_OF_SERVICE", ""), 200)

	full := n.do(t, "GET", "/apps", "", "Accept", jsonCT)
	compact := n.do(t, "GET", "/apps", "", "Accept", jsonCT, "X-Eureka-Accept", "Compact")
	wantCode(t, "compact", compact, 200)
	if bytes.Equal(full.body, compact.body) || bytes.Contains(compact.body, []byte(`"leaseInfo"`)) {
		t.Errorf("compact document is not the reduced encoding:\n%s", compact.body)
	}
	if ids := instanceIDs(decode(t, compact.body)); len(ids) != 1 {
		t.Errorf("compact instances = %v", ids)
	}

	v2 := n.do(t, "GET", "//eureka/v2/apps", "")
	v1 := n.do(t, "GET", "//eureka/v1/apps", "")
	if !bytes.Contains(v2.body, []byte("<status>OUT_OF_SERVICE</status>")) {
		t.Errorf("V2 XML lost OUT_OF_SERVICE:\n%s", v2.body)
	}
	if !bytes.Contains(v1.body, []byte("<status>DOWN</status>")) || bytes.Contains(v1.body, []byte("<status>OUT_OF_SERVICE</status>")) {
		t.Errorf("V1 XML does not collapse OUT_OF_SERVICE to DOWN:\n%s", v1.body)
	}
	v1j := decode(t, n.do(t, "GET", "//eureka/v1/apps/DEMO/c1", "", "Accept", jsonCT).body)
	if v1j.str("instance.status") != "OUT_OF_SERVICE" {
		t.Errorf("V1 JSON status = %s, want OUT_OF_SERVICE", v1j.str("instance.status"))
	}
}

func TestReadOnlyCache(t *testing.T) {
	n := newNode(t, nodeConfig{opts: func(o *eureka.Options) {
		o.Cache = eureka.CacheConfig{UseReadOnly: true, UpdateInterval: 100 * time.Millisecond}
	}})
	n.register(t, "DEMO", inst("DEMO", "r1", "10.0.0.1", "UP", 1000))
	count := func() int { return len(instanceIDs(decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body))) }
	eventually(t, 5*time.Second, "r1 in the read-only cache", func() bool { return count() == 1 })
	// From here on /apps is served from the read-only level: a change reaches it only at a refresh.
	n.register(t, "DEMO", inst("DEMO", "r2", "10.0.0.2", "UP", 1000))
	eventually(t, 5*time.Second, "the refresh to pick up r2", func() bool { return count() == 2 })
	// The uncached single-instance read sees writes at once.
	wantCode(t, "cancel", n.do(t, "DELETE", "/apps/DEMO/r2", ""), 200)
	wantCode(t, "GET r2", n.do(t, "GET", "/apps/DEMO/r2", ""), 404)
	eventually(t, 5*time.Second, "the refresh to drop r2", func() bool { return count() == 1 })
}

func TestCacheInvalidatesEachVIPElement(t *testing.T) {
	n := newNode(t, nodeConfig{})
	v := inst("DEMO", "v1", "10.0.0.1", "UP", 1000)
	v.VIP, v.SVIP = "a,b", "s1,s2"
	n.register(t, "DEMO", v)
	for _, p := range []string{"/vips/a", "/vips/b", "/svips/s2"} {
		if ids := instanceIDs(decode(t, n.do(t, "GET", p, "", "Accept", jsonCT).body)); len(ids) != 1 {
			t.Fatalf("%s = %v before cancel", p, ids)
		}
	}
	wantCode(t, "cancel", n.do(t, "DELETE", "/apps/DEMO/v1", ""), 200)
	for _, p := range []string{"/vips/a", "/vips/b", "/svips/s2"} {
		if ids := instanceIDs(decode(t, n.do(t, "GET", p, "", "Accept", jsonCT).body)); len(ids) != 0 {
			t.Errorf("%s = %v after cancel: stale cache entry", p, ids)
		}
	}
}

type refusal struct{ code int }

func (r refusal) Error() string   { return "refused by policy" }
func (r refusal) StatusCode() int { return r.code }

func TestAcceptHook(t *testing.T) {
	var calls atomic.Int32
	n := newNode(t, nodeConfig{opts: func(o *eureka.Options) {
		o.Accept = func(ctx context.Context, inst *registry.Instance) error {
			calls.Add(1)
			switch inst.ID() {
			case "deny":
				return errors.New("instance deny is not allowed")
			case "forbid":
				return fmt.Errorf("admission: %w", refusal{403})
			case "boom":
				panic("admission plugin crashed")
			}
			return nil
		}
	}})
	cases := []struct {
		id   string
		hdr  []string
		code int
		body string
	}{
		{"ok", nil, 204, ""},
		{"deny", nil, 400, "instance deny is not allowed"},
		{"forbid", nil, 403, "admission: refused by policy"},
		{"boom", nil, 500, ""},
		// Replicated writes were admitted on the node that accepted them.
		{"deny", []string{eureka.ReplicationHeader, "true"}, 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			hdr := append([]string{"Content-Type", jsonCT}, tc.hdr...)
			r := n.do(t, "POST", "/apps/DEMO", inst("DEMO", tc.id, "10.0.0.1", "UP", 1).json(), hdr...)
			wantCode(t, "register", r, tc.code)
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body = %q, want %q", r.body, tc.body)
			}
		})
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("Accept called %d times, want 4 (never for replicated writes)", got)
	}
	// The panic was contained: the node still serves.
	wantCode(t, "after panic", n.do(t, "GET", "/apps/DEMO/ok", ""), 200)
}

func TestStatusPageAndDashboard(t *testing.T) {
	n := newNode(t, nodeConfig{
		reg: func(c *registry.Config) { c.EnableSelfPreservation = false },
		opts: func(o *eureka.Options) {
			o.Peers = func() []eureka.PeerStatus {
				return []eureka.PeerStatus{{Name: "b", URL: "http://127.0.0.2:8761/eureka/", Up: true}, {Name: "c", URL: "http://127.0.0.3:8761/eureka/", Detail: "connection refused"}}
			}
		},
	})
	n.register(t, "DEMO", inst("DEMO", "s1", "10.0.0.1", "UP", 1000))

	d := decode(t, n.do(t, "GET", "/status", "", "Accept", jsonCT).body)
	checks := map[string]string{
		"registry.instances":                    "1",
		"selfPreservation.enabled":              "false",
		"applicationStats.available-replicas":   "http://127.0.0.2:8761/eureka/",
		"applicationStats.unavailable-replicas": "http://127.0.0.3:8761/eureka/",
		"peers.1.detail":                        "connection refused",
	}
	for p, want := range checks {
		if got := d.str(p); got != want {
			t.Errorf("status %s = %s, want %s", p, got, want)
		}
	}
	x := n.do(t, "GET", "/status", "")
	if !bytes.HasPrefix(x.body, []byte("<statusInfo>")) {
		t.Errorf("XML status: %.80s", x.body)
	}

	r := n.do(t, "GET", "//", "")
	wantCode(t, "dashboard", r, 200)
	if !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/html") {
		t.Errorf("dashboard Content-Type = %q", r.hdr.Get("Content-Type"))
	}
	for _, s := range []string{"DEMO", eureka.SelfPreservationOffBanner, "127.0.0.3", "connection refused"} {
		if !strings.Contains(htmlUnescape(string(r.body)), s) {
			t.Errorf("dashboard lacks %q", s)
		}
	}
	// Instances are listed on their application's own view.
	if r := n.do(t, "GET", "//?app=DEMO", ""); !strings.Contains(string(r.body), "s1") {
		t.Errorf("dashboard's DEMO view lacks s1")
	}
	if bytes.Contains(r.body, []byte("<script")) {
		t.Errorf("dashboard carries script")
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`).Replace(s)
}

func TestBatchEndpoint(t *testing.T) {
	n := newNode(t, nodeConfig{})
	r1 := inst("DEMO", "b1", "10.0.0.1", "UP", 1000)
	ct := []string{"Content-Type", jsonCT}
	cases := []struct {
		name string
		body []byte
		hdr  []string
		code int
		want string
	}{
		{"gzip request", gzipBytes([]byte(`{"replicationList":[{"appName":"DEMO","id":"b1","action":"Register","instanceInfo":` + r1.bare() + `}]}`)),
			[]string{"Content-Encoding", "gzip"}, 200, `{"responseList":[{"statusCode":200}]}`},
		{"per item failures", []byte(`{"replicationList":[` +
			`{"appName":"DEMO","id":"x","action":"Register"},` +
			`{"appName":"DEMO","id":"b1","action":"Explode"},` +
			`{"appName":"DEMO","id":"b1","status":"BOGUS","action":"StatusUpdate"},` +
			`{"appName":"demo","id":"b1","status":"OUT_OF_SERVICE","lastDirtyTimestamp":1000,"action":"StatusUpdate"},` +
			`{"appName":"DEMO","id":"b1","lastDirtyTimestamp":1000,"action":"DeleteStatusOverride"},` +
			`{"appName":"DEMO","id":"b1","action":"Cancel"}]}`), nil, 200,
			`{"responseList":[{"statusCode":500},{"statusCode":400},{"statusCode":500},{"statusCode":200},{"statusCode":200},{"statusCode":200}]}`},
		{"parse error", []byte(`{"replicationList":[`), nil, 400, `{"error": "cannot parse request body"}`},
		{"xml refused", []byte(`<replicationList/>`), []string{"Content-Type", "application/xml"}, 415, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append(append([]string{}, ct...), tc.hdr...)
			r := n.doBytes(t, "POST", "/peerreplication/batch", tc.body, hdr...)
			wantCode(t, "batch", r, tc.code)
			if tc.want != "" && string(r.body) != tc.want {
				t.Errorf("body = %s\nwant   %s", r.body, tc.want)
			}
		})
	}
	t.Run("no receiver", func(t *testing.T) {
		m := newNode(t, nodeConfig{opts: func(o *eureka.Options) { o.Batch = nil }})
		wantCode(t, "batch", m.do(t, "POST", "/peerreplication/batch", `{"replicationList":[]}`, ct...), http.StatusNotImplemented)
	})
}
