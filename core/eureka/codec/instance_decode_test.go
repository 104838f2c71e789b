package codec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk/eurekawire/exactjson"
)

// decodeInstanceStd is the JSON path of DecodeInstance as it was before it decoded in one pass:
// encoding/json into the wrapper, field names matched exactly. The reference decodeInstanceJSON
// is compared with.
func decodeInstanceStd(data []byte) (*registry.Instance, error) {
	var w struct {
		Instance *jsonInstance `json:"instance"`
	}
	if err := json.Unmarshal(exactjson.Exact(data, exactjson.Schema{"instance": instanceSchema}), &w); err != nil {
		return nil, parseErr("%v", err)
	}
	if w.Instance == nil {
		return nil, parseErr(`missing the "instance" wrapper`)
	}
	return w.Instance.model()
}

// sameRegistration checks DecodeInstance (JSON) against decodeInstanceStd: both accept or both
// refuse (a refusal is a 400 with the same fixed body whatever the reason, so only that counts),
// and an accepted document decodes to the same instance. It reports whether it was accepted.
func sameRegistration(t *testing.T, data []byte) bool {
	t.Helper()
	want, wantErr := decodeInstanceStd(data)
	got, err := DecodeInstance(data, JSON)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("document %q: one-pass error %v, encoding/json error %v", data, err, wantErr)
	}
	if err != nil && !errors.Is(err, ErrParse) {
		t.Fatalf("document %q: error does not wrap ErrParse: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("document %q:\n got %+v\nwant %+v", data, got, want)
	}
	return err == nil
}

// wrapperCorpus are registration bodies at the edges of what encoding/json accepts for the
// wrapper: repeated, null, case-folded and escaped "instance", other members, what follows.
var wrapperCorpus = []string{
	``, ` `, `null`, ` null `, `null x`, `nul`, `true`, `1`, `"instance"`, `[]`, `[{"instance":{"app":"a"}}]`, `{}`, `{`, `}`,
	`{"instance":null}`, `{"instance":{}}`, `{"instance":{"app":"a"}}`, ` {"instance":{"app":"a"}} `, "\t{\"instance\":{\"app\":\"a\"}}\r\n",
	`{"instance":{"app":"a"}} x`, `{"instance":{"app":"a"}}{}`, `{"instance":{"app":"a"},}`, `{"instance":{"app":"a"}`,
	`{"instance":{"app":"a",}}`, `{"instance" {"app":"a"}}`, `{instance:{"app":"a"}}`, `{"instance":{"app":"a"}]`,
	`{"instance":5}`, `{"instance":"x"}`, `{"instance":true}`, `{"instance":[]}`, `{"instance":[{"app":"a"}]}`,
	`{"instance":nul}`, `{"instance":{"app":"a"},"instance":5}`, `{"instance":5,"instance":{"app":"a"}}`,
	`{"INSTANCE":{"app":"a"}}`, `{"Instance":{"app":"a"}}`, `{"ınstance":{"app":"a"}}`, `{"\u0069nstance":{"app":"a"}}`,
	`{"instance\u0000":{"app":"a"}}`, `{"instance ":{"app":"a"}}`, `{"INSTANCE":{"app":"a"},"instance":{"hostName":"h"}}`,
	`{"instance":{"app":"a"},"INSTANCE":null}`, `{"instance":{"app":"a"},"Instance":{"app":"b"}}`,
	`{"instance":{"app":"a"},"instance":{"hostName":"h"}}`,
	`{"instance":{"app":"a","hostName":"h"},"instance":{"hostName":"i","port":9}}`,
	`{"instance":{"app":"a"},"instance":null}`, `{"instance":{"app":"a"},"instance":null,"instance":{"hostName":"h"}}`,
	`{"instance":null,"instance":{"app":"a"}}`, `{"instance":{"app":"a"},"instance":{"app":null}}`,
	`{"instance":{"app":"a","port":{"$":1,"@enabled":"false"}},"instance":{"port":{"$":2}}}`,
	`{"instance":{"app":"a","port":{"$":1,"@enabled":"false"}},"instance":{"port":3}}`,
	`{"instance":{"app":"a","metadata":{"x":"1"}},"instance":{"metadata":{"y":"2"}}}`,
	`{"instance":{"app":"a","metadata":{"x":"1"}},"instance":{"metadata":null}}`,
	`{"instance":{"app":"a","dataCenterInfo":{"name":"A","metadata":{"m":"1"}}},"instance":{"dataCenterInfo":{"@class":"c"}}}`,
	`{"instance":{"app":"a","leaseInfo":{"durationInSecs":5}},"instance":{"leaseInfo":{"renewalTimestamp":7}}}`,
	`{"instance":{"app":"a","leaseInfo":{"durationInSecs":5}},"instance":{"leaseInfo":null}}`,
	`{"instance":{"app":"a","countryId":"2","isCoordinatingDiscoveryServer":true},"instance":{"countryId":null,"isCoordinatingDiscoveryServer":"x"}}`,
	`{"instance":{"app":"a","statusVersion":"x"},"instance":{"hostName":"h"}}`,
	`{"instance":{"app":"a","port":"x"},"instance":{"port":8080}}`, `{"instance":{"app":"a","hostName":5},"instance":{"hostName":"h"}}`,
	`{"instance":{"hostName":5},"instance":null}`, `{"instance":{"hostName":5},"instance":null,"instance":{"app":"a"}}`,
	`{"instance":{"app":"a","port":70000},"instance":{"port":80}}`, `{"instance":{"app":"a"},"instance":{"port":70000}}`,
	`{"x":1,"instance":{"app":"a"},"y":[{"instance":5}],"z":{"instance":null}}`, `{"x":[1,2,{"a":null}],"instance":{"app":"a"}}`,
	`{"x":tru,"instance":{"app":"a"}}`, `{"x":01,"instance":{"app":"a"}}`, `{"x":"\q","instance":{"app":"a"}}`,
	`{"x":"a` + "\x01" + `","instance":{"app":"a"}}`, "{\"x\":\"\xff\",\"instance\":{\"app\":\"a\xfe\"}}",
	`{"instance":{"app":"a\ud800","hostName":"\u00e9\/"}}`, `{"instance":{"app":"a"},"instance":{"app":"b"},"instance":{"app":"c"}}`,
	`{"instance":{"app":"demo","metadata":{"instanceId":"i"},"hostName":"h"},"instance":{"hostName":"g"}}`,
}

