package sdk

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type tlsBlock struct {
	Cert string `config:"cert,required"`
	Key  string `config:"key,required"`
}

type route struct {
	Name   string `config:"name,required"`
	Weight int    `config:"weight" default:"1"`
}

type testConfig struct {
	Listen   string            `config:"listen,required" description:"host:port"`
	MaxBatch int64             `config:"max_batch" default:"50"`
	Small    int8              `config:"small"`
	Ratio    float64           `config:"ratio" default:"0.5"`
	Timeout  time.Duration     `config:"timeout" default:"30s"`
	Compress bool              `config:"compress" default:"true"`
	Tags     []string          `config:"tags"`
	Headers  map[string]string `config:"headers"`
	TLS      *tlsBlock         `config:"tls"`
	Routes   []route           `config:"routes"`
	Retry    struct {
		Attempts int           `default:"3"`
		Wait     time.Duration `default:"100ms"`
	} `config:"retry"`
	Ignored string `config:"-"`
}

func (c testConfig) Validate() []Diagnostic {
	if c.MaxBatch < 1 {
		return []Diagnostic{{Path: "max_batch", Message: "want at least 1"}}
	}
	return nil
}

func TestSchemaOf(t *testing.T) {
	s, err := SchemaOf(testConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ConfigKey{}
	for _, k := range s {
		got[k.Path] = k
	}
	want := map[string]string{"listen": "string", "max_batch": "int", "small": "int", "ratio": "number", "timeout": "duration",
		"compress": "bool", "tags": "list(string)", "headers": "map(string)", "tls": "object", "tls.cert": "string",
		"tls.key": "string", "routes": "list(object)", "routes.name": "string", "routes.weight": "int", "retry": "object",
		"retry.attempts": "int", "retry.wait": "duration"}
	if len(got) != len(want) {
		t.Fatalf("schema has %d keys, want %d: %+v", len(got), len(want), s)
	}
	for p, typ := range want {
		if got[p].Type != typ {
			t.Errorf("%s: type %q, want %q", p, got[p].Type, typ)
		}
	}
	if !got["listen"].Required || got["listen"].Description != "host:port" || got["max_batch"].Required {
		t.Errorf("listen %+v, max_batch %+v", got["listen"], got["max_batch"])
	}
	if got["timeout"].Default != "30s" || got["max_batch"].Default != json.Number("50") || got["compress"].Default != true {
		t.Errorf("defaults: timeout %#v max_batch %#v compress %#v", got["timeout"].Default, got["max_batch"].Default, got["compress"].Default)
	}

	type badType struct {
		C chan int `config:"c"`
	}
	if _, err := SchemaOf(badType{}); err == nil || !strings.Contains(err.Error(), "field C") {
		t.Errorf("chan field: %v", err)
	}
	type badDefault struct {
		D time.Duration `config:"d" default:"soon"`
	}
	if _, err := SchemaOf(&badDefault{}); err == nil || !strings.Contains(err.Error(), `default "soon"`) {
		t.Errorf("bad default: %v", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	var c testConfig
	diags := DecodeConfig(RawConfig(`{"listen":"127.0.0.1:9000","max_batch":9007199254740993,"timeout":"1m",
		"tags":["a","b"],"headers":{"X":"y"},"tls":{"cert":"c.pem","key":"k.pem"},"routes":[{"name":"r1"},{"name":"r2","weight":5}]}`), &c)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	// 2^53+1 survives: integers are never routed through float64.
	if c.MaxBatch != 9007199254740993 || c.Timeout != time.Minute || c.Listen != "127.0.0.1:9000" {
		t.Fatalf("decoded %+v", c)
	}
	if c.Ratio != 0.5 || !c.Compress || c.Retry.Attempts != 3 || c.Retry.Wait != 100*time.Millisecond {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.TLS == nil || c.TLS.Key != "k.pem" || len(c.Routes) != 2 || c.Routes[0].Weight != 1 || c.Routes[1].Weight != 5 {
		t.Fatalf("nested: %+v %+v", c.TLS, c.Routes)
	}
	if len(c.Tags) != 2 || c.Headers["X"] != "y" {
		t.Fatalf("list/map: %+v %+v", c.Tags, c.Headers)
	}
	var d testConfig
	if diags := DecodeConfig(RawConfig(`{"listen":"x:1"}`), &d); len(diags) != 0 || d.MaxBatch != 50 || d.Timeout != 30*time.Second || d.TLS != nil {
		t.Fatalf("defaults: %v %+v", diags, d)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	cases := []struct{ name, json, path, want string }{
		{"float for an integer", `{"listen":"x:1","max_batch":2.5}`, "max_batch", "want a whole number, got the number 2.5"},
		{"string for an integer", `{"listen":"x:1","max_batch":"50"}`, "max_batch", `want a whole number, got the string "50"`},
		{"bare number for a duration", `{"listen":"x:1","timeout":30}`, "timeout", `want a duration with a unit`},
		{"bad duration", `{"listen":"x:1","timeout":"soon"}`, "timeout", `want a duration such as "30s"`},
		{"missing required", `{}`, "listen", "required key is not set"},
		{"missing required in a block", `{"listen":"x:1","tls":{"cert":"c"}}`, "tls.key", "required key is not set"},
		{"typo", `{"listen":"x:1","max_bacth":5}`, "max_bacth", `did you mean "max_batch"?`},
		{"typo in a list's object", `{"listen":"x:1","routes":[{"name":"a"},{"nmae":"b"}]}`, "routes[1].nmae", `did you mean "name"?`},
		{"wrong element type", `{"listen":"x:1","tags":["a",1]}`, "tags[1]", "want a string, got the number 1"},
		{"block given a value", `{"listen":"x:1","tls":"yes"}`, "tls", "want a block"},
		{"out of range", `{"listen":"x:1","small":300}`, "small", "out of range"},
		{"Validate", `{"listen":"x:1","max_batch":0}`, "max_batch", "want at least 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg testConfig
			diags := DecodeConfig(RawConfig(c.json), &cfg)
			for _, d := range diags {
				if d.Path == c.path && strings.Contains(d.Message, c.want) {
					return
				}
			}
			t.Fatalf("diagnostics %+v, want one at %q containing %q", diags, c.path, c.want)
		})
	}
	var cfg testConfig
	diags := DecodeConfig(RawConfig(`{"listen":"x:1","zzzzzz":1}`), &cfg)
	if len(diags) != 1 || strings.Contains(diags[0].Message, "did you mean") || !strings.Contains(diags[0].Message, "known: compress, headers") {
		t.Fatalf("far unknown key: %+v", diags)
	}
}

// The host checks a block with the schema alone (as it gets it from a plugin process) and finds
// what decoding the struct finds.
func TestCheckConfigFromTransmittedSchema(t *testing.T) {
	s, err := SchemaOf(testConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	var back []ConfigKey
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	raw := RawConfig(`{"listen":"x:1","max_batch":1.5,"lisen":"y","retry":{"wait":5}}`)
	got := CheckConfig(back, raw)
	var paths []string
	for _, d := range got {
		paths = append(paths, d.Path)
	}
	if strings.Join(paths, ",") != "lisen,max_batch,retry.wait" {
		t.Fatalf("diagnostics %+v", got)
	}
}

type validatingPlugin struct{ configured bool }

func (p *validatingPlugin) Info() Info { return Info{Name: "v", Config: (*testConfig)(nil)} }
func (p *validatingPlugin) Configure(context.Context, ConfigureRequest) []Diagnostic {
	p.configured = true
	return nil
}

// A validate-only configure of a plugin with a declared config struct decodes and validates
// without calling the plugin's Configure.
func TestConfigureValidateOnly(t *testing.T) {
	p := &validatingPlugin{}
	diags := Configure(context.Background(), p, ConfigureRequest{Config: RawConfig(`{"listen":"x:1","max_batch":0}`), ValidateOnly: true})
	if len(diags) != 1 || diags[0].Path != "max_batch" || p.configured {
		t.Fatalf("diags %+v, configured %v", diags, p.configured)
	}
	if diags := Configure(context.Background(), p, ConfigureRequest{Config: RawConfig(`{"listen":"x:1"}`)}); len(diags) != 0 || !p.configured {
		t.Fatalf("diags %+v, configured %v", diags, p.configured)
	}
	info, err := InfoOf(p, KindTransport)
	if err != nil || info.Kind != KindTransport || len(info.Schema) == 0 {
		t.Fatalf("InfoOf: %+v %v", info, err)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"MaxBatchSize": "max_batch_size", "TLSCert": "tls_cert", "Listen": "listen", "ReadTimeoutMS": "read_timeout_ms"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
