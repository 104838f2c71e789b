package codec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/registry"
)

// The literal example of the reference's 1.7.1 (GET /apps/{app}/{id}).
const golden171 = `{"instance":{"instanceId":"host-a:demo:8080","hostName":"host-a","app":"DEMO","ipAddr":"10.0.0.11","status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":8443,"@enabled":"false"},"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":1700000001000,"lastRenewalTimestamp":1700000121000,"evictionTimestamp":0,"serviceUpTimestamp":1700000001000},"metadata":{"zone":"z1"},"homePageUrl":"http://host-a:8080/","statusPageUrl":"http://host-a:8080/actuator/info","healthCheckUrl":"http://host-a:8080/actuator/health","vipAddress":"demo","secureVipAddress":"demo","isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"1700000001000","lastDirtyTimestamp":"1700000000000","actionType":"ADDED"}}`

func TestGoldenInstanceJSON(t *testing.T) {
	inst, err := DecodeInstance([]byte(golden171), JSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(AppendInstance(nil, JSON, inst, Options{})); got != golden171 {
		t.Fatalf("re-encoding differs:\n got %s\nwant %s", got, golden171)
	}
	var a, b any
	_ = json.Unmarshal([]byte(golden171), &a)
	if err := json.Unmarshal(AppendInstance(nil, JSON, inst, Options{}), &b); err != nil || !reflect.DeepEqual(a, b) {
		t.Fatal("output is not the same JSON document")
	}
}

func TestApplicationsJSONAndXML(t *testing.T) {
	inst, _ := DecodeInstance([]byte(golden171), JSON)
	apps := &registry.Applications{VersionsDelta: "1", AppsHashCode: "UP_1_",
		Applications: []*registry.Application{{Name: "DEMO", Instances: []*registry.Instance{inst}}}}
	j := string(AppendApplications(nil, JSON, apps, Options{}))
	if !strings.HasPrefix(j, `{"applications":{"versions__delta":"1","apps__hashcode":"UP_1_","application":[{"name":"DEMO","instance":[{`) {
		t.Fatalf("json %s", j)
	}
	empty := string(AppendApplications(nil, JSON, &registry.Applications{VersionsDelta: "1"}, Options{}))
	if empty != `{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}` {
		t.Fatalf("empty %s", empty)
	}
	x := string(AppendApplications(nil, XML, apps, Options{}))
	for _, want := range []string{"<applications><versions__delta>1</versions__delta><apps__hashcode>UP_1_</apps__hashcode><application><name>DEMO</name><instance>",
		"<overriddenstatus>UNKNOWN</overriddenstatus>", `<port enabled="true">8080</port>`, `<securePort enabled="false">8443</securePort>`,
		`<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>`,
		"<metadata><zone>z1</zone></metadata>", "<lastDirtyTimestamp>1700000000000</lastDirtyTimestamp>"} {
		if !strings.Contains(x, want) {
			t.Errorf("xml lacks %s", want)
		}
	}
	for _, f := range []Format{JSON, XML} {
		back, err := DecodeApplications(AppendApplications(nil, f, apps, Options{}), f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Applications[0].Instances[0], inst) || back.AppsHashCode != "UP_1_" {
			t.Fatalf("format %d round trip:\n%+v\n%+v", f, back.Applications[0].Instances[0], inst)
		}
	}
}

func TestLeniency(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(*registry.Instance) bool
	}{
		{"bare port number", `{"instance":{"app":"a","hostName":"h","port":8080}}`, func(i *registry.Instance) bool { return i.Port == registry.Port{Number: 8080, Enabled: true} }},
		{"string port, boolean enabled", `{"instance":{"app":"a","port":{"$":"8080","@enabled":false}}}`, func(i *registry.Instance) bool { return i.Port == registry.Port{Number: 8080} }},
		{"eureka-js-client boolean", `{"instance":{"app":"a","port":{"$":8080,"@enabled":true}}}`, func(i *registry.Instance) bool { return i.Port.Enabled }},
		{"number timestamps", `{"instance":{"app":"a","lastDirtyTimestamp":1700,"lastUpdatedTimestamp":"5"}}`, func(i *registry.Instance) bool { return i.LastDirtyTimestamp == 1700 && i.LastUpdatedTimestamp == 5 }},
		{"defaults", `{"instance":{"app":"demo"}}`, func(i *registry.Instance) bool {
			return i.App == "DEMO" && i.Status == registry.StatusUp && i.OverriddenStatus == registry.StatusUnknown &&
				i.Port == registry.Port{Number: 7001, Enabled: true} && i.SecurePort == registry.Port{Number: 7002} && i.CountryID == 1 && !i.HasDataCenterInfo
		}},
		{"unknown status", `{"instance":{"app":"a","status":"HAPPY"}}`, func(i *registry.Instance) bool { return i.Status == registry.StatusUnknown }},
		{"no @class, name after metadata", `{"instance":{"app":"a","dataCenterInfo":{"metadata":{"instance-id":"i-1"},"name":"Amazon"}}}`, func(i *registry.Instance) bool {
			return i.DataCenterInfo.Name == "Amazon" && i.ID() == "i-1"
		}},
		{"metadata @class dropped, numbers kept as text", `{"instance":{"app":"a","metadata":{"@class":"java.util.Collections$EmptyMap","n":5}}}`, func(i *registry.Instance) bool {
			return len(i.Metadata) == 1 && i.Metadata["n"] == "5"
		}},
		{"lower-case overriddenstatus", `{"instance":{"app":"a","overriddenstatus":"DOWN"}}`, func(i *registry.Instance) bool { return i.OverriddenStatus == registry.StatusDown }},
		{"lease defaults and legacy renewalTimestamp", `{"instance":{"app":"a","leaseInfo":{"renewalIntervalInSecs":0,"renewalTimestamp":7}}}`, func(i *registry.Instance) bool {
			return i.LeaseInfo.RenewalIntervalSecs == 30 && i.LeaseInfo.DurationSecs == 90 && i.LeaseInfo.LastRenewalTimestamp == 7
		}},
		{"spring instanceId from metadata", `{"instance":{"app":"a","hostName":"h1","metadata":{"instanceId":"a:8080"}}}`, func(i *registry.Instance) bool { return i.InstanceID == "h1:a:8080" }},
		{"empty app is not a parse error", `{"instance":{"app":""}}`, func(i *registry.Instance) bool { return i.App == "" }},
		{"xml", `<instance><app>x</app><hostName>h</hostName><port>80</port><securePort>443</securePort><overriddenStatus>DOWN</overriddenStatus><metadata class="java.util.Collections$EmptyMap"><a__b_-c>v</a__b_-c></metadata><dataCenterInfo><name>MyOwn</name></dataCenterInfo></instance>`, func(i *registry.Instance) bool {
			return i.App == "X" && i.Port == registry.Port{Number: 80, Enabled: true} && i.SecurePort == registry.Port{Number: 443} &&
				i.OverriddenStatus == registry.StatusDown && i.Metadata["a_b$c"] == "v" && i.HasDataCenterInfo
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := JSON
			if strings.HasPrefix(c.body, "<") {
				f = XML
			}
			i, err := DecodeInstance([]byte(c.body), f)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(i) {
				t.Fatalf("decoded %+v", i)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		body string
		f    Format
	}{
		{`{"app":"a"}`, JSON},                                  // no wrapper
		{`{"instance":{"hostName":"h"}}`, JSON},                // no app key
		{`{"instance":{"app":"a","port":{"$":"x"}}}`, JSON},    // port not a number
		{`{"instance":{"app":"a","port":99999}}`, JSON},        // port out of range
		{`{"instance":{"app":"a","metadata":{"k":{}}}}`, JSON}, // metadata value not a scalar
		{`{"instance":`, JSON},                                 // truncated
		{`<instance><hostName>h</hostName></instance>`, XML},   // no app
		{`<application><app>a</app></application>`, XML},       // wrong root
		{`<instance><app>a</app><port>eighty</port></instance>`, XML},
		{`<instance><app>a</app>`, XML},
	} {
		_, err := DecodeInstance([]byte(c.body), c.f)
		if !errors.Is(err, ErrParse) {
			t.Errorf("%s: error %v, want ErrParse", c.body, err)
		}
	}
}

func TestCompactOmitsFields(t *testing.T) {
	inst, _ := DecodeInstance([]byte(golden171), JSON)
	c := string(AppendInstance(nil, JSON, inst, Options{Compact: true}))
	for _, gone := range []string{"overriddenStatus", "countryId", "leaseInfo", "metadata", "homePageUrl", "lastDirtyTimestamp", "isCoordinatingDiscoveryServer"} {
		if strings.Contains(c, `"`+gone+`"`) {
			t.Errorf("compact output has %s", gone)
		}
	}
	if !strings.Contains(c, `"port":{"$":8080,"@enabled":"true"}`) {
		t.Error("compact keeps the port shape")
	}
}

func TestStringEscaping(t *testing.T) {
	for _, s := range []string{"plain", `q"uote\`, "new\nline\t", "<tag>&", "\u2028", "ünïcødé", string([]byte{0xff, 'a'}), "\x01"} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
}

func seeds() []string {
	return []string{
		golden171,
		// Spring Cloud Netflix (Jackson, legacy codec)
		`{"instance":{"instanceId":"host:orders:8080","hostName":"host","app":"ORDERS","ipAddr":"10.0.0.5","status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":0,"lastRenewalTimestamp":0,"evictionTimestamp":0,"serviceUpTimestamp":0},"metadata":{"management.port":"8080"},"homePageUrl":"http://host:8080/","statusPageUrl":"http://host:8080/actuator/info","healthCheckUrl":"http://host:8080/actuator/health","vipAddress":"orders","secureVipAddress":"orders","isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"1700000000000","lastDirtyTimestamp":"1700000000000"}}`,
		// eureka-js-client
		`{"instance":{"app":"jqservice","hostName":"localhost","ipAddr":"127.0.0.1","port":{"$":8080,"@enabled":true},"vipAddress":"jq.test.something.com","dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}}}`,
		// fargo (JSON mode)
		`{"instance":{"hostName":"i-1","app":"TESTAPP","ipAddr":"10.0.0.1","vipAddress":"testapp","status":"UP","port":{"$":"9090","@enabled":"true"},"securePort":{"$":"0","@enabled":"false"},"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn","metadata":{}},"leaseInfo":{"evictionDurationInSecs":90},"metadata":{"@class":"java.util.Collections$EmptyMap"}}}`,
	}
}

func FuzzDecodeInstanceJSON(f *testing.F) {
	for _, s := range seeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, JSON) })
}

func FuzzDecodeInstanceXML(f *testing.F) {
	f.Add([]byte(`<instance><instanceId>x1</instanceId><hostName>h</hostName><app>XAPP</app><ipAddr>1.2.3.4</ipAddr><status>UP</status><port enabled="true">8080</port><dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo><leaseInfo><durationInSecs>90</durationInSecs></leaseInfo><metadata><zone>z1</zone></metadata><lastDirtyTimestamp>1</lastDirtyTimestamp></instance>`))
	for _, s := range seeds() {
		i, _ := DecodeInstance([]byte(s), JSON)
		f.Add(AppendInstance(nil, XML, i, Options{}))
	}
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, XML) })
}

