package eureka_test

// The single-node black-box tests 1-34 of section 7 of the Eureka behaviour reference, run under
// both API prefixes. Test numbers are in the subtest names.

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
)

var prefixes = []string{"/eureka/v2", "/eureka"}

const jsonCT = "application/json"

func forEachPrefix(t *testing.T, f func(t *testing.T, base string)) {
	for _, base := range prefixes {
		t.Run(strings.TrimPrefix(base, "/"), func(t *testing.T) { f(t, base) })
	}
}

// TestSection7Scenario runs tests 1-20, 27 and 28, which build on each other, on one node.
func TestSection7Scenario(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		n := newNode(t, nodeConfig{base: base})
		ct := []string{"Content-Type", jsonCT}
		aj := []string{"Accept", jsonCT}
		getJSON := func(t *testing.T, path string) doc {
			t.Helper()
			r := n.do(t, "GET", path, "", aj...)
			wantCode(t, "GET "+path, r, 200)
			return decode(t, r.body)
		}

		t.Run("01 register JSON", func(t *testing.T) {
			r := n.do(t, "POST", "/apps/DEMO", inst("DEMO", "a1", "10.0.0.1", "UP", 1000).json(), ct...)
			wantCode(t, "register", r, 204)
			if len(r.body) != 0 {
				t.Fatalf("body = %q, want empty", r.body)
			}
		})
		t.Run("02 read back JSON", func(t *testing.T) {
			d := getJSON(t, "/apps/DEMO/a1")
			want := map[string]string{
				"instance.app":                           "DEMO",
				"instance.status":                        "UP",
				"instance.overriddenStatus":              "UNKNOWN",
				"instance.port":                          `{"$":8080,"@enabled":"true"}`,
				"instance.actionType":                    "ADDED",
				"instance.lastDirtyTimestamp":            "1000",
				"instance.isCoordinatingDiscoveryServer": "false",
				"instance.leaseInfo.durationInSecs":      "90",
			}
			for path, v := range want {
				if got := d.str(path); got != v {
					t.Errorf("%s = %s, want %s", path, got, v)
				}
			}
			if _, ok := d.get("instance.lastDirtyTimestamp").(string); !ok {
				t.Errorf("lastDirtyTimestamp is not a JSON string")
			}
			if ts, _ := d.get("instance.leaseInfo.registrationTimestamp").(float64); ts <= 0 {
				t.Errorf("registrationTimestamp = %v, want > 0", ts)
			}
		})
		t.Run("03 register XML read XML", func(t *testing.T) {
			r := n.do(t, "POST", "/apps/XAPP", xmlInstance("XAPP", "x1", 1000), "Content-Type", "application/xml")
			wantCode(t, "register XML", r, 204)
			r = n.do(t, "GET", "/apps/XAPP/x1", "", "Accept", "application/xml")
			wantCode(t, "get XML", r, 200)
			if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
				t.Errorf("Content-Type = %q", ct)
			}
			for _, s := range []string{"<instance>", "<overriddenstatus>UNKNOWN</overriddenstatus>", `<port enabled="true">8080</port>`} {
				if !bytes.Contains(r.body, []byte(s)) {
					t.Errorf("body lacks %s:\n%s", s, r.body)
				}
			}
			if !bytes.HasPrefix(bytes.TrimSpace(r.body), []byte("<instance>")) {
				t.Errorf("root is not <instance>: %.60s", r.body)
			}
		})
		t.Run("04 case-insensitive app path", func(t *testing.T) {
			r := n.do(t, "POST", "/apps/demo2", inst("demo2", "d2", "10.0.0.2", "UP", 1000).json(), ct...)
			wantCode(t, "register", r, 204)
			for _, p := range []string{"/apps/DEMO2/d2", "/apps/demo2/d2"} {
				if got := getJSON(t, p).str("instance.app"); got != "DEMO2" {
					t.Errorf("GET %s: app = %s", p, got)
				}
			}
		})
		validation := []struct {
			num, name, path string
			inst            instance
			want            string
		}{
			{"05", "hostname", "/apps/DEMO", instance{App: "DEMO", ID: "v1", IP: "10.0.0.1", Status: "UP", TS: 1, Set: map[string]string{"hostName": `""`}}, "Missing hostname"},
			{"06", "app mismatch", "/apps/FOO", inst("BAR", "v2", "10.0.0.1", "UP", 1), "Mismatched appName, expecting FOO but was BAR"},
			{"07", "no data center", "/apps/DEMO", instance{App: "DEMO", ID: "v3", IP: "10.0.0.1", Status: "UP", TS: 1, Omit: []string{"dataCenterInfo"}}, "Missing dataCenterInfo"},
		}
		for _, tc := range validation {
			t.Run(tc.num+" validation "+tc.name, func(t *testing.T) {
				r := n.do(t, "POST", tc.path, tc.inst.json(), ct...)
				wantCode(t, "register", r, 400)
				if string(r.body) != tc.want {
					t.Errorf("body = %q, want %q", r.body, tc.want)
				}
			})
		}
		t.Run("08 unwrapped and wrong type", func(t *testing.T) {
			r := n.do(t, "POST", "/apps/DEMO", inst("DEMO", "u1", "10.0.0.1", "UP", 1).bare(), ct...)
			wantCode(t, "unwrapped", r, 400)
			if string(r.body) != `{"error": "cannot parse request body"}` {
				t.Errorf("body = %q", r.body)
			}
			r = n.do(t, "POST", "/apps/DEMO", inst("DEMO", "u1", "10.0.0.1", "UP", 1).json(), "Content-Type", "text/plain")
			wantCode(t, "text/plain", r, 415)
		})
		t.Run("09 heartbeat unknown", func(t *testing.T) {
			wantCode(t, "heartbeat", n.do(t, "PUT", "/apps/DEMO/nope", ""), 404)
		})
		t.Run("10 heartbeat OK", func(t *testing.T) {
			before := time.Now().UnixMilli()
			r := n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=1000", "")
			wantCode(t, "heartbeat", r, 200)
			if len(r.body) != 0 {
				t.Errorf("body = %q, want empty", r.body)
			}
			last, _ := getJSON(t, "/apps/DEMO/a1").get("instance.leaseInfo.lastRenewalTimestamp").(float64)
			if d := int64(last) - before; d < 89_000 || d > 92_000 {
				t.Errorf("lastRenewalTimestamp - now = %d ms, want about 90000", d)
			}
		})
		t.Run("11 heartbeat newer client timestamp", func(t *testing.T) {
			wantCode(t, "heartbeat", n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=2000", ""), 404)
			if got := getJSON(t, "/apps/DEMO/a1").str("instance.lastDirtyTimestamp"); got != "1000" {
				t.Errorf("stored lastDirtyTimestamp = %s, want 1000", got)
			}
		})
		t.Run("12 heartbeat older client timestamp", func(t *testing.T) {
			wantCode(t, "client heartbeat", n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=500", ""), 200)
			r := n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=500", "", eureka.ReplicationHeader, "true", "Accept", jsonCT)
			wantCode(t, "replicated heartbeat", r, 409)
			if got := decode(t, r.body).str("instance.lastDirtyTimestamp"); got != "1000" {
				t.Errorf("409 body lastDirtyTimestamp = %s, want 1000", got)
			}
			r = n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=500", "", eureka.ReplicationHeader, "true")
			wantCode(t, "replicated heartbeat without Accept", r, 409)
			if !bytes.HasPrefix(r.body, []byte("<instance>")) {
				t.Errorf("409 without Accept is not XML: %.60s", r.body)
			}
			// The marker is compared exactly: anything but "true" is a client call.
			r = n.do(t, "PUT", "/apps/DEMO/a1?status=UP&lastDirtyTimestamp=500", "", eureka.ReplicationHeader, "TRUE")
			wantCode(t, "heartbeat with marker TRUE", r, 200)
		})
		t.Run("13 cancel", func(t *testing.T) {
			n.register(t, "SOLO", inst("SOLO", "s1", "10.0.0.9", "UP", 1000))
			wantCode(t, "cancel", n.do(t, "DELETE", "/apps/SOLO/s1", ""), 200)
			wantCode(t, "cancel again", n.do(t, "DELETE", "/apps/SOLO/s1", ""), 404)
			wantCode(t, "get instance", n.do(t, "GET", "/apps/SOLO/s1", "", aj...), 404)
			wantCode(t, "get app", n.do(t, "GET", "/apps/SOLO", "", aj...), 404)
		})
		t.Run("14 override OUT_OF_SERVICE", func(t *testing.T) {
			n.register(t, "DEMO", inst("DEMO", "a2", "10.0.0.2", "UP", 1000))
			wantCode(t, "override", n.do(t, "PUT", "/apps/DEMO/a2/status?value=OUT_OF_SERVICE", ""), 200)
			d := getJSON(t, "/apps/DEMO/a2")
			if d.str("instance.status") != "OUT_OF_SERVICE" || d.str("instance.overriddenStatus") != "OUT_OF_SERVICE" {
				t.Errorf("status/overriddenStatus = %s/%s", d.str("instance.status"), d.str("instance.overriddenStatus"))
			}
			r := n.do(t, "GET", "//eureka/serverinfo/statusoverrides", "")
			wantCode(t, "statusoverrides", r, 200)
			if !bytes.Contains(r.body, []byte(`"a2":"OUT_OF_SERVICE"`)) {
				t.Errorf("statusoverrides = %s", r.body)
			}
		})
		t.Run("15 override beats client", func(t *testing.T) {
			wantCode(t, "heartbeat", n.do(t, "PUT", "/apps/DEMO/a2?status=UP&lastDirtyTimestamp=1000", ""), 200)
			if s := getJSON(t, "/apps/DEMO/a2").str("instance.status"); s != "OUT_OF_SERVICE" {
				t.Errorf("after heartbeat status = %s", s)
			}
			n.register(t, "DEMO", inst("DEMO", "a2", "10.0.0.2", "UP", 3000))
			if s := getJSON(t, "/apps/DEMO/a2").str("instance.status"); s != "OUT_OF_SERVICE" {
				t.Errorf("after re-register status = %s", s)
			}
		})
		t.Run("16 client DOWN beats override", func(t *testing.T) {
			n.register(t, "DEMO", inst("DEMO", "a2", "10.0.0.2", "DOWN", 4000))
			if s := getJSON(t, "/apps/DEMO/a2").str("instance.status"); s != "DOWN" {
				t.Errorf("status = %s, want DOWN", s)
			}
		})
		t.Run("17 delete override without value", func(t *testing.T) {
			n.register(t, "DEMO", inst("DEMO", "a3", "10.0.0.3", "UP", 1000))
			wantCode(t, "override", n.do(t, "PUT", "/apps/DEMO/a3/status?value=OUT_OF_SERVICE", ""), 200)
			wantCode(t, "delete override", n.do(t, "DELETE", "/apps/DEMO/a3/status", ""), 200)
			d := getJSON(t, "/apps/DEMO/a3")
			if d.str("instance.status") != "UNKNOWN" || d.str("instance.overriddenStatus") != "UNKNOWN" {
				t.Errorf("status/overriddenStatus = %s/%s", d.str("instance.status"), d.str("instance.overriddenStatus"))
			}
			wantCode(t, "heartbeat after delete", n.do(t, "PUT", "/apps/DEMO/a3?lastDirtyTimestamp=1000", ""), 404)
			n.register(t, "DEMO", inst("DEMO", "a3", "10.0.0.3", "UP", 1000))
			if s := getJSON(t, "/apps/DEMO/a3").str("instance.status"); s != "UP" {
				t.Errorf("after re-register status = %s", s)
			}
			wantCode(t, "heartbeat after re-register", n.do(t, "PUT", "/apps/DEMO/a3?lastDirtyTimestamp=1000", ""), 200)
		})
		t.Run("18 delete override with value", func(t *testing.T) {
			n.register(t, "DEMO", inst("DEMO", "a4", "10.0.0.4", "UP", 1000))
			wantCode(t, "override", n.do(t, "PUT", "/apps/DEMO/a4/status?value=OUT_OF_SERVICE", ""), 200)
			wantCode(t, "delete override", n.do(t, "DELETE", "/apps/DEMO/a4/status?value=UP", ""), 200)
			d := getJSON(t, "/apps/DEMO/a4")
			if d.str("instance.status") != "UP" || d.str("instance.overriddenStatus") != "UNKNOWN" {
				t.Errorf("status/overriddenStatus = %s/%s", d.str("instance.status"), d.str("instance.overriddenStatus"))
			}
			wantCode(t, "heartbeat", n.do(t, "PUT", "/apps/DEMO/a4?lastDirtyTimestamp=1000", ""), 200)
		})
		t.Run("19 override on unknown instance and bad value", func(t *testing.T) {
			wantCode(t, "PUT unknown", n.do(t, "PUT", "/apps/DEMO/zz/status?value=UP", ""), 404)
			wantCode(t, "DELETE unknown", n.do(t, "DELETE", "/apps/DEMO/zz/status", ""), 404)
			r := n.do(t, "PUT", "/apps/DEMO/a4/status?value=BOGUS", "")
			wantCode(t, "bad value", r, 500)
			if !bytes.Contains(r.body, []byte("BOGUS")) {
				t.Errorf("500 body %q does not name the value", r.body)
			}
			wantCode(t, "missing value", n.do(t, "PUT", "/apps/DEMO/a4/status", ""), 500)
			if s := getJSON(t, "/apps/DEMO/a4").str("instance.status"); s != "UP" {
				t.Errorf("a refused update changed the status to %s", s)
			}
		})
		t.Run("20 metadata", func(t *testing.T) {
			i := inst("DEMO", "a5", "10.0.0.5", "UP", 1000)
			i.Metadata = map[string]string{"zone": "z1"}
			n.register(t, "DEMO", i)
			wantCode(t, "metadata", n.do(t, "PUT", "/apps/DEMO/a5/metadata?team=blue", ""), 200)
			d := getJSON(t, "/apps/DEMO/a5")
			if d.str("instance.metadata.zone") != "z1" || d.str("instance.metadata.team") != "blue" {
				t.Errorf("metadata = %s", d.str("instance.metadata"))
			}
			wantCode(t, "metadata unknown", n.do(t, "PUT", "/apps/DEMO/none/metadata?x=1", ""), 404)
		})
		t.Run("27 single app", func(t *testing.T) {
			d := getJSON(t, "/apps/DEMO")
			if d.str("application.name") != "DEMO" {
				t.Errorf("application.name = %s", d.str("application.name"))
			}
			if _, ok := d.get("application.instance").([]any); !ok {
				t.Errorf("application.instance is not an array: %s", d.str("application.instance"))
			}
			wantCode(t, "unknown app", n.do(t, "GET", "/apps/UNKNOWNAPP", "", aj...), 404)
		})
		t.Run("28 instance by id", func(t *testing.T) {
			if got := getJSON(t, "/instances/a2").str("instance.instanceId"); got != "a2" {
				t.Errorf("instanceId = %s", got)
			}
			wantCode(t, "unknown id", n.do(t, "GET", "/instances/none", "", aj...), 404)
		})
	})
}

