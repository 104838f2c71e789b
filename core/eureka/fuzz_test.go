package eureka_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzRegister sends arbitrary registrations: no input may make the handler fail (a recovered
// panic shows as 500), and a refused registration must leave the registry as it was.
//
//	go test ./core/eureka -run '^$' -fuzz FuzzRegister -fuzztime 30s
func FuzzRegister(f *testing.F) {
	ok := inst("FUZZ", "f1", "10.0.0.1", "UP", 1000)
	amazon := inst("FUZZ", "f2", "10.0.0.2", "UP", 1000)
	amazon.Set = map[string]string{"dataCenterInfo": `{"@class":"com.netflix.appinfo.AmazonInfo","name":"Amazon","metadata":{}}`}
	seeds := []struct {
		app, ct, enc string
		body         []byte
	}{
		{"FUZZ", jsonCT, "", []byte(ok.json())},
		{"fuzz", jsonCT, "", []byte(amazon.json())},
		{"FUZZ", "application/xml", "", []byte(xmlInstance("FUZZ", "x1", 1))},
		{"FUZZ", "application/json; charset=iso-8859-1", "", []byte(`{"instance":{"app":"FUZZ","hostName":"h\xe9"}}`)},
		{"OTHER", jsonCT, "", []byte(ok.json())},
		{"FUZZ", jsonCT, "gzip", gzipBytes([]byte(ok.json()))},
		{"FUZZ", jsonCT, "", []byte(`{"instance":[]}`)},
		{"FUZZ", jsonCT, "", []byte(`{"instance":{"port":{"$":"x"}}}`)},
		{"FUZZ", "application/xml", "", []byte(`<instance><port enabled="maybe">-1</port></instance>`)},
		{"FUZZ", "text/plain", "", []byte("hello")},
		{"FUZZ", jsonCT, "gzip", []byte("not gzip")},
	}
	for _, s := range seeds {
		f.Add(s.app, s.ct, s.enc, s.body)
	}
	n := newNode(f, nodeConfig{opts: nil})
	f.Fuzz(func(t *testing.T, app, ct, enc string, body []byte) {
		root, _ := n.reg.Digest()
		count := n.reg.Stats().Instances
		req := httptest.NewRequest(http.MethodPost, "/eureka/v2/apps/"+url.PathEscape(app), bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		rec := httptest.NewRecorder()
		n.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for Content-Type %q body %q: %s", rec.Code, ct, body, rec.Body.Bytes())
		}
		if rec.Code == http.StatusNoContent {
			return
		}
		if rec.Code < 400 {
			t.Fatalf("status %d is neither 204 nor a refusal", rec.Code)
		}
		if after, _ := n.reg.Digest(); after != root || n.reg.Stats().Instances != count {
			t.Fatalf("refused registration (%d %s) changed the registry", rec.Code, rec.Body.Bytes())
		}
	})
}