// roundTrip: whatever decodes must re-encode, and decode again to the same instance.
func roundTrip(t *testing.T, data []byte, f Format) {
	i, err := DecodeInstance(data, f)
	if err != nil {
		if !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		return
	}
	out := AppendInstance(nil, f, i, Options{})
	j, err := DecodeInstance(out, f)
	if err != nil {
		t.Fatalf("re-encoded document does not decode: %v\n%s", err, out)
	}
	again := AppendInstance(nil, f, j, Options{})
	if string(again) != string(out) {
		t.Fatalf("not stable:\n%s\n%s", out, again)
	}
}

func FuzzDecodeApplications(f *testing.F) {
	f.Add([]byte(`{"applications":{"versions__delta":"1","apps__hashcode":"UP_1_","application":[{"name":"DEMO","instance":[` + strings.TrimSuffix(strings.TrimPrefix(golden171, `{"instance":`), "}") + `]}]}}`))
	f.Add([]byte(`{"applications":{"application":{"name":"A","instance":{"app":"A"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fm := range []Format{JSON, XML} {
			apps, err := DecodeApplications(data, fm)
			if err != nil {
				if !errors.Is(err, ErrParse) {
					t.Fatalf("error does not wrap ErrParse: %v", err)
				}
				continue
			}
			if _, err := DecodeApplications(AppendApplications(nil, fm, apps, Options{}), fm); err != nil {
				t.Fatalf("re-encoded applications do not decode: %v", err)
			}
		}
	})
}

func BenchmarkDecodeInstanceJSON(b *testing.B) {
	body := []byte(seeds()[1])
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeInstance(body, JSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIntoMap(b *testing.B) {
	body := []byte(seeds()[1])
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendApplications10k(b *testing.B) {
	inst, _ := DecodeInstance([]byte(golden171), JSON)
	app := &registry.Application{Name: "DEMO"}
	for i := 0; i < 10000; i++ {
		app.Instances = append(app.Instances, inst)
	}
	apps := &registry.Applications{VersionsDelta: "1", Applications: []*registry.Application{app}}
	buf := make([]byte, 0, 16<<20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendApplications(buf[:0], JSON, apps, Options{})
	}
	b.SetBytes(int64(len(buf)))
}
