// Package e2e starts real herald processes for end-to-end tests: it builds the binary once, writes
// each node's HCL configuration, starts and kills nodes (SIGKILL included), and offers a small
// Eureka HTTP client and a fault-injecting TCP proxy for partition tests.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/sdk/peerauth"
)

// Build compiles ./cmd/herald into dir and returns the binary's path. Call it once from TestMain.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "herald")
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/herald")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/herald: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// claimed holds every port FreePorts or Claim handed out in this process, so that tests running
// in parallel never get the same port.
var claimed = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Claim marks port as taken by the caller; it reports false when the port was already handed out
// in this process or is not free now.
func Claim(port int) bool {
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.ports[port] {
		return false
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	claimed.ports[port] = true
	return true
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, none of which was handed out before
// in this process (tests that run in parallel do not collide).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	claimed.Lock()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			claimed.Unlock()
			t.Fatal(err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if claimed.ports[p] {
			continue
		}
		claimed.ports[p] = true
		ports = append(ports, p)
	}
	claimed.Unlock()
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// ClusterSecret is the cluster secret every node gets through SecretEnv unless OwnPeerAuth is set.
var ClusterSecret = peerauth.NewSecret()

// SecretEnv is the environment variable that sets cluster.peer_auth.secret.
const SecretEnv = "HERALD_CLUSTER__PEER_AUTH__SECRET"

// Node is one herald process.
type Node struct {
	// HTTPS, when set, means the node serves TLS: its URLs are https and this client (trusting
	// the node's CA) checks its readiness.
	HTTPS *Client
	// OwnPeerAuth keeps the harness from giving the node the shared ClusterSecret: the test's
	// configuration sets peer authentication itself.
	OwnPeerAuth bool
	t           testing.TB
	Bin         string
	Name        string
	Port        int
	Config      string // path of the HCL file
	Env         []string
	// Tmp is the node's TMPDIR (plugin processes put their unix sockets there); it is removed
	// when the test ends.
	Tmp string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *logBuffer // every start's output, kept across restarts
	done chan struct{}
}

// URL is the node's Eureka base URL (with /eureka/).
func (n *Node) URL() string { return n.Root() + "/eureka/" }

// Root is the node's root URL.
func (n *Node) Root() string {
	if n.HTTPS != nil {
		return fmt.Sprintf("https://127.0.0.1:%d", n.Port)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", n.Port)
}

// NewNode writes hcl as the node's config file and returns the (not yet started) node. The node's
// process and its plugin processes are killed, and their files removed, when the test ends.
func NewNode(t testing.TB, bin, name string, port int, hcl string) *Node {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	// A short directory of its own for TMPDIR: go-plugin puts each plugin's unix socket there
	// (a socket path may not exceed 108 bytes), and a plugin killed with its host leaves it behind.
	tmp, err := os.MkdirTemp("", "hp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	n := &Node{t: t, Bin: bin, Name: name, Port: port, Config: path, Tmp: tmp}
	t.Cleanup(func() { n.Kill() }) // runs before the removals above
	return n
}

// env is the node process's environment.
func (n *Node) env() []string {
	env := append(os.Environ(), "TMPDIR="+n.Tmp, "PLUGIN_UNIX_SOCKET_DIR="+n.Tmp)
	if !n.OwnPeerAuth {
		// Every node of a test process shares one cluster secret, so nodes authenticate to each
		// other as they must in production.
		env = append(env, SecretEnv+"="+ClusterSecret)
	}
	return append(env, n.Env...)
}

// StartTimeout bounds how long Start waits for a node to become ready. It is generous: tests run
// in parallel on small, busy machines.
var StartTimeout = 60 * time.Second

// Start starts the process and waits until it is ready (GET /health/ready answers 200: startup
// sync done, reads served, plugins up).
func (n *Node) Start() {
	n.t.Helper()
	n.StartNoWait()
	n.WaitReady(StartTimeout)
}

// StartNoWait starts the process and returns at once.
func (n *Node) StartNoWait() {
	n.t.Helper()
	n.mu.Lock()
	cmd := exec.Command(n.Bin, "server", "-config", n.Config)
	cmd.Env = n.env()
	if n.logs == nil {
		n.logs = &logBuffer{}
	} else {
		// A restart: the log goes on, so that what happened before stays readable.
		fmt.Fprintf(n.logs, "--- %s restarted ---\n", n.Name)
	}
	w := n.logs
	cmd.Stdout, cmd.Stderr = w, w
	newProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		n.t.Fatalf("start %s: %v", n.Name, err)
	}
	n.cmd = cmd
	done := make(chan struct{})
	n.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Unlock()
}

// ready returns nil once the node answers GET /health/ready with 200, and an error saying why not
// otherwise (the body names the conditions not met yet).
func (n *Node) ready() error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return fmt.Errorf("%s exited:\n%s", n.Name, n.Logs())
	default:
	}
	c := DefaultClient
	if n.HTTPS != nil {
		c = n.HTTPS
	}
	code, body, err := c.Do(context.Background(), "GET", n.Root()+"/health/ready", "", nil, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s not ready: %d %s", n.Name, code, body)
	}
	return nil
}

// WaitReady waits until the node is ready, as Start does; it fails the test at once if the
// process exits.
func (n *Node) WaitReady(timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := n.ready()
		if err == nil {
			return
		}
		select {
		case <-n.Exited():
			n.t.Fatalf("%s exited before it was ready (%v):\n%s", n.Name, err, n.Logs())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s not ready within %v: %v", n.Name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exited is closed when the node's process has exited (nil before Start).
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// Kill sends SIGKILL to the node's process group (the node and its plugin processes) and waits.
func (n *Node) Kill() { n.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a graceful exit.
func (n *Node) Stop() { n.signal(syscall.SIGTERM) }

// KillNodeOnly sends SIGKILL to the node process alone, leaving its children (plugin processes) to
// notice on their own.
func (n *Node) KillNodeOnly() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if sig == syscall.SIGKILL {
		killGroup(cmd, sig)
	} else {
		_ = cmd.Process.Signal(sig)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		killGroup(cmd, syscall.SIGKILL)
		<-done
	}
}

// Signal sends sig to the node process.
func (n *Node) Signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		_ = n.cmd.Process.Signal(sig)
	}
}

// Rewrite replaces the node's configuration file (for reload tests).
func (n *Node) Rewrite(hcl string) {
	n.t.Helper()
	if err := os.WriteFile(n.Config, []byte(hcl), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// Pid returns the node's process id (0 when not running).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Logs returns what the node printed so far.
func (n *Node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.logs == nil {
		return ""
	}
	return n.logs.String()
}

// logBuffer collects a process's output; the process writes while tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// MinTimeout is the least time Eventually gives a condition. Tests run in parallel on small, busy
// machines (CI has two cores), where a condition that takes a second on an idle laptop can take
// twenty; a generous deadline costs nothing when the condition is met early.
const MinTimeout = 30 * time.Second

// Eventually polls f until it returns nil or the timeout (at least MinTimeout) passes.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	timeout = max(timeout, MinTimeout)
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Proxy is a TCP proxy that can cut and heal the connection to its target, for partition tests.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:port (0 for any) and forwards to target.
func NewProxy(t testing.TB, port int, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's listen address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut refuses new connections and breaks the open ones, as a partition would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Client is a small Eureka HTTP client for tests.
type Client struct {
	HTTP *http.Client
}

// DefaultClient has short timeouts.
var DefaultClient = &Client{HTTP: &http.Client{Timeout: 5 * time.Second}}

// PeerClient signs every request with ClusterSecret as a peer node named "test-peer" would: the
// nodes take its replication header and batches as a peer's.
var PeerClient = func() *Client {
	s, err := peerauth.NewSigner("test-peer", ClusterSecret)
	if err != nil {
		panic(err)
	}
	return &Client{HTTP: &http.Client{Timeout: 5 * time.Second, Transport: &peerauth.SigningTransport{Signer: s}}}
}()

// Do sends a request and returns the status code and body.
func (c *Client) Do(ctx context.Context, method, url, contentType string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// InstanceJSON returns a Spring-Cloud-like registration body.
func InstanceJSON(app, id string, lastDirty int64, status string, metadata map[string]string) []byte {
	md := `{"@class":"java.util.Collections$EmptyMap"}`
	if len(metadata) > 0 {
		var parts []string
		for k, v := range metadata {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
		md = "{" + strings.Join(parts, ",") + "}"
	}
	return []byte(fmt.Sprintf(`{"instance":{"instanceId":%q,"hostName":"host-%s","app":%q,"ipAddr":"10.0.0.1","status":%q,`+
		`"port":{"$":8080,"@enabled":"true"},"securePort":{"$":8443,"@enabled":"false"},"countryId":1,`+
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":%s,"vipAddress":%q,`+
		`"lastDirtyTimestamp":"%d"}}`, id, id, app, status, md, strings.ToLower(app), lastDirty))
}

// Children returns the pids of the processes whose parent is pid and whose command line contains
// match (read from /proc; Linux only).
func Children(pid int, match string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may contain spaces: fields follow the last ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), match) {
			out = append(out, child)
		}
	}
	return out
}

// Alive reports whether a process exists (and is not a zombie).
func Alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// Run runs the node's server command to completion (for start-up failures) and returns its exit
// code and output.
func (n *Node) Run(timeout time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Bin, "server", "-config", n.Config)
	cmd.Env = n.env()
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return code, string(out)
}
