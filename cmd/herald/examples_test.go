package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

var (
	examplesOnce sync.Once
	examplesDir  string
	examplesErr  error
)

// exampleBinary builds one of the repository's example plugins (once per test run, into the
// run's directory, which TestMain removes).
func exampleBinary(t testing.TB, name string) string {
	t.Helper()
	examplesOnce.Do(func() {
		examplesDir = filepath.Join(testDir, "examples")
		if examplesErr = os.Mkdir(examplesDir, 0o755); examplesErr != nil {
			return
		}
		for _, ex := range []string{"audit", "admission", "transport-custom", "flush-custom"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(examplesDir, ex), "./examples/"+ex)
			cmd.Dir = filepath.Join("..", "..")
			if out, err := cmd.CombinedOutput(); err != nil {
				examplesErr = fmt.Errorf("go build ./examples/%s: %v\n%s", ex, err, out)
				return
			}
		}
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return filepath.Join(examplesDir, name)
}

// A three-node cluster whose transport, flush policy and action handlers are the repository's
// example plugins, each an external process built from its own main package: an admission policy
// refuses a registration at the accepting node; accepted ones reach every peer over the custom
// transport and are written to each peer's audit trail; a kill -9 of a transport plugin under
// load loses no acknowledged write.
func TestExamplePlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hcl := func(node string) string {
		return fmt.Sprintf(`
plugin "transport" "jsonline" {
  command = %q
  config {
    timeout = "2s"
  }
}
plugin "flush_policy" "window" {
  command = %q
  config {
    window = "2ms"
  }
}
plugin "action_handler" "admission" {
  command = %q
  config {
    app_pattern = "^[A-Z]+$"
  }
}
plugin "action_handler" "audit" {
  command = %q
  config {
    path = %q
  }
}
replication {
  transport       = "jsonline"
  flush_policy    = "window"
  action_handlers = ["admission", "eureka", "audit"]
}
`, exampleBinary(t, "transport-custom"), exampleBinary(t, "flush-custom"), exampleBinary(t, "admission"),
			exampleBinary(t, "audit"), filepath.Join(dir, node+".jsonl"))
	}
	ports := e2e.FreePorts(t, 3)
	var urls []string
	for _, p := range ports {
		urls = append(urls, urlOf(p))
	}
	nodes := make([]*e2e.Node, 3)
	for i, p := range ports {
		nodes[i] = e2e.NewNode(t, heraldBin, fmt.Sprintf("node%d", i), p, clusterHCL(p, urls, hcl(fmt.Sprintf("node%d", i))))
		nodes[i].Start()
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		if got := len(e2e.Children(n.Pid(), examplesDir)); got != 4 {
			t.Fatalf("%s runs %d example plugin processes, want 4", n.Name, got)
		}
	}

	code, body := do(t, "POST", a.URL()+"apps/SVC9", e2e.InstanceJSON("SVC9", "x1", 1000, "UP", nil), nil)
	if code != 422 || !strings.Contains(string(body), `application name "SVC9" does not match`) {
		t.Fatalf("the admission handler should refuse SVC9 with 422, got %d %q", code, body)
	}

	register(t, a, "AUDITED", "a1", 1000, nil)
	visibleOn(t, "AUDITED", "a1", b, c)
	for _, n := range []string{"node1", "node2"} {
		e2e.Eventually(t, 10*time.Second, func() error {
			trail, _ := os.ReadFile(filepath.Join(dir, n+".jsonl"))
			if !strings.Contains(string(trail), `"action":"Register","app":"AUDITED","id":"a1"`) {
				return fmt.Errorf("%s's audit trail lacks the registration:\n%s", n, trail)
			}
			return nil
		})
	}
	if _, ok, _ := instance(t, b, "SVC9", "x1"); ok {
		t.Fatal("a refused registration reached a peer")
	}

	l := &load{acked: map[string]bool{}, targets: []*e2e.Node{a}}
	stop, done := make(chan struct{}), make(chan struct{})
	go l.run(stop, done)
	l.waitMore(t, 30)
	old := pluginProcess(t, a, filepath.Join(examplesDir, "transport-custom"))
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.waitMore(t, 30) // writes acknowledged while the transport restarts
	close(stop)
	<-done
	if pluginProcess(t, a, filepath.Join(examplesDir, "transport-custom")) == old {
		t.Fatal("the transport plugin was not restarted")
	}
	l.mu.Lock()
	acked := l.acked
	l.mu.Unlock()
	e2e.Eventually(t, 30*time.Second, func() error { return sameRegistries(nodes, acked) })
	t.Logf("%d acknowledged writes reached both peers across a kill -9 of the custom transport plugin", len(acked))
}
