package main

// End-to-end tests of what a large write may cost the others: between real herald processes, a
// registration near the body limit must neither take other clients' writes down with it nor
// let a node acknowledge what it cannot deliver, and a peer that is down must cost a bounded
// number of bytes.

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// labelled sums the samples of metric name at a node whose labels include every k="v" in labels.
func labelled(n *e2e.Node, name string, labels ...string) (float64, error) {
	code, b, err := client.Do(context.Background(), "GET", n.Root()+"/metrics", "", nil, nil)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics at %s: %d", n.Name, code)
	}
	sum := 0.0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, labels[i]+"="+strconv.Quote(labels[i+1])) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// paddedInstance is a registration body of exactly size bytes: a long homePageUrl (metadata is
// bounded well below the body limit) makes it large.
func paddedInstance(t *testing.T, app, id string, size int) []byte {
	t.Helper()
	body := func(pad int) []byte {
		b := e2e.InstanceJSON(app, id, 1000, "UP", nil)
		return bytes.Replace(b, []byte(`{"instance":{`), []byte(`{"instance":{"homePageUrl":"http://host/`+strings.Repeat("x", pad)+`",`), 1)
	}
	base := len(body(0))
	if size < base {
		t.Fatalf("a registration is at least %d bytes", base)
	}
	b := body(size - base)
	if len(b) != size {
		t.Fatalf("body of %d bytes, want %d", len(b), size)
	}
	return b
}

