package eureka_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

const jsonCT2 = "application/json"

// poisonKeys are metadata keys that Eureka accepts and then writes as XML element names that no
// parser reads: after one of them, /apps, /apps/delta and /vips were unreadable on every node.
var poisonKeys = []string{"a×b", "a:b:c", "a\u200bb", "a\x01b", "1st", "a b", "", "a\uffffb"}

// parseXMLFully reads every token of an XML document with encoding/xml's strict parser, then
// decodes it as Eureka's applications document.
func parseXMLFully(t *testing.T, what string, body []byte) *registry.Applications {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v\n%s", what, err, body)
		}
	}
	apps, err := codec.DecodeApplications(body, codec.XML)
	if err != nil {
		t.Fatalf("%s does not decode: %v", what, err)
	}
	return apps
}

// readsParse checks that the documents every client polls still parse as XML.
func readsParse(t *testing.T, n *testNode, vip string) {
	t.Helper()
	for _, p := range []string{"/apps", "/apps/delta", "/vips/" + vip, "/svips/" + vip} {
		r := n.do(t, "GET", p, "", "Accept", "application/xml")
		wantCode(t, "GET "+p, r, http.StatusOK)
		parseXMLFully(t, "GET "+p, r.body)
	}
}

func wantRefusal(t *testing.T, what string, r response, msg string) {
	t.Helper()
	wantCode(t, what, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), msg) {
		t.Fatalf("%s: message %q lacks %q", what, r.body, msg)
	}
}

func TestRegisterRefusesPoisonMetadataKeys(t *testing.T) {
	n := newNode(t, nodeConfig{})
	n.register(t, "DEMO", inst("DEMO", "good", "10.0.0.1", "UP", 1))
	for i, k := range poisonKeys {
		for _, where := range []string{"metadata", "dataCenterInfo"} {
			t.Run(fmt.Sprintf("%s %q", where, k), func(t *testing.T) {
				in := inst("DEMO", fmt.Sprintf("p%d", i), "10.0.0.2", "UP", 1)
				field := "metadata"
				if where == "metadata" {
					in.Metadata = map[string]string{k: "v"}
				} else {
					field = "dataCenterInfo.metadata"
					in.Set = map[string]string{"dataCenterInfo": `{"@class":"com.netflix.appinfo.AmazonInfo","name":"Amazon","metadata":{` + q(k) + `:"v"}}`}
				}
				r := n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2)
				wantRefusal(t, "register", r, fmt.Sprintf("%s key %q", field, k))
			})
		}
	}
	t.Run("key not UTF-8", func(t *testing.T) {
		body := strings.Replace(inst("DEMO", "u1", "10.0.0.3", "UP", 1).json(), `"metadata":{`, `"metadata":{"a`+"\xff"+`":"v",`, 1)
		wantRefusal(t, "register", n.do(t, "POST", "/apps/DEMO", body, "Content-Type", jsonCT2), "not valid UTF-8")
	})
	t.Run("value with a control character", func(t *testing.T) {
		in := inst("DEMO", "c1", "10.0.0.3", "UP", 1)
		in.Metadata = map[string]string{"zone": "z\x00"}
		wantRefusal(t, "register", n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2), `metadata key "zone" has a value that contains U+0000`)
	})
	t.Run("other fields", func(t *testing.T) {
		in := inst("DEMO", "c2", "10.0.0.3", "UP", 1)
		in.Set = map[string]string{"homePageUrl": q("http://h/\x1b[31m")}
		wantRefusal(t, "register", n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2), "homePageUrl contains U+001B")
	})
	if got := n.reg.Stats().Instances; got != 1 {
		t.Fatalf("%d instances registered, want only the good one", got)
	}
	readsParse(t, n, "demo")
}

