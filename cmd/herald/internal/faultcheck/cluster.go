package faultcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// cluster is the nodes under test and the links between them: links[i][j] carries node i's
// traffic to node j (nil for i == j), so partitions cut peers apart while clients, which talk to
// the nodes directly, still reach every node.
type cluster struct {
	nodes []*e2e.Node
	links [][]*Link
}

// defaultMaxBody is herald's default http.max_body_bytes.
const defaultMaxBody = 1 << 20

func nodeHCL(port int, peers []string, maxBody int, extra string) string {
	q := make([]string, len(peers))
	for i, p := range peers {
		q[i] = strconv.Quote(p)
	}
	if maxBody != defaultMaxBody {
		extra = fmt.Sprintf("http { max_body_bytes = %d }\n", maxBody) + extra
	}
	return fmt.Sprintf(`
node {
  name = "node-%d"
  port = %d
}
log { level = "warn" }
response_cache { use_read_only = false }
cluster {
  peers = [%s]
  startup_sync {
    retries         = 1
    retry_wait      = "200ms"
    wait_when_empty = "0s"
  }
  anti_entropy { interval = "1s" }
}
replication {
  batching_delay              = "2ms"
  network_failure_retry_delay = "50ms"
  congestion_retry_delay      = "200ms"
  connect_timeout             = "500ms"
  read_timeout                = "2s"
}
%s`, port, port, strings.Join(q, ", "), extra)
}

func startCluster(t testing.TB, bin string, n, maxBody int, extra string, env []string) *cluster {
	t.Helper()
	ports := e2e.FreePorts(t, n)
	c := &cluster{links: make([][]*Link, n)}
	for i := range n {
		c.links[i] = make([]*Link, n)
		for j := range n {
			if i == j {
				continue
			}
			l, err := NewLink(fmt.Sprintf("127.0.0.1:%d", ports[j]))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.Close)
			c.links[i][j] = l
		}
	}
	for i, p := range ports {
		var peers []string
		for j := range n {
			if i == j {
				peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d/eureka/", p))
			} else {
				peers = append(peers, c.links[i][j].URL())
			}
		}
		c.nodes = append(c.nodes, e2e.NewNode(t, bin, fmt.Sprintf("node%d", i), p, nodeHCL(p, peers, maxBody, extra)))
	}
	for _, nd := range c.nodes {
		nd.Env = append(nd.Env, env...)
		nd.Start()
	}
	return c
}

// linksOf returns every link to and from node i.
func (c *cluster) linksOf(i int) []*Link {
	var out []*Link
	for j := range c.nodes {
		if j != i {
			out = append(out, c.links[i][j], c.links[j][i])
		}
	}
	return out
}

func (c *cluster) healLinks() {
	for _, row := range c.links {
		for _, l := range row {
			if l != nil {
				l.Heal()
			}
		}
	}
}

// rss returns a process's resident set size in bytes (VmRSS of /proc/PID/status; 0 if unknown).
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, _ := strconv.ParseInt(fields[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// registry reads a node's whole registry through GET /eureka/apps (JSON).
func registry(ctx context.Context, hc *http.Client, n *e2e.Node) (map[string]State, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.URL()+"apps", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET apps at %s: %d %.200s", n.Name, resp.StatusCode, b)
	}
	var doc struct {
		Applications struct {
			Application []struct {
				Name     string          `json:"name"`
				Instance json.RawMessage `json:"instance"`
			} `json:"application"`
		} `json:"applications"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("GET apps at %s: %w", n.Name, err)
	}
	type inst struct {
		InstanceID         string            `json:"instanceId"`
		Status             string            `json:"status"`
		OverriddenStatus   string            `json:"overriddenStatus"`
		OverriddenLow      string            `json:"overriddenstatus"`
		LastDirtyTimestamp json.Number       `json:"lastDirtyTimestamp"`
		Metadata           map[string]string `json:"metadata"`
	}
	out := map[string]State{}
	for _, a := range doc.Applications.Application {
		var list []inst
		if len(a.Instance) > 0 && a.Instance[0] == '{' { // a single instance may come unwrapped
			var one inst
			if err := json.Unmarshal(a.Instance, &one); err != nil {
				return nil, err
			}
			list = []inst{one}
		} else if err := json.Unmarshal(a.Instance, &list); err != nil {
			return nil, err
		}
		for _, i := range list {
			ldt, _ := strconv.ParseInt(string(i.LastDirtyTimestamp), 10, 64)
			ov := i.OverriddenStatus
			if ov == "" {
				ov = i.OverriddenLow
			}
			delete(i.Metadata, "@class")
			keys := make([]string, 0, len(i.Metadata))
			for k := range i.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var meta strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&meta, "%q=%q;", k, i.Metadata[k])
			}
			out[strings.ToUpper(a.Name)+"/"+i.InstanceID] = State{Present: true, Status: i.Status, Overridden: ov,
				LDT: ldt, V: i.Metadata["v"], Pad: len(i.Metadata["pad"]), Meta: meta.String()}
		}
	}
	return out, nil
}

// instanceJSON is a registration body. The lease lasts an hour, so that no instance expires during
// a run and eviction never competes with the operations under test.
func instanceJSON(app, id string, ts int64, writer int, pad int) []byte {
	md := fmt.Sprintf(`{"v":"%d","w":"%d"`, ts, writer)
	if pad > 0 {
		md += `,"pad":"` + strings.Repeat("x", pad) + `"`
	}
	md += "}"
	return []byte(fmt.Sprintf(`{"instance":{"instanceId":%q,"hostName":"host-%s","app":%q,"ipAddr":"10.0.0.1","status":"UP",`+
		`"port":{"$":8080,"@enabled":"true"},"securePort":{"$":8443,"@enabled":"false"},"countryId":1,`+
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":3600},"metadata":%s,"vipAddress":%q,`+
		`"lastDirtyTimestamp":"%d"}}`, id, id, app, md, strings.ToLower(app), ts))
}

// clientTimeout bounds every client request: a request to a paused node ends with Unknown.
const clientTimeout = 2 * time.Second
