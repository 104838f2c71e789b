package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func quickConfig(scenario string, urls ...string) Config {
	cfg := DefaultConfig()
	cfg.Scenario, cfg.URLs = scenario, urls
	cfg.Connections, cfg.Instances, cfg.Apps = 4, 50, 3
	cfg.Duration, cfg.Warmup, cfg.Progress, cfg.Settle = 300*time.Millisecond, 50*time.Millisecond, 0, 0
	return cfg
}

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Throughput <= 0 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
		t.Fatalf("empty figures: %+v", res)
	}
	if res.ErrorCount != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	return res
}

func TestScenariosAgainstAFakeEurekaServer(t *testing.T) {
	for _, c := range []struct {
		scenario, format string
		kinds            []string
	}{
		{ScenarioRegister, "json", []string{"register"}},
		{ScenarioRegister, "xml", []string{"register"}},
		{ScenarioHeartbeat, "json", []string{"heartbeat"}},
		{ScenarioFetch, "json", []string{"fetch-full", "fetch-delta"}},
	} {
		t.Run(c.scenario+"-"+c.format, func(t *testing.T) {
			f := newFake(t, newFakeStore(), 0, false)
			cfg := quickConfig(c.scenario, f.URL())
			cfg.Format = c.format
			res := mustRun(t, cfg)
			for _, k := range c.kinds {
				if res.ByKind[k] == 0 {
					t.Errorf("no %s requests: %v", k, res.ByKind)
				}
			}
			// Every instance the run registered is deregistered at its end.
			if f.count() != 0 || res.Kept != 0 {
				t.Errorf("the fake holds %d instances after the run (%d kept), want 0", f.count(), res.Kept)
			}
			if c.scenario != ScenarioRegister && res.Deregistered != cfg.Instances {
				t.Errorf("%d instances deregistered, want the %d pre-registered", res.Deregistered, cfg.Instances)
			}
		})
	}
}

// With Keep (-keep) the instances stay, under the marked apps.
func TestKeepLeavesInstances(t *testing.T) {
	f := newFake(t, newFakeStore(), 0, false)
	cfg := quickConfig(ScenarioHeartbeat, f.URL())
	cfg.Keep = true
	res := mustRun(t, cfg)
	if f.count() != cfg.Instances || res.Kept != cfg.Instances || res.Deregistered != 0 {
		t.Fatalf("the fake holds %d instances, %d kept, %d deregistered; want %d kept", f.count(), res.Kept, res.Deregistered, cfg.Instances)
	}
}