// TestSection7Registry covers tests 21-24: the full registry document, its hash code, XML by
// default and gzip.
func TestSection7Registry(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		t.Run("21 full registry JSON", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base})
			n.register(t, "DEMO", inst("DEMO", "a1", "10.0.0.1", "UP", 1000))
			r := n.do(t, "GET", "/apps", "", "Accept", jsonCT)
			wantCode(t, "GET /apps", r, 200)
			d := decode(t, r.body)
			if d.str("applications.versions__delta") != "1" || d.str("applications.apps__hashcode") != "UP_1_" {
				t.Errorf("versions__delta/apps__hashcode = %s/%s", d.str("applications.versions__delta"), d.str("applications.apps__hashcode"))
			}
			if _, ok := d.get("applications.application.0.instance").([]any); !ok {
				t.Errorf("instance is not an array: %s", r.body)
			}
			if !bytes.HasPrefix(r.body, []byte(`{"applications":{"versions__delta":"1","apps__hashcode":"UP_1_","application":[{"name":"DEMO","instance":[`)) {
				t.Errorf("document shape: %.120s", r.body)
			}
		})
		t.Run("22 hash code over all statuses", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base})
			r := n.do(t, "GET", "/apps", "", "Accept", jsonCT)
			wantCode(t, "GET /apps", r, 200)
			if string(r.body) != `{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}` {
				t.Errorf("empty registry = %s", r.body)
			}
			n.register(t, "H", inst("H", "u1", "10.0.0.1", "UP", 1))
			n.register(t, "H", inst("H", "u2", "10.0.0.2", "UP", 1))
			n.register(t, "H", inst("H", "d1", "10.0.0.3", "DOWN", 1))
			n.register(t, "H", inst("H", "s1", "10.0.0.4", "STARTING", 1))
			n.register(t, "H", inst("H", "o1", "10.0.0.5", "UP", 1))
			wantCode(t, "override", n.do(t, "PUT", "/apps/H/o1/status?value=OUT_OF_SERVICE", ""), 200)
			d := decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body)
			if got := d.str("applications.apps__hashcode"); got != "DOWN_1_OUT_OF_SERVICE_1_STARTING_1_UP_2_" {
				t.Errorf("apps__hashcode = %s", got)
			}
		})
		t.Run("23 XML by default", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base})
			n.register(t, "DEMO", inst("DEMO", "a1", "10.0.0.1", "UP", 1000))
			for _, accept := range []string{"", "*/*", "application/xml"} {
				r := n.do(t, "GET", "/apps", "", "Accept", accept)
				wantCode(t, "GET /apps", r, 200)
				if ct := r.hdr.Get("Content-Type"); ct != "application/xml" {
					t.Errorf("Accept %q: Content-Type = %q", accept, ct)
				}
				for _, s := range []string{"<applications>", "<versions__delta>1</versions__delta>", "<apps__hashcode>UP_1_</apps__hashcode>"} {
					if !bytes.Contains(r.body, []byte(s)) {
						t.Errorf("Accept %q: body lacks %s", accept, s)
					}
				}
			}
			r := n.do(t, "GET", "/apps", "", "Accept", "application/json")
			if ct := r.hdr.Get("Content-Type"); ct != jsonCT || !bytes.HasPrefix(r.body, []byte(`{"applications"`)) {
				t.Errorf("JSON: Content-Type %q, body %.40s", ct, r.body)
			}
		})
		t.Run("24 gzip", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base})
			n.register(t, "DEMO", inst("DEMO", "a1", "10.0.0.1", "UP", 1000))
			plain := n.do(t, "GET", "/apps", "", "Accept", jsonCT)
			for _, path := range []string{"/apps", "/apps/delta"} {
				r := n.do(t, "GET", path, "", "Accept", jsonCT, "Accept-Encoding", "gzip")
				wantCode(t, "GET "+path, r, 200)
				if r.hdr.Get("Content-Encoding") != "gzip" || r.hdr.Get("Content-Type") != jsonCT {
					t.Fatalf("%s: Content-Encoding %q, Content-Type %q", path, r.hdr.Get("Content-Encoding"), r.hdr.Get("Content-Type"))
				}
				body := gunzip(t, r.body)
				if path == "/apps" && !bytes.Equal(body, plain.body) {
					t.Errorf("gunzipped /apps differs from the plain document")
				}
			}
		})
	})
}

