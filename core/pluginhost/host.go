// Package pluginhost runs herald's plugins as processes over go-plugin (gRPC, mutual TLS) and
// supervises them: a plugin that dies is noticed at once and restarted with backoff, and the calls
// it was serving fail as transient errors, so the replication pipeline puts their batches back at
// the front of the pending stage and no task is lost.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/heraldhq/herald/core/telemetry"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Spec is one plugin process to run, from a `plugin "KIND" "NAME" {}` block.
type Spec struct {
	Kind    string
	Name    string
	Command string
	Args    []string
	Env     []string
	// MaxProcs is the process's GOMAXPROCS (the plugin block's max_procs): nil takes
	// DefaultMaxProcs, 0 leaves Go's default (one per CPU, or GOMAXPROCS from herald's
	// environment). A GOMAXPROCS in Env wins.
	MaxProcs *int
	// SHA256 is the expected hex checksum of Command's binary ("" = not checked).
	SHA256 string
	// Config is the block's config {} data. The host checks it against the plugin's schema, then
	// hands it to the plugin's Configure as JSON.
	Config map[string]any
	// Defaults are config keys the node sets for a built-in plugin from its own settings
	// (replication.read_timeout for the http transport); the block's keys win.
	Defaults map[string]any
	// Source is where the block is ("config.hcl:42,1"), for error messages.
	Source string
	// KeyPos returns where a key of the config block was set ("config.hcl:44,5"), for error
	// messages; nil: Source.
	KeyPos func(path []string) string
	// FromText reports whether a config key was set as text (an environment variable or a -set
	// flag), so a string "7" is read as the number or bool the plugin's schema wants.
	FromText func(path []string) bool
	// New makes the plugin in-process (a built-in); nil runs Command as a plugin process.
	New func() any
	// ValidateOnly checks the plugin and its configuration and starts nothing (herald config
	// validate): the plugin is launched, described, checked and closed.
	ValidateOnly bool
	// Node identity and log level passed to Configure.
	NodeName, NodeURL, LogLevel string
	// Telemetry tells the plugin where to send its own spans.
	Telemetry sdk.Telemetry
	// Host is the host service the plugin may call back into (nil: none).
	Host sdk.Host
	// PeerAuth is the node's peer authentication, handed to the plugin at Configure.
	PeerAuth peerauth.Config
	// TracerProvider traces calls into the plugin (a client span per call made under a sampled
	// span, its context propagated as a W3C traceparent so the plugin's spans join the trace).
	// Nil: not traced.
	TracerProvider trace.TracerProvider
}

func (s Spec) String() string { return fmt.Sprintf("plugin %q %q (%s)", s.Kind, s.Name, s.Source) }

// State is a supervised plugin's condition.
type State string

// States a plugin goes through.
const (
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateStopped    State = "stopped"
)

// Health is what the host reports about a plugin process.
type Health struct {
	Kind, Name string
	State      State
	Restarts   int
	Pid        int
	LastError  string
	LastExit   time.Time
}

// Process is one supervised plugin process.
type Process struct {
	spec   Spec
	logger hclog.Logger

	mu       sync.Mutex
	client   *plugin.Client
	impl     any
	actions  []sdk.ActionSpec // an action handler's actions, read at the first start
	state    State
	restarts int
	lastErr  string
	lastExit time.Time
	backoff  time.Duration
	wake     chan struct{}
	// observe, when set (Metrics.Track, before the first call), records a call's latency.
	observe func(method string, d time.Duration)
	stop    chan struct{}
	done    chan struct{}
}

// DefaultMaxProcs is a plugin process's GOMAXPROCS unless its Spec says otherwise. A plugin
// process waits for the node most of the time and works briefly per call; with one P, a goroutine
// made runnable (gRPC's reader, the call, its network I/O, gRPC's writer) waits for the running
// thread instead of waking another, so each batch costs the machine fewer thread wakeups and
// context switches. Measured with the http transport on two cores: a quarter more writes/s and a
// fifth less CPU per write than with Go's default (BENCHMARKS.md).
const DefaultMaxProcs = 1

// maxProcsEnv is the GOMAXPROCS setting the process starts with, if any.
func (s Spec) maxProcsEnv() []string {
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return nil
		}
	}
	n := DefaultMaxProcs
	if s.MaxProcs != nil {
		n = *s.MaxProcs
	}
	if n <= 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(n)}
}

