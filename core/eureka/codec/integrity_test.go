package codec

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/registry"
)

// Jackson matches field names exactly: a member that differs from a field only in case is an
// unknown member, ignored. encoding/json alone would let "HOSTNAME" override hostName.
func TestJSONFieldNamesAreCaseSensitive(t *testing.T) {
	const base = `"app":"A","hostName":"h","ipAddr":"10.0.0.1"`
	cases := []struct {
		name, body string
		check      func(*registry.Instance) bool
	}{
		{"HOSTNAME after hostName", `{"instance":{` + base + `,"HOSTNAME":"evil"}}`, func(i *registry.Instance) bool { return i.HostName == "h" }},
		{"HOSTNAME alone", `{"instance":{"app":"A","HOSTNAME":"evil"}}`, func(i *registry.Instance) bool { return i.HostName == "" }},
		{"folded with the long s", `{"instance":{` + base + `,"hoſtName":"evil"}}`, func(i *registry.Instance) bool { return i.HostName == "h" }},
		{"Metadata", `{"instance":{` + base + `,"Metadata":{"k":"v"}}}`, func(i *registry.Instance) bool { return len(i.Metadata) == 0 }},
		{"lease", `{"instance":{` + base + `,"leaseInfo":{"durationInSecs":40,"DURATIONINSECS":9}}}`, func(i *registry.Instance) bool { return i.LeaseInfo.DurationSecs == 40 }},
		{"port", `{"instance":{` + base + `,"port":{"$":80,"@enabled":"true","@ENABLED":"false"}}}`, func(i *registry.Instance) bool { return i.Port.Enabled && i.Port.Number == 80 }},
		{"dataCenterInfo", `{"instance":{` + base + `,"dataCenterInfo":{"name":"MyOwn","NAME":"Amazon"}}}`, func(i *registry.Instance) bool { return i.DataCenterInfo.Name == "MyOwn" }},
		{"VipAddress", `{"instance":{` + base + `,"vipAddress":"v","VipAddress":"evil"}}`, func(i *registry.Instance) bool { return i.VIPAddress == "v" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, err := DecodeInstance([]byte(c.body), JSON)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(i) {
				t.Fatalf("decoded %+v", i)
			}
			bare := strings.TrimSuffix(strings.TrimPrefix(c.body, `{"instance":`), "}")
			j, err := DecodeInstanceBare([]byte(bare))
			if err != nil || !c.check(j) {
				t.Fatalf("bare: %v %+v", err, j)
			}
		})
	}
	// The wrapper too: {"INSTANCE":...} has no "instance".
	if _, err := DecodeInstance([]byte(`{"INSTANCE":{"app":"A"}}`), JSON); !errors.Is(err, ErrParse) {
		t.Fatalf("upper-case wrapper: %v, want ErrParse", err)
	}
	apps, err := DecodeApplications([]byte(`{"applications":{"application":[{"name":"A","INSTANCE":[{"app":"A"}],"instance":[{"app":"A","hostName":"h","HostName":"x"}]}]}}`), JSON)
	if err != nil || len(apps.Applications) != 1 || len(apps.Applications[0].Instances) != 1 || apps.Applications[0].Instances[0].HostName != "h" {
		t.Fatalf("applications: %v %+v", err, apps)
	}
}

// Whatever the registry holds, the XML writer never emits an element name a parser refuses.
func TestXMLDropsKeysThatAreNotNames(t *testing.T) {
	i := &registry.Instance{App: "A", HostName: "h", InstanceID: "i", Metadata: map[string]string{
		"a×b": "1", "a:b:c": "2", "a\u200bb": "3", "a\xffb": "4", "ok": "5", "a_$b": "6"}}
	i.DataCenterInfo = registry.DataCenterInfo{Name: "Amazon", Metadata: map[string]string{"x:y": "1", "instance-id": "i"}}
	out := AppendInstance(nil, XML, i, Options{})
	d := xml.NewDecoder(strings.NewReader(string(out)))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("XML does not parse: %v\n%s", err, out)
		}
	}
	back, err := DecodeInstance(out, XML)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Metadata) != 2 || back.Metadata["ok"] != "5" || back.Metadata["a_$b"] != "6" {
		t.Fatalf("metadata back %v", back.Metadata)
	}
}