// TestSection7Delta covers tests 25 and 26.
func TestSection7Delta(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		t.Run("25 delta", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base})
			n.register(t, "DEMO", inst("DEMO", "d1", "10.0.0.1", "UP", 1000))
			d := decode(t, n.do(t, "GET", "/apps/delta", "", "Accept", jsonCT).body)
			if got := d.str("applications.application.0.instance.0.actionType"); got != "ADDED" {
				t.Errorf("actionType = %s, want ADDED", got)
			}
			full := decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body)
			if d.str("applications.apps__hashcode") != full.str("applications.apps__hashcode") {
				t.Errorf("delta hash %s != full hash %s", d.str("applications.apps__hashcode"), full.str("applications.apps__hashcode"))
			}
			v1, _ := strconv.Atoi(d.str("applications.versions__delta"))
			wantCode(t, "cancel", n.do(t, "DELETE", "/apps/DEMO/d1", ""), 200)
			d = decode(t, n.do(t, "GET", "/apps/delta", "", "Accept", jsonCT).body)
			if got := d.str("applications.application.0.instance.0.actionType"); got != "DELETED" {
				t.Errorf("after cancel actionType = %s, want DELETED", got)
			}
			if ev, _ := d.get("applications.application.0.instance.0.leaseInfo.evictionTimestamp").(float64); ev <= 0 {
				t.Errorf("evictionTimestamp = %v, want > 0", ev)
			}
			v2, _ := strconv.Atoi(d.str("applications.versions__delta"))
			if v2 <= v1 {
				t.Errorf("versions__delta did not grow: %d then %d", v1, v2)
			}
		})
		t.Run("26 delta retention", func(t *testing.T) {
			n := newNode(t, nodeConfig{base: base, reg: func(c *registry.Config) {
				c.DeltaRetention = 1000 * time.Millisecond
				c.DeltaRetentionInterval = 250 * time.Millisecond
			}})
			n.register(t, "DEMO", inst("DEMO", "d1", "10.0.0.1", "UP", 1000))
			d := decode(t, n.do(t, "GET", "/apps/delta", "", "Accept", jsonCT).body)
			if ids := instanceIDs(d); len(ids) != 1 || ids[0] != "DEMO/d1" {
				t.Fatalf("delta = %v, want [DEMO/d1]", ids)
			}
			eventually(t, 5*time.Second, "d1 to leave the delta", func() bool {
				// Retention cleanup alone does not invalidate the cached delta: a change does.
				n.register(t, "OTHER", inst("OTHER", "d9", "10.0.0.9", "UP", 1000))
				ids := instanceIDs(decode(t, n.do(t, "GET", "/apps/delta", "", "Accept", jsonCT).body))
				return fmt.Sprint(ids) == "[OTHER/d9]"
			})
			if ids := instanceIDs(decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body)); len(ids) != 2 {
				t.Errorf("/apps = %v, want both instances", ids)
			}
		})
	})
}