// Start launches the plugin, checks its handshake, kind and configuration, and supervises it
// until Stop. Every error names the plugin block's source.
func Start(ctx context.Context, spec Spec, logger hclog.Logger) (*Process, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	p := &Process{spec: spec, logger: logger.Named(spec.Kind + "." + spec.Name), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := p.launch(ctx, true); err != nil {
		return nil, err
	}
	go p.supervise()
	return p, nil
}

func (p *Process) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: %s", p.spec, fmt.Sprintf(format, a...))
}

func (p *Process) launch(ctx context.Context, first bool) error {
	path, err := exec.LookPath(p.spec.Command)
	if err != nil {
		return p.errorf("command %q not found: %v", p.spec.Command, err)
	}
	var secure *plugin.SecureConfig
	if p.spec.SHA256 != "" {
		sum, err := hex.DecodeString(p.spec.SHA256)
		if err != nil {
			return p.errorf("sha256: %v", err)
		}
		if err := checkSum(path, sum); err != nil {
			return p.errorf("%v", err)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	cmd := exec.Command(path, p.spec.Args...)
	cmd.Env = append(append(os.Environ(), p.spec.maxProcsEnv()...), p.spec.Env...)
	// Where the platform can (Linux), the plugin is killed when herald dies, also on SIGKILL;
	// sdk.Serve covers the rest.
	dieWithParent(cmd)
	dial := []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(sdk.MaxMessageBytes), grpc.MaxCallSendMsgSize(sdk.MaxMessageBytes)),
		grpc.WithInitialWindowSize(sdk.WindowBytes), grpc.WithInitialConnWindowSize(sdk.WindowBytes)}
	if p.spec.TracerProvider != nil {
		dial = append(dial, grpc.WithStatsHandler(telemetry.SampledOnly(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(p.spec.TracerProvider), otelgrpc.WithPropagators(telemetry.Propagator)))))
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: sdk.PluginMap()},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           p.logger,
		StartTimeout:     10 * time.Second,
		GRPCDialOptions:  dial,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return p.errorf("cannot start %s: %v", path, err)
	}
	raw, err := rpc.Dispense(p.spec.Kind)
	if err != nil {
		client.Kill()
		return p.errorf("%v", err)
	}
	if err := configure(ctx, p.spec, raw, p.logger); err != nil {
		client.Kill()
		return err
	}
	if p.spec.ValidateOnly {
		client.Kill()
		return nil
	}
	p.mu.Lock()
	p.client, p.impl, p.state = client, raw, StateRunning
	if h, ok := raw.(sdk.ActionHandler); ok && first {
		p.actions = h.Actions()
	}
	p.mu.Unlock()
	if !first {
		p.logger.Info("plugin restarted", "restarts", p.restarts)
	}
	return nil
}

func checkSum(path string, want []byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	got := sha256.Sum256(b)
	if hex.EncodeToString(got[:]) != hex.EncodeToString(want) {
		return fmt.Errorf("checksum mismatch for %s: file has sha256 %x, the configuration expects %x", path, got, want)
	}
	return nil
}

// supervise watches the process and restarts it when it exits, with exponential backoff
// (100 ms doubling to 10 s, reset after a minute of good health).
func (p *Process) supervise() {
	defer close(p.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.wake:
		}
		p.mu.Lock()
		c := p.client
		p.mu.Unlock()
		if c != nil && !c.Exited() {
			continue
		}
		p.mu.Lock()
		p.state, p.lastExit = StateRestarting, time.Now()
		p.restarts++
		if p.backoff == 0 {
			p.backoff = 100 * time.Millisecond
		}
		delay := p.backoff
		p.backoff = min(2*p.backoff, 10*time.Second)
		p.mu.Unlock()
		p.logger.Warn("plugin process exited; restarting", "restarts", p.restarts, "in", delay)
		select {
		case <-p.stop:
			return
		case <-time.After(delay):
		}
		if err := p.launch(context.Background(), false); err != nil {
			p.mu.Lock()
			p.lastErr, p.client = err.Error(), nil
			p.mu.Unlock()
			p.logger.Error("plugin restart failed", "error", err)
			continue
		}
		go p.resetBackoffLater()
	}
}

