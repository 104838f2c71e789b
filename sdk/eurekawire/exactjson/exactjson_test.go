package exactjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

type port struct {
	Num     int    `json:"$"`
	Enabled string `json:"@enabled"`
}

type inst struct {
	HostName string            `json:"hostName"`
	App      string            `json:"app"`
	Port     *port             `json:"port"`
	Metadata map[string]string `json:"metadata"`
	Skipped  string            `json:"-"`
	Plain    string
}

var schema = func() Schema {
	s := FieldsOf(inst{})
	s["port"] = FieldsOf(port{})
	return Schema{"instance": s}
}()

func decode(t *testing.T, doc string) inst {
	t.Helper()
	var w struct {
		Instance inst `json:"instance"`
	}
	if err := json.Unmarshal(Exact([]byte(doc), schema), &w); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return w.Instance
}

func TestFieldsOf(t *testing.T) {
	got := FieldsOf(&inst{})
	want := Schema{"hostName": nil, "app": nil, "port": nil, "metadata": nil, "Plain": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FieldsOf = %v, want %v", got, want)
	}
}

func TestExactMatchesAsJackson(t *testing.T) {
	cases := []struct {
		name, doc string
		want      inst
	}{
		{"exact names", `{"instance":{"hostName":"h","app":"A","port":{"$":1,"@enabled":"true"}}}`,
			inst{HostName: "h", App: "A", Port: &port{1, "true"}}},
		{"upper case after", `{"instance":{"hostName":"h","HOSTNAME":"evil"}}`, inst{HostName: "h"}},
		{"upper case before", `{"instance":{"HOSTNAME":"evil","hostName":"h"}}`, inst{HostName: "h"}},
		{"upper case alone", `{"instance":{"HostName":"evil"}}`, inst{}},
		{"unicode folding", `{"instance":{"hoſtName":"evil","app":"A"}}`, inst{App: "A"}},
		{"escaped exact name", `{"instance":{"host\u004eame":"h"}}`, inst{HostName: "h"}},
		{"escaped folded name", `{"instance":{"HOST\u004eAME":"evil"}}`, inst{}},
		{"nested object", `{"instance":{"port":{"$":1,"@ENABLED":"false","@enabled":"true"}}}`, inst{Port: &port{1, "true"}}},
		{"wrapper", `{"INSTANCE":{"hostName":"evil"}}`, inst{}},
		{"map keys are free", `{"instance":{"metadata":{"HOSTNAME":"x","app":"y"}}}`, inst{Metadata: map[string]string{"HOSTNAME": "x", "app": "y"}}},
		{"field without tag", `{"instance":{"plain":"evil","Plain":"p"}}`, inst{Plain: "p"}},
		{"unknown members skipped", `{"instance":{"x":[1,{"a":"}"},[["]"]]],"y":null,"hostName":"h","z":-1.5e3}}`, inst{HostName: "h"}},
		{"whitespace", " {\n\"instance\" :\t{ \"HOSTNAME\" : \"evil\" , \"app\" : \"A\" } } ", inst{App: "A"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := decode(t, c.doc); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("decoded %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestExactLeavesCleanDocumentsAlone(t *testing.T) {
	doc := []byte(`{"instance":{"hostName":"h","metadata":{"HOSTNAME":"x"}}}`)
	if out := Exact(doc, schema); &out[0] != &doc[0] {
		t.Fatal("a document without folded names was copied")
	}
	for _, bad := range []string{``, `{`, `{"instance":{"HOSTNAME":`, `[[[`, `{"instance":{"a" "b"}}`, `"\`, `{"x":1,}`} {
		if out := Exact([]byte(bad), schema); string(out) != bad {
			t.Errorf("malformed %q came back as %q", bad, out)
		}
	}
}

// FuzzExact: Exact keeps valid JSON valid, never panics, and is idempotent.
func FuzzExact(f *testing.F) {
	f.Add([]byte(`{"instance":{"hostName":"h","HOSTNAME":"evil","port":{"@ENABLED":1}}}`))
	f.Add([]byte(`[{"instance":[{"HoStNaMe":"x"}]}]`))
	f.Add([]byte(`{"instance":{"hoſtName":"evil","x":[[{"HOSTNAME":1}]]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := Exact(data, schema)
		if json.Valid(data) != json.Valid(out) {
			t.Fatalf("validity changed: %q -> %q", data, out)
		}
		if again := Exact(out, schema); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", data, out, again)
		}
	})
}