// TestSection7VIPs is test 29.
func TestSection7VIPs(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		n := newNode(t, nodeConfig{base: base})
		v1 := inst("DEMO", "v1", "10.0.0.1", "UP", 1000)
		v1.VIP, v1.SVIP = "alpha,beta", "sec"
		v2 := inst("OTHER", "v2", "10.0.0.2", "UP", 1000)
		v2.VIP = "beta"
		n.register(t, "DEMO", v1)
		n.register(t, "OTHER", v2)
		cases := []struct {
			path  string
			want  string
			delta string
		}{
			{"/vips/beta", "[DEMO/v1 OTHER/v2]", "-1"},
			{"/vips/alpha", "[DEMO/v1]", "-1"},
			{"/vips/Beta", "[]", "-1"},
			{"/svips/sec", "[DEMO/v1]", "-1"},
			{"/vips/nosuch", "[]", "-1"},
		}
		for _, tc := range cases {
			t.Run("29 "+tc.path, func(t *testing.T) {
				r := n.do(t, "GET", tc.path, "", "Accept", jsonCT)
				wantCode(t, "GET "+tc.path, r, 200)
				d := decode(t, r.body)
				ids := instanceIDs(d)
				sort.Strings(ids)
				if got := fmt.Sprint(ids); got != tc.want {
					t.Errorf("instances = %s, want %s", got, tc.want)
				}
				if d.str("applications.versions__delta") != tc.delta {
					t.Errorf("versions__delta = %s", d.str("applications.versions__delta"))
				}
				if _, ok := d.get("applications.application").([]any); !ok {
					t.Errorf("application is not an array: %s", r.body)
				}
			})
		}
	})
}