func TestMetadataUpdateRefusesPoisonKeys(t *testing.T) {
	n := newNode(t, nodeConfig{opts: func(o *eureka.Options) { o.MaxBodyBytes = 8192 }})
	n.register(t, "DEMO", inst("DEMO", "m1", "10.0.0.1", "UP", 1))
	for _, k := range append(poisonKeys, "a\xffb") {
		r := n.do(t, "PUT", "/apps/DEMO/m1/metadata?"+url.QueryEscape(k)+"=v", "")
		wantRefusal(t, fmt.Sprintf("PUT metadata %q", k), r, fmt.Sprintf("metadata key %q", k))
	}
	wantRefusal(t, "PUT metadata value", n.do(t, "PUT", "/apps/DEMO/m1/metadata?zone=%01", ""), `metadata key "zone" has a value that contains U+0001`)
	wantCode(t, "PUT metadata", n.do(t, "PUT", "/apps/DEMO/m1/metadata?zone=z1&management.port=8081", ""), http.StatusOK)
	// PUT adds keys: the instance stays within what a registration may be (the body limit).
	big := strings.Repeat("x", 4<<10)
	wantCode(t, "PUT big", n.do(t, "PUT", "/apps/DEMO/m1/metadata?big1="+big, ""), http.StatusOK)
	wantRefusal(t, "PUT bigger", n.do(t, "PUT", "/apps/DEMO/m1/metadata?big2="+big, ""), "more than the 8192 a request body may have")
	got, _ := n.reg.Instance("DEMO", "m1")
	if got.Metadata["zone"] != "z1" || got.Metadata["big1"] == "" || got.Metadata["big2"] != "" || len(got.Metadata) != 3 {
		t.Fatalf("metadata %d keys, zone %q", len(got.Metadata), got.Metadata["zone"])
	}
	wantCode(t, "PUT on an unknown instance", n.do(t, "PUT", "/apps/DEMO/nobody/metadata?zone=z1", ""), http.StatusNotFound)
	readsParse(t, n, "demo")
}

// Jackson matches field names case-sensitively: "HOSTNAME" is an unknown field, not hostName.
func TestRegisterJSONFieldNamesAreCaseSensitive(t *testing.T) {
	n := newNode(t, nodeConfig{})
	in := inst("DEMO", "c1", "10.0.0.1", "UP", 1)
	in.Set = map[string]string{"HOSTNAME": q("evil"), "VipAddress": q("evil"), "leaseInfo": `{"durationInSecs":45,"DurationInSecs":1}`}
	n.register(t, "DEMO", in)
	got, _ := n.reg.Instance("DEMO", "c1")
	if got.HostName != "host-c1" || got.VIPAddress != "demo" || got.LeaseInfo.DurationSecs != 45 {
		t.Fatalf("stored hostName %q, vipAddress %q, duration %d", got.HostName, got.VIPAddress, got.LeaseInfo.DurationSecs)
	}
	only := inst("DEMO", "c2", "10.0.0.1", "UP", 1)
	only.Omit = []string{"hostName"}
	only.Set = map[string]string{"HostName": q("h")}
	wantRefusal(t, "register with HostName only", n.do(t, "POST", "/apps/DEMO", only.json(), "Content-Type", jsonCT2), "Missing hostname")
}

func TestRegisterRefusesLeaseOverflow(t *testing.T) {
	n := newNode(t, nodeConfig{})
	for _, c := range []struct{ lease, msg string }{
		{`{"renewalIntervalInSecs":30,"durationInSecs":1000000000000}`, "leaseInfo.durationInSecs 1000000000000 is out of range"},
		{`{"renewalIntervalInSecs":"9223372036854775807","durationInSecs":90}`, "leaseInfo.renewalIntervalInSecs 9223372036854775807 is out of range"},
	} {
		in := inst("DEMO", "l1", "10.0.0.1", "UP", 1)
		in.Set = map[string]string{"leaseInfo": c.lease}
		wantRefusal(t, "register "+c.lease, n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2), c.msg)
	}
	in := inst("DEMO", "l2", "10.0.0.1", "UP", 1)
	in.Set = map[string]string{"leaseInfo": `{"renewalIntervalInSecs":2147483647,"durationInSecs":2147483647}`}
	n.register(t, "DEMO", in)
	if n.reg.Stats().Instances != 1 {
		t.Fatal("the registration at the limit was not stored")
	}
}

