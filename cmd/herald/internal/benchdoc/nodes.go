package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/bench"
)

// heraldBinary builds ./cmd/herald once into a temporary directory.
var heraldBinary = func() func() (string, error) {
	var bin string
	return func() (string, error) {
		if bin != "" {
			return bin, nil
		}
		dir, err := os.MkdirTemp("", "benchdoc")
		if err != nil {
			return "", err
		}
		out := filepath.Join(dir, "herald")
		if b, err := exec.Command("go", "build", "-o", out, "./cmd/herald").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/herald: %v\n%s", err, b)
		}
		bin = out
		return bin, nil
	}
}()

// cluster is n `herald server` processes that know each other, as an operator would run them.
type cluster struct {
	procs []*exec.Cmd
	urls  []string
	dir   string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startCluster(n int) (*cluster, error) {
	bin, err := heraldBinary()
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	if c.dir, err = os.MkdirTemp("", "benchdoc-cluster"); err != nil {
		return nil, err
	}
	var ports []int
	for i := 0; i < n; i++ {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
		c.urls = append(c.urls, fmt.Sprintf("http://127.0.0.1:%d/eureka/", p))
	}
	for i, p := range ports {
		var peers []string
		if n > 1 {
			for _, u := range c.urls {
				peers = append(peers, strconv.Quote(u))
			}
		}
		hcl := fmt.Sprintf(`node {
  name = "bench-%d"
  port = %d
}
log { level = "warn" }
cluster {
  peers = [%s]
  startup_sync {
    retries         = 0
    wait_when_empty = "0s"
  }
}
`, i, p, strings.Join(peers, ", "))
		file := filepath.Join(c.dir, fmt.Sprintf("node%d.hcl", i))
		if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "server", "-config", file)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, err
		}
		c.procs = append(c.procs, cmd)
	}
	for _, u := range c.urls {
		if err := waitUp(u); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func waitUp(url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "apps"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", url)
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		_ = p.Wait()
	}
	os.RemoveAll(c.dir)
}

// heraldBench runs `herald bench -json -quiet ARGS URLS` and returns its result and command line.
func heraldBench(urls []string, args ...string) (*bench.Result, string, error) {
	bin, err := heraldBinary()
	if err != nil {
		return nil, "", err
	}
	full := append(append([]string{"bench"}, args...), urls...)
	cmdline := "herald " + strings.Join(full, " ")
	fmt.Fprintf(os.Stderr, "  $ %s\n", cmdline)
	cmd := exec.Command(bin, append(append([]string{"bench", "-json", "-quiet"}, args...), urls...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, cmdline, fmt.Errorf("%s: %w", cmdline, err)
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, cmdline, fmt.Errorf("%s: reading its JSON: %w", cmdline, err)
	}
	return &r, cmdline, nil
}

func memorySection() (string, error) {
	var b strings.Builder
	b.WriteString("## Memory per registered instance (RSS)\n\n" +
		"Fresh `herald server` processes; `herald bench -scenario memory` registers realistic instances\n" +
		"(URLs, both VIPs, a few metadata keys) at the first node, waits until every node holds them, and\n" +
		"reads each node's resident set size from its `/metrics` before and after. Target: ≤ 2 KiB per\n" +
		"instance above the empty node's RSS.\n\n")
	var cmds []string
	rows := "| nodes | instances | node | RSS before MiB | RSS after MiB | RSS per instance | Go heap per instance |\n|---|---|---|---|---|---|---|\n"
	for _, n := range []int{1, 3} {
		for _, count := range []int{10000, 100000} {
			c, err := startCluster(n)
			if err != nil {
				return "", err
			}
			r, cmd, err := heraldBench(c.urls, "-scenario", "memory", "-instances", strconv.Itoa(count), "-connections", "16")
			c.stop()
			if err != nil {
				return "", err
			}
			cmds = append(cmds, redact(cmd, c.urls))
			for i, m := range r.Memory {
				rows += fmt.Sprintf("| %d | %s | %d | %.1f | %.1f | **%s B** | %s B |\n", n, num(float64(count)), i+1,
					float64(m.RSSBefore)/(1<<20), float64(m.RSSAfter)/(1<<20), num(m.RSSPerInstance), num(m.HeapPerInstance))
			}
		}
	}
	b.WriteString(codeBlock(cmds...))
	b.WriteString(rows + "\n")
	return b.String(), nil
}

func benchToolSection() (string, error) {
	c, err := startCluster(3)
	if err != nil {
		return "", err
	}
	defer c.stop()
	var b strings.Builder
	b.WriteString("## `herald bench` against a three-node cluster\n\n" +
		"Three `herald server` processes with the default configuration, driven over HTTP by\n" +
		"`herald bench` (which works against any Eureka server, for comparison). Open-loop runs measure\n" +
		"latency from each request's intended start, so a stall is not hidden. The load generator shares\n" +
		"the two cores with the three nodes (and inflates every gzip response it fetches), so these\n" +
		"figures are lower than the Go benchmarks' above, which measure one node with nothing else running.\n\n")
	runs := []struct {
		label string
		urls  []string
		args  []string
	}{
		{"register, max rate, 1 node of 3", c.urls[:1], []string{"-scenario", "register", "-connections", "32", "-duration", "5s"}},
		{"heartbeat, max rate, 1 node of 3", c.urls[:1], []string{"-scenario", "heartbeat", "-connections", "32", "-duration", "5s"}},
		{"mixed at 2,000/s, all nodes", c.urls, []string{"-scenario", "mixed", "-rate", "2000", "-connections", "32", "-duration", "5s"}},
		{"fetch full /apps (1,000 instances)", c.urls[:1], []string{"-scenario", "fetch", "-fetch", "full", "-instances", "1000", "-connections", "16", "-duration", "5s"}},
		{"fetch delta", c.urls[:1], []string{"-scenario", "fetch", "-fetch", "delta", "-instances", "1000", "-connections", "16", "-duration", "5s"}},
		{"propagation at 500/s", c.urls, []string{"-scenario", "propagation", "-rate", "500", "-duration", "5s"}},
		{"propagation at 2,000/s", c.urls, []string{"-scenario", "propagation", "-rate", "2000", "-duration", "5s"}},
	}
	var cmds []string
	rows := "| run | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | propagation p50 / p99 ms |\n|---|---|---|---|---|---|---|---|---|\n"
	for _, r := range runs {
		res, cmd, err := heraldBench(r.urls, r.args...)
		if err != nil {
			return "", err
		}
		cmds = append(cmds, redact(cmd, c.urls))
		prop := "—"
		if res.Propagation != nil {
			prop = num(res.Propagation.P50) + " / " + num(res.Propagation.P99)
		}
		rows += fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", r.label, num(res.Throughput), num(res.Latency.P50),
			num(res.Latency.P90), num(res.Latency.P99), num(res.Latency.P999), num(res.Latency.Max), res.ErrorCount, prop)
	}
	b.WriteString(codeBlock(cmds...))
	b.WriteString(rows + "\n")
	return b.String(), nil
}

// redact replaces the cluster's random ports with those of `herald dev`, so the commands on the
// page can be pasted against a dev cluster.
func redact(cmd string, urls []string) string {
	for i, u := range urls {
		cmd = strings.ReplaceAll(cmd, u, fmt.Sprintf("http://127.0.0.1:%d/eureka/", 8761+i))
	}
	return cmd
}