// TestSection7ReadGate is test 30, with the gate the node computes from its startup sync.
func TestSection7ReadGate(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		var open atomic.Bool
		n := newNode(t, nodeConfig{base: base, opts: func(o *eureka.Options) { o.ReadGate = open.Load }})
		n.register(t, "DEMO", inst("DEMO", "g1", "10.0.0.1", "UP", 1000))
		gated := []string{"/apps", "/apps/delta", "/apps/DEMO", "/vips/x", "/svips/x"}
		for _, p := range gated {
			wantCode(t, "gated "+p, n.do(t, "GET", p, "", "Accept", jsonCT), 403)
		}
		wantCode(t, "instance", n.do(t, "GET", "/apps/DEMO/g1", "", "Accept", jsonCT), 200)
		wantCode(t, "instance by id", n.do(t, "GET", "/instances/g1", "", "Accept", jsonCT), 200)
		wantCode(t, "heartbeat", n.do(t, "PUT", "/apps/DEMO/g1", ""), 200)
		open.Store(true)
		for _, p := range gated {
			if r := n.do(t, "GET", p, "", "Accept", jsonCT); r.code == 403 {
				t.Errorf("GET %s still 403 after the gate opened", p)
			}
		}
	})
}

// TestSection7Eviction is tests 31 and 32, scaled down in time: the rules are the registry's, the
// test shows them through HTTP.
func TestSection7Eviction(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for leases to expire")
	}
	t.Run("31 eviction with self-preservation off", func(t *testing.T) {
		n := newNode(t, nodeConfig{reg: func(c *registry.Config) {
			c.EnableSelfPreservation = false
			c.EvictionInterval = 200 * time.Millisecond
		}})
		e1 := inst("DEMO", "e1", "10.0.0.1", "UP", 1000)
		e1.Duration = 1
		n.register(t, "DEMO", e1)
		eventually(t, 5*time.Second, "e1 to expire", func() bool {
			return n.do(t, "GET", "/apps/DEMO/e1", "", "Accept", jsonCT).code == 404
		})
		eventually(t, 5*time.Second, "e1 to leave /apps", func() bool {
			return len(instanceIDs(decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body))) == 0
		})
	})
	t.Run("32 self-preservation on", func(t *testing.T) {
		n := newNode(t, nodeConfig{reg: func(c *registry.Config) {
			c.EvictionInterval = 200 * time.Millisecond
		}})
		e3 := inst("DEMO", "e3", "10.0.0.1", "UP", 1000)
		e3.Duration = 1
		n.register(t, "DEMO", e3)
		time.Sleep(2500 * time.Millisecond) // the lease must outlive its expiry to show protection
		if ids := instanceIDs(decode(t, n.do(t, "GET", "/apps", "", "Accept", jsonCT).body)); len(ids) != 1 {
			t.Errorf("/apps = %v, want e3 kept", ids)
		}
		wantCode(t, "GET e3", n.do(t, "GET", "/apps/DEMO/e3", "", "Accept", jsonCT), 200)
	})
}