func TestRegisterBoundsVIPLists(t *testing.T) {
	n := newNode(t, nodeConfig{})
	for _, c := range []struct{ field, vip, msg string }{
		{"vipAddress", strings.Repeat(",", 250000), "vipAddress is 250000 bytes long"},
		{"vipAddress", strings.Repeat("v,", registry.MaxVIPEntries) + "v", fmt.Sprintf("vipAddress lists %d addresses", registry.MaxVIPEntries+1)},
		{"secureVipAddress", strings.Repeat("s", registry.MaxVIPBytes+1), "secureVipAddress is 1025 bytes long"},
	} {
		in := inst("DEMO", "v1", "10.0.0.1", "UP", 1)
		in.Set = map[string]string{c.field: q(c.vip)}
		wantRefusal(t, "register "+c.field, n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2), c.msg)
	}
	in := inst("DEMO", "v2", "10.0.0.1", "UP", 1)
	in.VIP = strings.Repeat("v,", registry.MaxVIPEntries-1) + "demo"
	n.register(t, "DEMO", in)
	r := n.do(t, "GET", "/vips/demo", "", "Accept", "application/json")
	if ids := instanceIDs(decode(t, r.body)); len(ids) != 1 {
		t.Fatalf("/vips/demo lists %v", ids)
	}
}

// An instance the API could not serve back (HTTP path cleaning redirects "." and "..", '/' splits
// the path) is refused at registration.
func TestRegisterRefusesUnroutableNames(t *testing.T) {
	n := newNode(t, nodeConfig{})
	for _, id := range []string{"..", ".", "a/b", "/"} {
		in := inst("DEMO", id, "10.0.0.1", "UP", 1)
		wantRefusal(t, fmt.Sprintf("register id %q", id), n.do(t, "POST", "/apps/DEMO", in.json(), "Content-Type", jsonCT2), fmt.Sprintf("instanceId %q", id))
	}
	in := inst("..", "x1", "10.0.0.1", "UP", 1)
	wantRefusal(t, "register app ..", n.do(t, "POST", "/apps/%2E%2E", in.json(), "Content-Type", jsonCT2), `app ".."`)
	if n.reg.Stats().Instances != 0 {
		t.Fatal("an unroutable instance was stored")
	}
}

// A poison registration inside a peer's batch is refused for its item alone.
func TestBatchRefusesPoisonPerItem(t *testing.T) {
	n := newNode(t, nodeConfig{opts: func(o *eureka.Options) { o.IsPeer = func(*http.Request) bool { return true } }})
	good1, good2 := inst("DEMO", "g1", "10.0.0.1", "UP", 1), inst("DEMO", "g2", "10.0.0.2", "UP", 1)
	bad := inst("DEMO", "bad", "10.0.0.3", "UP", 1)
	bad.Metadata = map[string]string{"a:b:c": "v"}
	body := `{"replicationList":[` +
		`{"appName":"DEMO","id":"g1","action":"Register","instanceInfo":` + good1.bare() + `},` +
		`{"appName":"DEMO","id":"bad","action":"Register","instanceInfo":` + bad.bare() + `},` +
		`{"APPNAME":"DEMO","appName":"DEMO","id":"g2","ACTION":"Cancel","action":"Register","instanceInfo":` + good2.bare() + `}]}`
	r := n.do(t, "POST", "/peerreplication/batch", body, "Content-Type", jsonCT2)
	wantCode(t, "batch", r, http.StatusOK)
	if want := `{"responseList":[{"statusCode":200},{"statusCode":400},{"statusCode":200}]}`; string(r.body) != want {
		t.Fatalf("batch answer %s, want %s", r.body, want)
	}
	if _, ok := n.reg.Instance("DEMO", "bad"); ok || n.reg.Stats().Instances != 2 {
		t.Fatalf("registry holds %d instances (bad stored: %v), want the 2 good ones", n.reg.Stats().Instances, ok)
	}
	readsParse(t, n, "demo")
}
