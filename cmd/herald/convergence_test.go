package main

// End-to-end tests of convergence between real herald processes: a partition that outlasts the
// replication pipeline's task lifetime, and three nodes started together.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// fullView is GET /eureka/apps at n as instance -> "status|overriddenStatus|lastDirty|metadata".
func fullView(n *e2e.Node) (map[string]string, error) {
	code, b, err := client.Do(context.Background(), "GET", n.URL()+"apps", "", nil, nil)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET apps at %s: %d", n.Name, code)
	}
	var doc struct {
		Applications struct {
			Application []struct {
				Name     string `json:"name"`
				Instance []struct {
					InstanceID         string            `json:"instanceId"`
					Status             string            `json:"status"`
					OverriddenStatus   string            `json:"overriddenStatus"`
					LastDirtyTimestamp string            `json:"lastDirtyTimestamp"`
					Metadata           map[string]string `json:"metadata"`
				} `json:"instance"`
			} `json:"application"`
		} `json:"applications"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("GET apps at %s: %w", n.Name, err)
	}
	out := map[string]string{}
	for _, a := range doc.Applications.Application {
		for _, i := range a.Instance {
			var md []string
			for k, v := range i.Metadata {
				if k != "@class" {
					md = append(md, k+"="+v)
				}
			}
			sort.Strings(md)
			out[a.Name+"/"+i.InstanceID] = strings.Join([]string{i.Status, i.OverriddenStatus, i.LastDirtyTimestamp,
				strings.Join(md, ",")}, "|")
		}
	}
	return out, nil
}

// labelledSum sums the samples of name at n whose label set contains every one of labels.
func labelledSum(n *e2e.Node, name string, labels ...string) (float64, error) {
	code, b, err := client.Do(context.Background(), "GET", n.Root()+"/metrics", "", nil, nil)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics at %s: %d", n.Name, code)
	}
	sum := 0.0
next:
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// TestPartitionLongerThanReplicationConverges partitions C away for longer than the replication
// pipeline keeps tasks (max_time_for_replication 2 s), so the writes made meanwhile on either side
// are dropped, not delayed: status overrides, a metadata update, a cancel, a registration, and
// conflicting overrides of one instance. Once the partition heals, anti-entropy alone must make the
// three registries identical within two of its rounds, status and metadata included.
func TestPartitionLongerThanReplicationConverges(t *testing.T) {
	const (
		interval = time.Second     // cluster.anti_entropy.interval in clusterHCL
		grace    = 2 * time.Second // cluster.DefaultAntiEntropyGrace
	)
	extra := `
replication { max_time_for_replication = "2s" }
`
	ports := e2e.FreePorts(t, 7)
	pa, pb, pc := ports[0], ports[1], ports[2]
	// C reaches A and B, and is reached by them, only through the proxies.
	proxies := []*e2e.Proxy{
		e2e.NewProxy(t, ports[3], fmt.Sprintf("127.0.0.1:%d", pc)),
		e2e.NewProxy(t, ports[4], fmt.Sprintf("127.0.0.1:%d", pc)),
		e2e.NewProxy(t, ports[5], fmt.Sprintf("127.0.0.1:%d", pa)),
		e2e.NewProxy(t, ports[6], fmt.Sprintf("127.0.0.1:%d", pb)),
	}
	a := e2e.NewNode(t, heraldBin, "a", pa, clusterHCL(pa, []string{urlOf(pa), urlOf(pb), urlOf(ports[3])}, extra))
	b := e2e.NewNode(t, heraldBin, "b", pb, clusterHCL(pb, []string{urlOf(pa), urlOf(pb), urlOf(ports[4])}, extra))
	c := e2e.NewNode(t, heraldBin, "c", pc, clusterHCL(pc, []string{urlOf(ports[5]), urlOf(ports[6]), urlOf(pc)}, extra))
	nodes := []*e2e.Node{a, b, c}
	for _, n := range nodes {
		n.Start()
	}
	for _, id := range []string{"p1", "p2", "p3", "p6"} {
		register(t, a, "PART", id, 1000, nil)
	}
	for _, id := range []string{"p1", "p2", "p3", "p6"} {
		visibleOn(t, "PART", id, b, c)
	}

	for _, p := range proxies {
		p.Cut()
	}
	var expiredBefore [3]float64
	for i, n := range nodes {
		v, err := labelledSum(n, "herald_replication_tasks_dropped_total", `reason="expired"`)
		if err != nil {
			t.Fatal(err)
		}
		expiredBefore[i] = v
	}
	must := func(code int, what string) {
		t.Helper()
		if code != 200 {
			t.Fatalf("%s during the partition: %d", what, code)
		}
	}
	code, _ := do(t, "PUT", a.URL()+"apps/PART/p1/status?value=OUT_OF_SERVICE", nil, nil)
	must(code, "override p1 at A")
	code, _ = do(t, "PUT", c.URL()+"apps/PART/p2/metadata?k=v", nil, nil)
	must(code, "metadata p2 at C")
	code, _ = do(t, "DELETE", b.URL()+"apps/PART/p3", nil, nil)
	must(code, "cancel p3 at B")
	register(t, a, "PART", "p4", 1000, nil)
	code, _ = do(t, "PUT", a.URL()+"apps/PART/p4?status=UP&lastDirtyTimestamp=1000", nil, nil)
	must(code, "heartbeat p4 at A")
	code, _ = do(t, "PUT", a.URL()+"apps/PART/p6/status?value=DOWN", nil, nil)
	must(code, "override p6 at A")
	code, _ = do(t, "PUT", c.URL()+"apps/PART/p6/status?value=OUT_OF_SERVICE", nil, nil)
	must(code, "override p6 at C")

	// The partition lasts until every side has dropped its tasks for the other as expired.
	e2e.Eventually(t, 30*time.Second, func() error {
		for i, n := range nodes {
			v, err := labelledSum(n, "herald_replication_tasks_dropped_total", `reason="expired"`)
			if err != nil {
				return err
			}
			if v <= expiredBefore[i] {
				return fmt.Errorf("%s has not dropped an expired task yet", n.Name)
			}
		}
		return nil
	})
	if d, _, err := instance(t, c, "PART", "p1"); err != nil || d.Instance.Status != "UP" {
		t.Fatalf("the partition does not hold: C sees p1 as %q (%v)", d.Instance.Status, err)
	}

	for _, p := range proxies {
		p.Heal()
	}
	healed := time.Now()
	// Two rounds: each waits the interval (jittered +10%), compares, and confirms after the grace.
	bound := 2*(interval+interval/10+grace) + 4*time.Second
	var last map[string]string
	e2e.Eventually(t, bound, func() error {
		var first map[string]string
		for i, n := range nodes {
			v, err := fullView(n)
			if err != nil {
				return err
			}
			if i == 0 {
				first = v
				continue
			}
			for k, want := range first {
				if v[k] != want {
					return fmt.Errorf("%s: %s has %q, %s has %q", k, a.Name, want, n.Name, v[k])
				}
			}
			if len(v) != len(first) {
				return fmt.Errorf("%s has %d instances, %s %d", n.Name, len(v), a.Name, len(first))
			}
		}
		last = first
		return nil
	})
	t.Logf("registries identical %s after the partition healed (bound %s): %v", time.Since(healed).Round(time.Millisecond), bound, last)
	if got := last["PART/p1"]; !strings.HasPrefix(got, "OUT_OF_SERVICE|OUT_OF_SERVICE|") {
		t.Errorf("p1 = %q, want the OUT_OF_SERVICE override kept everywhere", got)
	}
	if _, ok := last["PART/p3"]; ok {
		t.Error("p3, cancelled during the partition, is back")
	}
	if _, ok := last["PART/p4"]; !ok {
		t.Error("p4, registered during the partition, is missing")
	}
	if got := last["PART/p6"]; !strings.Contains(got, "|DOWN|") && !strings.Contains(got, "|OUT_OF_SERVICE|") {
		t.Errorf("p6 = %q, want one of the two overrides everywhere", got)
	}
}

// TestColdStartThreeNodesServeReads starts three nodes together with Eureka's startup timing
// (5 sync rounds 30 s apart, reads refused for 5 min after an empty sync): each finds only peers
// that are starting too, so the cluster is cold-starting and full reads must be served within
// 10 s, with one log line saying why.
func TestColdStartThreeNodesServeReads(t *testing.T) {
	extra := `
log { level = "info" }
cluster {
  startup_sync {
    retries         = 5
    retry_wait      = "30s"
    wait_when_empty = "5m"
  }
}
`
	ports := e2e.FreePorts(t, 3)
	var urls []string
	for _, p := range ports {
		urls = append(urls, urlOf(p))
	}
	start := time.Now()
	var nodes []*e2e.Node
	for i, p := range ports {
		n := e2e.NewNode(t, heraldBin, fmt.Sprintf("cold%d", i), p, clusterHCL(p, urls, extra))
		// Start waits for readiness, which here needs the other nodes: start all, then wait.
		n.StartNoWait()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		e2e.Eventually(t, 10*time.Second-time.Since(start), func() error {
			code, b, err := client.Do(context.Background(), "GET", n.URL()+"apps", "", nil, nil)
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("GET apps at %s: %d %.100s", n.Name, code, b)
			}
			return nil
		})
	}
	t.Logf("all three serve full reads %s after the first start", time.Since(start).Round(time.Millisecond))
	for _, n := range nodes {
		logs := n.Logs()
		if strings.Count(logs, "reads open") != 1 || !strings.Contains(logs, "cold start") {
			t.Errorf("%s: want one \"reads open\" line naming the cold start; logs:\n%s", n.Name, logs)
		}
		for _, m := range []string{"herald_cluster_cold_start", "herald_cluster_reads_open"} {
			if v, err := labelledSum(n, m); err != nil || v != 1 {
				t.Errorf("%s: %s = %v (%v), want 1", n.Name, m, v, err)
			}
		}
	}
}