// TestSection7Batch is tests 33 and 34.
func TestSection7Batch(t *testing.T) {
	forEachPrefix(t, func(t *testing.T, base string) {
		n := newNode(t, nodeConfig{base: base})
		ct := []string{"Content-Type", jsonCT, "Accept", jsonCT}
		r1 := inst("DEMO", "r1", "10.0.0.1", "UP", 1000)
		t.Run("33 batch shapes", func(t *testing.T) {
			body := `{"replicationList":[` +
				`{"appName":"DEMO","id":"r1","lastDirtyTimestamp":1000,"status":"UP","instanceInfo":` + r1.bare() + `,"action":"Register"},` +
				`{"appName":"DEMO","id":"ghost","lastDirtyTimestamp":1000,"status":"UP","action":"Heartbeat"},` +
				`{"appName":"DEMO","id":"ghost2","action":"Cancel"}]}`
			r := n.do(t, "POST", "/peerreplication/batch/", body, ct...)
			wantCode(t, "batch", r, 200)
			if string(r.body) != `{"responseList":[{"statusCode":200},{"statusCode":404},{"statusCode":404}]}` {
				t.Errorf("response = %s", r.body)
			}
			wantCode(t, "r1 readable", n.do(t, "GET", "/apps/DEMO/r1", "", "Accept", jsonCT), 200)
		})
		t.Run("34 batch conflict", func(t *testing.T) {
			body := `{"replicationList":[{"appName":"DEMO","id":"r1","lastDirtyTimestamp":500,"status":"UP","action":"Heartbeat"}]}`
			r := n.do(t, "POST", "/peerreplication/batch", body, ct...)
			wantCode(t, "batch", r, 200)
			d := decode(t, r.body)
			if d.str("responseList.0.statusCode") != "409" {
				t.Fatalf("statusCode = %s: %s", d.str("responseList.0.statusCode"), r.body)
			}
			if d.str("responseList.0.responseEntity.lastDirtyTimestamp") != "1000" {
				t.Errorf("entity lastDirtyTimestamp = %s", d.str("responseList.0.responseEntity.lastDirtyTimestamp"))
			}
			if d.get("responseList.0.responseEntity.instance") != nil {
				t.Errorf("entity is wrapped: %s", r.body)
			}
			body = `{"replicationList":[{"appName":"DEMO","id":"r1","lastDirtyTimestamp":2000,"overriddenStatus":"OUT_OF_SERVICE","status":"UP","action":"Heartbeat"}]}`
			r = n.do(t, "POST", "/peerreplication/batch", body, ct...)
			if d := decode(t, r.body); d.str("responseList.0.statusCode") != "404" {
				t.Fatalf("newer heartbeat: %s", r.body)
			}
			got := decode(t, n.do(t, "GET", "/apps/DEMO/r1", "", "Accept", jsonCT).body).str("instance.overriddenStatus")
			if got != "OUT_OF_SERVICE" {
				t.Errorf("overriddenStatus = %s, want OUT_OF_SERVICE", got)
			}
		})
	})
}