// The mixed scenario cancels, changes status and heartbeats without ever heartbeating an instance
// it cancelled (the fake answers 404 then), at a rate set by the heartbeat interval.
func TestMixedScenario(t *testing.T) {
	f := newFake(t, newFakeStore(), 0, false)
	cfg := quickConfig(ScenarioMixed, f.URL())
	cfg.Instances, cfg.Requests, cfg.Duration = 40, 3000, 0
	cfg.HeartbeatInterval = 20 * time.Millisecond // 40 instances every 20 ms: 2000 req/s
	res := mustRun(t, cfg)
	if res.Rate != 2000 {
		t.Errorf("rate %v, want 2000 derived from the heartbeat interval", res.Rate)
	}
	for _, k := range []string{"heartbeat", "cancel", "status", "register"} {
		if res.ByKind[k] == 0 {
			t.Errorf("no %s: %v", k, res.ByKind)
		}
	}
	if c := res.ByKind["cancel"]; c < 10 || c > 60 {
		t.Errorf("%d cancels in 3000 operations, want about 1%%", c)
	}
	if res.Late == nil || res.Service == nil {
		t.Error("open-loop run without late count or service time")
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	f := newFake(t, newFakeStore(), 0, false)
	cfg := quickConfig(ScenarioRegister, f.URL())
	cfg.Rate = 500
	res := mustRun(t, cfg)
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "register" || back.Requests != res.Requests || back.Throughput != res.Throughput ||
		back.Latency != res.Latency || back.Rate != 500 || back.Connections != 4 || len(back.Targets) != 1 {
		t.Fatalf("round trip changed the result:\n%s", buf.String())
	}
	if back.Latency.P50 <= 0 || back.Latency.P99 < back.Latency.P50 || back.Latency.P999 < back.Latency.P99 ||
		back.Throughput <= 0 || back.ByKind["register"] == 0 || back.Late == nil || back.Service.P50 <= 0 {
		t.Fatalf("figures missing:\n%s", buf.String())
	}
	var raw map[string]any
	_ = json.Unmarshal(buf.Bytes(), &raw)
	for _, k := range []string{"throughput_rps", "latency_ms", "errors", "requests_by_kind", "duration_seconds"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var table bytes.Buffer
	_ = res.WriteTable(&table)
	for _, want := range []string{"throughput", "p99.9", "register", "errors", "none", "open loop"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestPropagationAgainstDelayedFakes(t *testing.T) {
	const delay = 20 * time.Millisecond
	store := newFakeStore()
	a, b, c := newFake(t, store, delay, false), newFake(t, store, delay, false), newFake(t, store, delay, false)
	cfg := quickConfig(ScenarioPropagation, a.URL(), b.URL(), c.URL())
	cfg.Rate, cfg.WatchRate = 200, 0
	res := mustRun(t, cfg)
	p := res.Propagation
	if p.Watched != res.ByKind["register"] {
		t.Errorf("%d of %d writes watched with -watch-rate 0", p.Watched, res.ByKind["register"])
	}
	if p == nil || len(p.PerTarget) != 2 || p.Count == 0 {
		t.Fatalf("no propagation figures: %+v", res)
	}
	ms := float64(delay.Milliseconds())
	if p.P50 < ms || p.P50 > ms*3 || p.P99 < p.P50 {
		t.Errorf("propagation p50 %.2fms p99 %.2fms, want just above the %v delay", p.P50, p.P99, delay)
	}
	for _, pt := range p.PerTarget {
		if pt.Count == 0 || pt.P50 < ms {
			t.Errorf("%s: %+v", pt.Target, pt.Latency)
		}
	}
	if p.Timeouts != 0 || p.PollErrors != 0 {
		t.Errorf("timeouts %d, poll errors %d", p.Timeouts, p.PollErrors)
	}
	// 200 writes/s watched at most 50 times a second: about a quarter of the writes.
	cfg.WatchRate = 50
	res = mustRun(t, cfg)
	if w, n := res.Propagation.Watched, res.ByKind["register"]; w == 0 || w > n/3 {
		t.Errorf("%d of %d writes watched at -watch-rate 50", w, n)
	}
}

func TestMemoryScenario(t *testing.T) {
	defer func(g time.Duration) { afterScrapeGap = g }(afterScrapeGap)
	afterScrapeGap = 20 * time.Millisecond
	for _, oneProcess := range []bool{false, true} {
		store := newFakeStore()
		a, b, c := newFake(t, store, 0, true), newFake(t, store, 0, true), newFake(t, store, 0, true)
		if oneProcess { // as herald dev: every node in one process
			b.allocs, c.allocs = a.allocs, a.allocs
		}
		cfg := quickConfig(ScenarioMemory, a.URL(), b.URL(), c.URL())
		cfg.Instances = 200
		res := mustRun(t, cfg)
		if res.Requests != 200 || len(res.Memory) != 3 {
			t.Fatalf("%d requests, %d memory rows", res.Requests, len(res.Memory))
		}
		for _, m := range res.Memory {
			// The fakes grow by exactly 1000 bytes of RSS and 600 of heap per instance.
			if !m.MetricsAvailable || m.RSSPerInstance != 1000 || m.HeapPerInstance != 600 || m.InstancesAfter-m.InstancesBefore != 200 {
				t.Errorf("%+v", m)
			}
		}
		// All three fakes report the same start time; only a shared allocation counter makes them
		// one process, and then the RSS per instance copy is a third.
		notes := res.Memory[0].Note + "|" + res.Memory[1].Note + "|" + res.Memory[2].Note
		if oneProcess && (!strings.Contains(notes, "one process serves 3 of these nodes: 333 bytes") ||
			!strings.Contains(res.Memory[1].Note, "same process") || !strings.Contains(res.Memory[2].Note, "same process")) {
			t.Errorf("one process: notes %q", notes)
		}
		if !oneProcess && notes != "||" {
			t.Errorf("separate processes: notes %q", notes)
		}
	}
}

func TestMemoryScenarioWithoutMetrics(t *testing.T) {
	f := newFake(t, newFakeStore(), 0, false)
	cfg := quickConfig(ScenarioMemory, f.URL())
	res := mustRun(t, cfg)
	m := res.Memory[0]
	if m.MetricsAvailable || m.RSSPerInstance != 0 || !strings.Contains(m.Note, "throughput only") {
		t.Fatalf("%+v", m)
	}
	var table bytes.Buffer
	_ = res.WriteTable(&table)
	if !strings.Contains(table.String(), "throughput only") {
		t.Errorf("table does not say /metrics is missing:\n%s", table.String())
	}
}

func TestRunFailsClearlyWhenTheServerIsDown(t *testing.T) {
	cfg := quickConfig(ScenarioRegister, "http://127.0.0.1:1/eureka/")
	_, err := Run(context.Background(), cfg, io.Discard)
	if err == nil || IsUsage(err) || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := quickConfig(ScenarioRegister, "http://127.0.0.1:8761")
	if err := ok.Validate(); err != nil || ok.URLs[0] != "http://127.0.0.1:8761/eureka/" {
		t.Fatalf("%v %v", err, ok.URLs)
	}
	v2 := quickConfig(ScenarioRegister, "http://h:1/eureka/v2")
	if err := v2.Validate(); err != nil || v2.URLs[0] != "http://h:1/eureka/v2/" {
		t.Fatalf("%v %v", err, v2.URLs)
	}
	for _, c := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"scenario", func(c *Config) { c.Scenario = "explode" }, "unknown scenario"},
		{"rate", func(c *Config) { c.Rate = -1 }, "-rate"},
		{"no url", func(c *Config) { c.URLs = nil }, "no URL"},
		{"scheme", func(c *Config) { c.URLs = []string{"ftp://h/eureka/"} }, "bad URL"},
		{"no host", func(c *Config) { c.URLs = []string{"http:///eureka/"} }, "bad URL"},
		{"unparsable", func(c *Config) { c.URLs = []string{"http://h:port/"} }, "bad URL"},
		{"relative", func(c *Config) { c.URLs = []string{"127.0.0.1:8761"} }, "bad URL"},
		{"connections", func(c *Config) { c.Connections = 0 }, "-connections"},
		{"format", func(c *Config) { c.Format = "yaml" }, "-format"},
		{"fetch", func(c *Config) { c.Fetch = "some" }, "-fetch"},
		{"no stop", func(c *Config) { c.Duration, c.Requests = 0, 0 }, "-duration or -requests"},
		{"propagation", func(c *Config) { c.Scenario = ScenarioPropagation }, "two URLs"},
		{"interval and rate", func(c *Config) {
			c.Scenario, c.Rate, c.HeartbeatInterval = ScenarioMixed, 100, time.Second
		}, "disagree"},
		{"interval scenario", func(c *Config) { c.HeartbeatInterval = time.Second }, "mixed and heartbeat"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "-timeout"},
	} {
		cfg := quickConfig(ScenarioRegister, "http://127.0.0.1:8761/eureka/")
		c.mut(&cfg)
		err := cfg.Validate()
		if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want a usage error about %q", c.name, err, c.want)
		}
	}
}

func TestBodiesAreValidAndPadded(t *testing.T) {
	for _, format := range []string{"json", "xml"} {
		s := instances{prefix: "bench-x", apps: 3, ts: 1700000000000, format: format}
		natural := len(s.body(5))
		for _, payload := range []int{0, 100, 2048, 10000} {
			s.padding = paddingFor(s, payload)
			b := s.body(123)
			if payload > natural && (len(b) < payload-20 || len(b) > payload+20) {
				t.Errorf("%s payload %d: body is %d bytes", format, payload, len(b))
			}
			var app, id string
			if format == "json" {
				var doc struct {
					Instance struct {
						App        string            `json:"app"`
						InstanceID string            `json:"instanceId"`
						Metadata   map[string]string `json:"metadata"`
					} `json:"instance"`
				}
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatalf("json body: %v\n%s", err, b)
				}
				app, id = doc.Instance.App, doc.Instance.InstanceID
			} else {
				var doc struct {
					XMLName    xml.Name `xml:"instance"`
					App        string   `xml:"app"`
					InstanceID string   `xml:"instanceId"`
				}
				if err := xml.Unmarshal(b, &doc); err != nil {
					t.Fatalf("xml body: %v\n%s", err, b)
				}
				app, id = doc.App, doc.InstanceID
			}
			if app != "HERALD-BENCH-0" || id != "bench-x-123" {
				t.Errorf("%s: app %q id %q", format, app, id)
			}
		}
	}
}