func TestDecodeInstanceMatchesEncodingJSON(t *testing.T) {
	docs := append([]string{}, wrapperCorpus...)
	docs = append(docs, seeds()...)
	// Every instance of the replication corpus, and the bare corpus, in the wrapper.
	for _, inst := range corpusInstances() {
		docs = append(docs, `{"instance":`+inst+`}`)
	}
	for _, s := range seeds() {
		// Each seed with a member repeated from another client's body, and truncated.
		docs = append(docs, strings.TrimSuffix(s, "}")+`,"instance":`+strings.TrimPrefix(seeds()[2], `{"instance":`))
		for _, cut := range []int{1, len(s) / 2, len(s) - 1} {
			docs = append(docs, s[:cut])
		}
	}
	accepted := 0
	for _, doc := range docs {
		if sameRegistration(t, []byte(doc)) {
			accepted++
		}
	}
	if accepted < 40 {
		t.Fatalf("only %d documents of the corpus accepted: the comparison says little", accepted)
	}
	// What the merge gives, spelled out.
	i, err := DecodeInstance([]byte(`{"instance":{"app":"a","hostName":"h"},"instance":{"hostName":"i","port":9}}`), JSON)
	if err != nil || i.App != "A" || i.HostName != "i" || i.Port.Number != 9 {
		t.Fatalf("repeated wrapper: %v %+v", err, i)
	}
	if _, err := DecodeInstance([]byte(`{"instance":{"app":"a"},"instance":null,"instance":{"hostName":"h"}}`), JSON); !errors.Is(err, ErrParse) {
		t.Fatalf("null between two wrappers: %v, want ErrParse (no app)", err)
	}
}

func TestDecodeInstanceDepth(t *testing.T) {
	// encoding/json refuses a document nested deeper than 10000, counted from the top.
	doc := func(n int) []byte {
		return []byte(`{"instance":{"app":"a","x":` + strings.Repeat(`{"y":`, n) + `1` + strings.Repeat("}", n) + `}}`)
	}
	if !sameRegistration(t, doc(9998)) {
		t.Fatal("a registration nested 10000 deep is refused")
	}
	if sameRegistration(t, doc(9999)) {
		t.Fatal("a registration nested 10001 deep is accepted")
	}
	outside := func(n int) []byte {
		return []byte(`{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `,"instance":{"app":"a"}}`)
	}
	if !sameRegistration(t, outside(9999)) || sameRegistration(t, outside(10000)) {
		t.Fatal("the limit outside the instance differs")
	}
}

func FuzzDecodeInstanceOnePass(f *testing.F) {
	for _, doc := range wrapperCorpus {
		f.Add([]byte(doc))
	}
	for _, s := range seeds() {
		f.Add([]byte(s))
	}
	fuzzAlike(f, func(t *testing.T, data []byte) { sameRegistration(t, data) })
}

// BenchmarkDecodeRegistration decodes a Spring Cloud client's registration body (POST
// /eureka/apps/{app}): encodingJSON as DecodeInstance did before, onePass as it does now.
func BenchmarkDecodeRegistration(b *testing.B) {
	body := []byte(seeds()[1])
	for _, c := range []struct {
		name   string
		decode func([]byte) (*registry.Instance, error)
	}{
		{"encodingJSON", decodeInstanceStd},
		{"onePass", func(d []byte) (*registry.Instance, error) { return DecodeInstance(d, JSON) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
