package eureka_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// FuzzAcceptedRegistrationSerialises: whatever registration the API accepts (204) must come back
// out of every read a client polls — /apps and /apps/delta in JSON and XML, /vips and /svips in
// XML — as XML that encoding/xml parses to the end, with the instance's metadata intact, and as
// JSON that decodes and re-encodes to the same bytes. One accepted registration that breaks this
// breaks those reads for every client of every node.
//
//	go test ./core/eureka -run '^$' -fuzz FuzzAcceptedRegistrationSerialises -fuzztime 60s
func FuzzAcceptedRegistrationSerialises(f *testing.F) {
	withMD := func(id string, md map[string]string) string {
		i := inst("FUZZ", id, "10.0.0.1", "UP", 1)
		i.Metadata = md
		return i.json()
	}
	withSet := func(id string, set map[string]string) string {
		i := inst("FUZZ", id, "10.0.0.1", "UP", 1)
		i.Set = set
		return i.json()
	}
	seeds := []struct{ ct, body string }{
		{jsonCT2, inst("FUZZ", "f1", "10.0.0.1", "UP", 1).json()},
		{"application/xml", xmlInstance("FUZZ", "x1", 1)},
		{jsonCT2, withMD("ok", map[string]string{"zone": "z1", "a_b$c": "v", "größe": "<&>\"'\r\n\t", "名前": "値"})},
		{jsonCT2, withSet("amz", map[string]string{"dataCenterInfo": `{"@class":"com.netflix.appinfo.AmazonInfo","name":"Amazon","metadata":{"instance-id":"i-1","availability-zone":"a"}}`})},
		{jsonCT2, withSet("case", map[string]string{"HOSTNAME": q("evil"), "Metadata": `{"a:b":"v"}`})},
		{jsonCT2, withSet("lease", map[string]string{"leaseInfo": `{"renewalIntervalInSecs":2147483647,"durationInSecs":10000000000}`})},
		{jsonCT2, withSet("vips", map[string]string{"vipAddress": q("a,,b,a"), "secureVipAddress": q(strings.Repeat("s,", 70))})},
		{jsonCT2, withSet("..", nil)},
		{"application/json; charset=iso-8859-1", withMD("latin", map[string]string{"k": "caf\xe9"})},
	}
	for _, k := range append(poisonKeys, "a\xffb", "x:y", "\u00d7") {
		seeds = append(seeds, struct{ ct, body string }{jsonCT2, withMD("p", map[string]string{k: "v"})})
		seeds = append(seeds, struct{ ct, body string }{"application/xml",
			strings.Replace(xmlInstance("FUZZ", "px", 1), "<zone>z1</zone>", "<"+k+">v</"+k+">", 1)})
	}
	for _, s := range seeds {
		f.Add("FUZZ", s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, app, ct string, body []byte) {
		// A registry of its own for each input: reads then show exactly this instance.
		reg := registry.New(registry.DefaultConfig())
		h := eureka.NewHandler(eureka.Options{Registry: reg})
		serve := func(method, path, accept string, body []byte) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, path, bytes.NewReader(body))
			if method == http.MethodPost {
				req.Header.Set("Content-Type", ct)
			}
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		if rec := serve(http.MethodPost, "/eureka/v2/apps/"+url.PathEscape(app), "", body); rec.Code != http.StatusNoContent {
			if rec.Code >= 500 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
			return
		}
		apps := reg.Applications()
		if len(apps.Applications) != 1 || len(apps.Applications[0].Instances) != 1 {
			t.Fatalf("accepted registration stored as %+v", apps)
		}
		stored := apps.Applications[0].Instances[0]
		paths := []string{"/eureka/v2/apps", "/eureka/v2/apps/delta"}
		for _, list := range []struct{ kind, vips string }{{"vips", stored.VIPAddress}, {"svips", stored.SecureVIPAddress}} {
			if v, _, _ := strings.Cut(list.vips, ","); v != "" {
				paths = append(paths, "/eureka/v2/"+list.kind+"/"+url.PathEscape(v))
			}
		}
		for _, p := range paths {
			rec := serve(http.MethodGet, p, "application/xml", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body.Bytes())
			}
			checkXML(t, p, rec.Body.Bytes(), stored)
			if strings.Contains(p, "vips/") {
				continue
			}
			rec = serve(http.MethodGet, p, "application/json", nil)
			checkJSON(t, p, rec.Body.Bytes(), stored)
		}
	})
}

// checkXML parses doc to the end and requires the one instance's metadata to come back whole.
func checkXML(t *testing.T, what string, doc []byte, want *registry.Instance) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: XML does not parse: %v\n%s", what, err, doc)
		}
	}
	apps, err := codec.DecodeApplications(doc, codec.XML)
	if err != nil {
		t.Fatalf("%s: XML does not decode: %v\n%s", what, err, doc)
	}
	sameMetadata(t, what+" (XML)", apps, want)
}

// checkJSON requires doc to decode and to re-encode to the same bytes.
func checkJSON(t *testing.T, what string, doc []byte, want *registry.Instance) {
	t.Helper()
	apps, err := codec.DecodeApplications(doc, codec.JSON)
	if err != nil {
		t.Fatalf("%s: JSON does not decode: %v\n%s", what, err, doc)
	}
	if again := codec.AppendApplications(nil, codec.JSON, apps, codec.Options{}); !bytes.Equal(again, doc) {
		t.Fatalf("%s: JSON does not round-trip:\nserved  %s\nre-encoded %s", what, doc, again)
	}
	sameMetadata(t, what+" (JSON)", apps, want)
}

func sameMetadata(t *testing.T, what string, apps *registry.Applications, want *registry.Instance) {
	t.Helper()
	if len(apps.Applications) != 1 || len(apps.Applications[0].Instances) != 1 {
		t.Fatalf("%s: %d applications, want the one instance", what, len(apps.Applications))
	}
	got := apps.Applications[0].Instances[0]
	if !maps.Equal(got.Metadata, want.Metadata) || !maps.Equal(got.DataCenterInfo.Metadata, want.DataCenterInfo.Metadata) {
		t.Fatalf("%s: metadata %q / %q, want %q / %q", what, got.Metadata, got.DataCenterInfo.Metadata,
			want.Metadata, want.DataCenterInfo.Metadata)
	}
}