// A registration near the body limit travels among ~100 status changes of other instances. Peer
// C has the same limits as the sender; peer B accepts smaller bodies (256 KiB), so it refuses, with
// 413, any batch holding one of the large registrations. Every status change must reach both
// peers; the only tasks dropped are the two registrations B cannot take; C never sees a 413 (the
// sender cuts batches by bytes); and a registration of exactly the body limit, which no batch could
// carry, is refused up front instead of acknowledged.
func TestLargeRegistrationCostsNoOtherWrite(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 3)
	urls := []string{urlOf(ports[0]), urlOf(ports[1]), urlOf(ports[2])}
	// Anti-entropy is off: what reaches a peer here came through the replication pipeline. The
	// sender holds a burst in its pending stage (one worker, 2 s batching delay), so the large
	// registrations and the status changes share batches, as under load.
	const noRepair = "\ncluster {\n  anti_entropy { enabled = false }\n}\n"
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], urls, noRepair+`
replication {
  flush_policy   = "size-or-age" # holds every task for batching_delay, at any load
  workers        = 1
  batching_delay = "2s"
}`))
	b := e2e.NewNode(t, heraldBin, "b", ports[1], clusterHCL(ports[1], urls, noRepair+`
http { max_body_bytes = 262144 }
replication { max_batch_bytes = 200000 }`))
	c := e2e.NewNode(t, heraldBin, "c", ports[2], clusterHCL(ports[2], urls, noRepair))
	for _, n := range []*e2e.Node{a, b, c} {
		n.Start()
	}

	const n = 100
	for i := 0; i < n; i++ {
		register(t, a, "SMALL", fmt.Sprint("s", i), 1000, nil)
	}
	for i := 0; i < n; i++ {
		visibleOn(t, "SMALL", fmt.Sprint("s", i), b, c)
	}

	// Exactly the body limit: the node reads it, but its replication item could never be sent.
	if code, body := do(t, "POST", a.URL()+"apps/BIG", paddedInstance(t, "BIG", "at-limit", 1<<20), nil); code != 413 {
		t.Fatalf("a registration of exactly http.max_body_bytes: %d %s; want 413, as no peer could be sent it", code, body)
	}

	// The burst: status changes with two large registrations among them (about 900 KB and 300 KB:
	// together more than any peer accepts in one body).
	for i := 0; i < n; i++ {
		switch i {
		case n / 3:
			if code, body := do(t, "POST", a.URL()+"apps/BIG", paddedInstance(t, "BIG", "big-1", 900_000), nil); code != 204 {
				t.Fatalf("register big-1: %d %s", code, body)
			}
		case 2 * n / 3:
			if code, body := do(t, "POST", a.URL()+"apps/BIG", paddedInstance(t, "BIG", "big-2", 300_000), nil); code != 204 {
				t.Fatalf("register big-2: %d %s", code, body)
			}
		}
		url := fmt.Sprintf("%sapps/SMALL/s%d/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1000", a.URL(), i)
		if code, body := do(t, "PUT", url, nil, nil); code != 200 {
			t.Fatalf("status change s%d: %d %s", i, code, body)
		}
	}

	for _, peer := range []*e2e.Node{b, c} {
		for i := 0; i < n; i++ {
			id := fmt.Sprint("s", i)
			eventually(t, "status change of "+id+" on "+peer.Name, func() error {
				d, ok, err := instance(t, peer, "SMALL", id)
				if err != nil || !ok || d.Instance.Status != "OUT_OF_SERVICE" {
					return fmt.Errorf("not yet (found %v, status %q, %v)", ok, d.Instance.Status, err)
				}
				return nil
			})
		}
	}
	visibleOn(t, "BIG", "big-1", c)
	visibleOn(t, "BIG", "big-2", c)
	drained(t, a)

	count := func(name string, labels ...string) float64 {
		t.Helper()
		v, err := labelled(a, name, labels...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := count("herald_replication_tasks_dropped_total", "peer", urls[1], "reason", "permanent"); v != 2 {
		t.Fatalf("peer b: %v tasks dropped as refused, want exactly the 2 large registrations\n%s", v, a.Logs())
	}
	for _, reason := range []string{"overflow", "expired"} {
		if v := count("herald_replication_tasks_dropped_total", "reason", reason); v != 0 {
			t.Fatalf("%v tasks dropped as %s: nothing but the refused registrations may be lost", v, reason)
		}
	}
	if v := count("herald_replication_tasks_dropped_total", "peer", urls[2], "reason", "permanent"); v != 0 {
		t.Fatalf("peer c: %v tasks dropped as refused", v)
	}
	if v := count("herald_replication_batches_total", "peer", urls[2], "result", "permanent"); v != 0 {
		t.Fatalf("peer c refused %v batches: batches must be cut below the peers' body limit", v)
	}
	for _, id := range []string{"big-1", "big-2"} {
		if !strings.Contains(a.Logs(), "id="+id) {
			t.Fatalf("the dropped registration %s must be logged with its id:\n%s", id, a.Logs())
		}
		if _, ok, err := instance(t, b, "BIG", id); err != nil || ok {
			t.Fatalf("%s on b: found %v (%v); b refuses it", id, ok, err)
		}
	}
	for _, peer := range []*e2e.Node{a, b, c} {
		if _, ok, err := instance(t, peer, "BIG", "at-limit"); err != nil || ok {
			t.Fatalf("a refused registration must be nowhere; on %s: found %v (%v)", peer.Name, ok, err)
		}
	}
}

// With its only peer down, a node's pending stage for that peer stays within
// replication.max_buffer_bytes, however much is written: the oldest tasks overflow.
func TestPendingBytesCappedWithPeerDown(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 2)
	const capBytes = 256 << 10
	// ports[1] is never started: the peer is down (connection refused, retried every 50 ms).
	a := e2e.NewNode(t, heraldBin, "a", ports[0], clusterHCL(ports[0], []string{urlOf(ports[0]), urlOf(ports[1])},
		fmt.Sprintf(`
replication {
  workers          = 1
  max_batch_bytes  = 65536
  max_buffer_bytes = %d
}`, capBytes)))
	a.Start()
	peer := urlOf(ports[1])
	pending := func() float64 {
		t.Helper()
		v, err := labelled(a, "herald_replication_queue_bytes", "peer", peer, "stage", "pending")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// 200 registrations of 20 KB: 4 MB to a peer that takes nothing.
	highest := 0.0
	for i := 0; i < 200; i++ {
		register := paddedInstance(t, "BULK", fmt.Sprint("r", i), 20_000)
		if code, body := do(t, "POST", a.URL()+"apps/BULK", register, nil); code != 204 {
			t.Fatalf("register r%d: %d %s", i, code, body)
		}
		if i%10 == 0 {
			highest = max(highest, pending())
		}
	}
	eventually(t, "overflow counted", func() error {
		highest = max(highest, pending())
		v, err := labelled(a, "herald_replication_tasks_dropped_total", "peer", peer, "reason", "overflow")
		if err != nil || v < 100 {
			return fmt.Errorf("overflow %v (%v)", v, err)
		}
		return nil
	})
	highest = max(highest, pending())
	if highest > capBytes || highest < capBytes/2 {
		t.Fatalf("pending bytes for the down peer peaked at %v; want at most the %d cap, and filled", highest, capBytes)
	}
}

// heapAfterGC is a node's live heap: HeapAlloc as its heap profile reports it right after a
// collection (profiling on; gc=1 collects first). Asked twice, so that what sync.Pools held (a
// pool's objects survive one collection) is gone too.
func heapAfterGC(t *testing.T, n *e2e.Node) float64 {
	t.Helper()
	var v float64
	for i := 0; i < 2; i++ {
		code, b, err := client.Do(context.Background(), "GET", n.Root()+"/debug/pprof/heap?gc=1&debug=1", "", nil, nil)
		if err != nil || code != 200 {
			t.Fatalf("heap profile at %s: %d %v", n.Name, code, err)
		}
		_, rest, ok := strings.Cut(string(b), "\n# HeapAlloc = ")
		if !ok {
			t.Fatalf("heap profile at %s has no HeapAlloc", n.Name)
		}
		line, _, _ := strings.Cut(rest, "\n")
		if v, err = strconv.ParseFloat(strings.TrimSpace(line), 64); err != nil {
			t.Fatalf("heap profile at %s: HeapAlloc %q: %v", n.Name, line, err)
		}
	}
	return v
}

// 3,000 app names (1,000 bytes each: its VIP address, which takes the name, may have 1,024) registered and cancelled: once the delta queue and the tombstones
// have let them go, the node's live heap is back within 10% of what it was before. herald used to
// keep an entry for every app name it ever saw.
func TestMemoryReturnsAfterAppsGo(t *testing.T) {
	t.Parallel()
	ports := e2e.FreePorts(t, 1)
	n := e2e.NewNode(t, heraldBin, "mem", ports[0], clusterHCL(ports[0], []string{urlOf(ports[0])}, `
registry {
  delta_retention          = "2s"
  delta_retention_interval = "1s"
  tombstone_ttl            = "2s"
}
telemetry {
  profiling {
    enabled = true
  }
}`))
	n.Start()
	// A steady population, so that 10% of the heap is well above the noise of the scrapes.
	for i := 0; i < 2000; i++ {
		register(t, n, "STEADY", fmt.Sprint("s", i), 1000, nil)
	}
	before := heapAfterGC(t, n)
	long := strings.Repeat("A", 1000)
	const apps = 3000
	for i := 0; i < apps; i++ {
		register(t, n, fmt.Sprintf("%s-%d", long, i), "i1", 1000, nil)
	}
	during := heapAfterGC(t, n)
	for i := 0; i < apps; i++ {
		if code, body := do(t, "DELETE", n.URL()+fmt.Sprintf("apps/%s-%d/i1", long, i), nil, nil); code != 200 {
			t.Fatalf("cancel %d: %d %s", i, code, body)
		}
	}
	var after float64
	eventually(t, "heap back within 10%", func() error {
		after = heapAfterGC(t, n)
		if after > 1.1*before {
			return fmt.Errorf("live heap %.1f MiB, was %.1f MiB before the apps came (%.1f MiB with them)",
				after/(1<<20), before/(1<<20), during/(1<<20))
		}
		return nil
	})
	t.Logf("live heap: %.1f MiB before, %.1f MiB with 3,000 more apps, %.1f MiB after they left",
		before/(1<<20), during/(1<<20), after/(1<<20))
	if during < before+float64(apps*1000) {
		t.Errorf("the apps cost %.1f MiB of heap, less than their names: the measure does not see them", (during-before)/(1<<20))
	}
}