func (p *Process) resetBackoffLater() {
	select {
	case <-p.stop:
	case <-time.After(time.Minute):
		p.mu.Lock()
		if p.state == StateRunning {
			p.backoff = 0
		}
		p.mu.Unlock()
	}
}

// current returns the live implementation, or nil while the plugin is restarting.
func (p *Process) current() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || p.client.Exited() || p.state != StateRunning {
		return nil
	}
	return p.impl
}

// timed returns the function that records a call's latency when it returns.
func (p *Process) timed(method string) func() {
	if p.observe == nil {
		return func() {}
	}
	start := time.Now()
	return func() { p.observe(method, time.Since(start)) }
}

func (p *Process) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Health reports the plugin's state.
func (p *Process) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := Health{Kind: p.spec.Kind, Name: p.spec.Name, State: p.state, Restarts: p.restarts, LastError: p.lastErr, LastExit: p.lastExit}
	if p.client != nil {
		if rc := p.client.ReattachConfig(); rc != nil {
			h.Pid = rc.Pid
		}
	}
	return h
}

// Stop kills the plugin process and ends supervision.
func (p *Process) Stop() {
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	c := p.client
	p.state = StateStopped
	p.mu.Unlock()
	if c != nil {
		c.Kill()
	}
}

var errRestarting = errors.New("plugin is restarting")

// Transport returns a sdk.Transport backed by the plugin. While the plugin is down, sends fail as
// transient, so their batches are retried once it is back.
func (p *Process) Transport() sdk.Transport { return supervisedTransport{p} }

type supervisedTransport struct{ p *Process }

func (s supervisedTransport) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error) {
	t, _ := s.p.current().(sdk.Transport)
	if t == nil {
		return nil, sdk.Fail(sdk.Transient, fmt.Errorf("%s: %w", s.p.spec, errRestarting))
	}
	defer s.p.timed("Send")()
	res, err := t.Send(ctx, peer, b)
	if err != nil && sdk.ClassOf(err) == sdk.Transient {
		s.p.poke() // maybe the process died: look now rather than at the next tick
	}
	return res, err
}

// FlushPolicy returns a sdk.FlushPolicy backed by the plugin.
func (p *Process) FlushPolicy() sdk.FlushPolicy { return supervisedPolicy{p} }

type supervisedPolicy struct{ p *Process }

func (s supervisedPolicy) Decide(ctx context.Context, st sdk.PendingState) (sdk.FlushDecision, error) {
	f, _ := s.p.current().(sdk.FlushPolicy)
	if f == nil {
		return sdk.FlushDecision{}, sdk.Fail(sdk.Transient, fmt.Errorf("%s: %w", s.p.spec, errRestarting))
	}
	defer s.p.timed("Decide")()
	d, err := f.Decide(ctx, st)
	if err != nil {
		s.p.poke()
	}
	return d, err
}

// ActionHandler returns a sdk.ActionHandler backed by the plugin. Its actions are those it
// declared at its first start. While the plugin is down, calls fail: a client's registration is
// answered 503 (clients retry) and an inbound batch is refused with 503 (the sender retries it).
func (p *Process) ActionHandler() sdk.ActionHandler { return supervisedHandler{p} }

type supervisedHandler struct{ p *Process }

func (s supervisedHandler) Actions() []sdk.ActionSpec {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.actions
}

func (s supervisedHandler) live() (sdk.ActionHandler, error) {
	h, _ := s.p.current().(sdk.ActionHandler)
	if h == nil {
		return nil, sdk.Fail(sdk.Transient, fmt.Errorf("%s: %w", s.p.spec, errRestarting))
	}
	return h, nil
}

func (s supervisedHandler) Accept(ctx context.Context, it sdk.Item) (sdk.Item, error) {
	h, err := s.live()
	if err != nil {
		return it, err
	}
	defer s.p.timed("Accept")()
	out, err := h.Accept(ctx, it)
	if err != nil && sdk.ClassOf(err) == sdk.Transient {
		s.p.poke()
	}
	return out, err
}

func (s supervisedHandler) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	h, err := s.live()
	if err != nil {
		return nil, err
	}
	defer s.p.timed("Receive")()
	rs, err := h.Receive(ctx, req)
	if err != nil && sdk.ClassOf(err) == sdk.Transient {
		s.p.poke()
	}
	return rs, err
}
