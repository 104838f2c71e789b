package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// consecutivePorts finds n free consecutive ports on 127.0.0.1 (herald dev takes a base port).
func consecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := e2e.FreePorts(t, 1)[0]
		if base+n > 65535 {
			continue
		}
		var ls []net.Listener
		ok := true
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports")
	return 0
}

// herald dev runs with peer authentication on: a forged Cancel posted to node 1's batch endpoint
// without credentials is refused and the instance stays on every node, while the README's plain
// HTTP client calls work.
func TestDevRefusesForgedCancel(t *testing.T) {
	t.Parallel()
	base := consecutivePorts(t, 3)
	cmd := exec.Command(heraldBin, "dev", "-port", fmt.Sprint(base), "-log-level", "warn")
	cmd.Env = append(cmd.Environ(), "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	started := make(chan string, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Press Ctrl-C") {
				started <- seen.String()
			}
		}
	}()
	select {
	case banner := <-started:
		if !strings.Contains(banner, fmt.Sprintf("http://127.0.0.1:%d/eureka/", base)) {
			t.Fatalf("banner:\n%s", banner)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("herald dev did not start")
	}
	nodes := make([]*e2e.Node, 3)
	for i := range nodes {
		nodes[i] = &e2e.Node{Name: fmt.Sprintf("node-%d", i+1), Port: base + i}
	}
	ts := time.Now().UnixMilli()
	code, b := do(t, "POST", nodes[0].URL()+"apps/VICTIM", e2e.InstanceJSON("VICTIM", "v-1", ts, "UP", nil), nil)
	if code != 204 {
		t.Fatalf("register: %d %s", code, b)
	}
	visibleOn(t, "VICTIM", "v-1", nodes...)
	forged := []byte(`{"replicationList":[{"appName":"VICTIM","id":"v-1","action":"Cancel"}]}`)
	code, b, err = client.Do(context.Background(), "POST", nodes[0].URL()+"peerreplication/batch", "application/json", forged, nil)
	if err != nil || code != 403 {
		t.Fatalf("forged Cancel: %d %s %v, want 403", code, b, err)
	}
	for _, n := range nodes {
		before := aeExchanges(t, e2e.DefaultClient, n)
		e2e.Eventually(t, time.Minute, func() error { // two anti-entropy rounds on n
			if v := aeExchanges(t, e2e.DefaultClient, n); v < before+4 {
				return fmt.Errorf("%v exchanges so far", v-before)
			}
			return nil
		})
		if _, ok, err := instance(t, n, "VICTIM", "v-1"); err != nil || !ok {
			t.Fatalf("VICTIM/v-1 gone from %s after a forged Cancel (%v)", n.Name, err)
		}
	}
}
