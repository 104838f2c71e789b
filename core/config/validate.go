package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/clientauth"
	"github.com/heraldhq/herald/core/telemetry"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// Validate checks values and relations between them, reporting every problem with its position.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, a ...any) {
		errs = append(errs, &Error{Pos: c.Pos(key), Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	badAt := func(kp []string, format string, a ...any) {
		errs = append(errs, &Error{Pos: c.posOf(kp), Key: strings.Join(kp, "."), Msg: fmt.Sprintf(format, a...)})
	}
	between := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "must be between %d and %d (got %d)", lo, hi, v)
		}
	}
	if c.Node.Port < 0 || c.Node.Port > 65535 {
		bad("node.port", "must be between 0 and 65535 (got %d)", c.Node.Port)
	}
	if c.Node.AdvertiseURL != "" {
		if err := checkURL(c.Node.AdvertiseURL); err != nil {
			bad("node.advertise_url", "%v", err)
		}
	}
	if hclog.LevelFromString(c.Log.Level) == hclog.NoLevel {
		bad("log.level", "must be one of trace, debug, info, warn, error (got %q)", c.Log.Level)
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "must be at least 1024 (got %d)", c.HTTP.MaxBodyBytes)
	}
	if c.ResponseCache.MaxBytes < 64<<10 {
		bad("response_cache.max_bytes", "must be at least 65536 (got %d)", c.ResponseCache.MaxBytes)
	}
	if c.HTTP.ShutdownDelay < 0 {
		bad("http.shutdown_delay", "must not be negative (got %v)", c.HTTP.ShutdownDelay)
	}
	r := c.Registry
	if r.RenewalPercentThreshold <= 0 || r.RenewalPercentThreshold > 1 {
		bad("registry.renewal_percent_threshold", "must be in (0, 1] (got %v)", r.RenewalPercentThreshold)
	}
	for key, d := range map[string]int64{
		"registry.expected_client_renewal_interval":  int64(r.ExpectedClientRenewalInterval),
		"registry.renewal_threshold_update_interval": int64(r.RenewalThresholdUpdateInterval),
		"registry.eviction_interval":                 int64(r.EvictionInterval),
		"registry.delta_retention":                   int64(r.DeltaRetention),
		"registry.delta_retention_interval":          int64(r.DeltaRetentionInterval),
		"registry.override_expiry":                   int64(r.OverrideExpiry),
		"registry.tombstone_ttl":                     int64(r.TombstoneTTL),
		"registry.max_clock_skew":                    int64(r.MaxClockSkew),
		"response_cache.update_interval":             int64(c.ResponseCache.UpdateInterval),
		"response_cache.auto_expiration":             int64(c.ResponseCache.AutoExpiration),
		"cluster.peer_update_interval":               int64(c.Cluster.PeerUpdateInterval),
		"cluster.anti_entropy.interval":              int64(c.Cluster.AntiEntropy.Interval),
		"replication.max_time_for_replication":       int64(c.Replication.MaxTimeForReplication),
		"replication.connect_timeout":                int64(c.Replication.ConnectTimeout),
		"replication.read_timeout":                   int64(c.Replication.ReadTimeout),
	} {
		if d <= 0 {
			bad(key, "must be greater than zero")
		}
	}
	for i, p := range c.Cluster.Peers {
		if err := checkURL(p); err != nil {
			badAt([]string{"cluster", "peers", fmt.Sprint(i)}, "%v", err)
		}
	}
	if c.Cluster.SelfURL != "" {
		if err := checkURL(c.Cluster.SelfURL); err != nil {
			bad("cluster.self_url", "%v", err)
		}
	}
	if c.Cluster.DNS.Name != "" && !c.Cluster.DNS.SRV {
		between("cluster.dns.port", c.Cluster.DNS.Port, 1, 65535)
	}
	if c.Cluster.StartupSync.Retries < 0 {
		bad("cluster.startup_sync.retries", "must not be negative (got %d)", c.Cluster.StartupSync.Retries)
	}
	c.validateTrust(bad)
	rp := c.Replication
	between("replication.max_batch_size", rp.MaxBatchSize, 1, 10000)
	between("replication.max_buffer_size", rp.MaxBufferSize, 1, 10_000_000)
	between("replication.workers", rp.Workers, 1, 1000)
	if rp.MaxBatchSize > rp.MaxBufferSize {
		bad("replication.max_batch_size", "must not exceed replication.max_buffer_size (%d > %d)", rp.MaxBatchSize, rp.MaxBufferSize)
	}
	// Every batch, and the largest registration the node admits (max_batch_bytes, checked on each
	// one), must fit in what peers with the same http block accept; and in the pending buffer.
	switch {
	case rp.MaxBatchBytes < 4096:
		bad("replication.max_batch_bytes", "must be at least 4096, room for one registration (got %d)", rp.MaxBatchBytes)
	case rp.MaxBatchBytes >= c.HTTP.MaxBodyBytes:
		bad("replication.max_batch_bytes", "must be less than http.max_body_bytes (%d >= %d): peers with the same limit "+
			"would refuse a full batch, and a registration this node admits, with 413", rp.MaxBatchBytes, c.HTTP.MaxBodyBytes)
	}
	if rp.MaxBufferBytes < rp.MaxBatchBytes {
		bad("replication.max_buffer_bytes", "must be at least replication.max_batch_bytes (%d < %d), so that the largest "+
			"registration fits in the buffer", rp.MaxBufferBytes, rp.MaxBatchBytes)
	}
	if rp.Transport == "" {
		bad("replication.transport", "must name a transport plugin")
	}
	if rp.FlushPolicy == "" {
		bad("replication.flush_policy", "must name a flush policy plugin")
	}
	for u, pt := range rp.Peers {
		kp := []string{"replication", "peer", u}
		if err := checkURL(u); err != nil {
			badAt(kp, "%v", err)
		}
		if pt.MaxBatchSize != nil && (*pt.MaxBatchSize < 1 || *pt.MaxBatchSize > 10000) {
			badAt(append(kp, "max_batch_size"), "must be between 1 and 10000 (got %d)", *pt.MaxBatchSize)
		}
		if pt.Workers != nil && (*pt.Workers < 1 || *pt.Workers > 1000) {
			badAt(append(kp, "workers"), "must be between 1 and 1000 (got %d)", *pt.Workers)
		}
		if pt.MaxBufferSize != nil && *pt.MaxBufferSize < 1 {
			badAt(append(kp, "max_buffer_size"), "must be at least 1 (got %d)", *pt.MaxBufferSize)
		}
		if a := pt.TransportAddress; a != "" {
			if err := checkHostPort(a); err != nil {
				badAt(append(kp, "transport_address"), "%v", err)
			}
		}
	}
	t := c.Telemetry.Tracing
	if t.Exporter != "otlp-grpc" && t.Exporter != "otlp-http" {
		bad("telemetry.tracing.exporter", `must be "otlp-grpc" or "otlp-http" (got %q)`, t.Exporter)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("telemetry.tracing.sample_ratio", "must be between 0 and 1 (got %v)", t.SampleRatio)
	}
	for k, v := range t.Sampling {
		key := "telemetry.tracing.sampling." + k
		if _, known := telemetry.DefaultSampling[k]; !known {
			bad(key, "unknown kind of work (known: register, heartbeat, cancel, status, reads, anti_entropy, other)")
		} else if v < 0 || v > 1 {
			bad(key, "must be between 0 and 1 (got %v)", v)
		}
	}
	if c.Telemetry.Metrics.Enabled && !strings.HasPrefix(c.Telemetry.Metrics.Path, "/") {
		bad("telemetry.metrics.path", `must start with "/" (got %q)`, c.Telemetry.Metrics.Path)
	}
	for kind, byName := range c.Plugins {
		switch kind {
		case "transport", "flush_policy", "action_handler":
		default:
			badAt([]string{"plugin", kind}, `unknown plugin kind %q (want transport, flush_policy or action_handler)`, kind)
		}
		for name, p := range byName {
			if p.SHA256 != "" && (len(p.SHA256) != 64 || strings.Trim(strings.ToLower(p.SHA256), "0123456789abcdef") != "") {
				badAt([]string{"plugin", kind, name, "sha256"}, "must be 64 hex digits")
			}
			if p.SHA256 != "" && p.Command == "" {
				badAt([]string{"plugin", kind, name, "sha256"}, "a checksum needs a command")
			}
			if p.MaxProcs != nil && (*p.MaxProcs < 0 || *p.MaxProcs > 1024) {
				badAt([]string{"plugin", kind, name, "max_procs"}, "must be between 0 (Go's default: one per CPU) and 1024 (got %d)", *p.MaxProcs)
			}
			if _, set := p.Env["GOMAXPROCS"]; set && p.MaxProcs != nil {
				badAt([]string{"plugin", kind, name, "max_procs"}, "env sets GOMAXPROCS too: set one of them")
			}
		}
	}
	if len(errs) > 0 {
		return errs.sorted()
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http or https URL, got %q", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s)
	}
	return nil
}

// checkHostPort accepts host:port with a port from 1 to 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", s)
	}
	if host == "" {
		return fmt.Errorf("want host:port, got %q (no host)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("want host:port with a port from 1 to 65535, got %q", s)
	}
	return nil
}

// PosOf returns where the key path (segments, so labels may contain dots) was set.
func (c *Config) PosOf(path ...string) Position { return c.posOf(path) }

// validateTrust checks the tls block and cluster.peer_auth, and refuses a node with peers that
// no peer could authenticate to, unless cluster.insecure_peers says so.
func (c *Config) validateTrust(bad func(key, format string, a ...any)) {
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.cert_file", "tls needs both cert_file and key_file")
	}
	for key, f := range map[string]string{"tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile, "tls.ca_file": t.CAFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			bad(key, "cannot read %s: %v", f, err)
		}
	}
	if _, err := peerauth.ParseMinVersion(t.MinVersion); err != nil {
		bad("tls.min_version", "%v", err)
	}
	if t.VerifyClients && t.CAFile == "" {
		bad("tls.verify_clients", "needs tls.ca_file to verify client certificates with")
	}
	if t.CAFile != "" && !t.Enabled() {
		bad("tls.ca_file", "needs cert_file and key_file: the node presents its own certificate to peers")
	}
	pa := c.Cluster.PeerAuth
	if pa.MTLS && (t.CAFile == "" || !t.Enabled()) {
		bad("cluster.peer_auth.mtls", "needs tls { cert_file, key_file, ca_file }: peers are verified against the cluster CA")
	}
	if pa.Secret != "" && pa.SecretFile != "" {
		bad("cluster.peer_auth.secret", "set secret or secret_file, not both")
	}
	if pa.Secret != "" {
		if err := peerauth.CheckSecret(pa.Secret); err != nil {
			bad("cluster.peer_auth.secret", "%v", err)
		}
	}
	if pa.SecretFile != "" {
		if _, err := c.PeerSecrets(); err != nil {
			bad("cluster.peer_auth.secret_file", "%v", err)
		}
	}
	if pa.ReplayWindow <= 0 {
		bad("cluster.peer_auth.replay_window", "must be greater than zero")
	}
	for _, e := range pa.EurekaPeers {
		if _, err := ParsePrefix(e); err != nil {
			bad("cluster.peer_auth.eureka_peers", "%v", err)
		}
	}
	if _, _, err := c.ClientCredentials(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			bad(ce.Key, "%s", ce.Msg)
		} else {
			bad("client_auth", "%v", err)
		}
	}
	hasPeers := len(c.Cluster.Peers) > 0 || c.Cluster.DNS.Name != ""
	if hasPeers && !c.PeerAuthEnabled() && !c.Cluster.InsecurePeers {
		bad("cluster.peer_auth", "this node has peers but no peer authentication: anyone who reaches its port could "+
			"replicate writes as a peer. Set peer_auth { secret_file = ... } or peer_auth { mtls = true } with a tls block "+
			"(herald tls --help), or, on a network you fully trust, cluster { insecure_peers = true }")
	}
}

// PeerAuthEnabled reports whether peers can authenticate (a secret or mutual TLS).
func (c *Config) PeerAuthEnabled() bool {
	pa := c.Cluster.PeerAuth
	return pa.Secret != "" || pa.SecretFile != "" || pa.MTLS
}

// PeerSecrets returns the cluster secrets: the one to sign with first, then previous ones still
// accepted. It reads secret_file when set.
func (c *Config) PeerSecrets() ([]string, error) {
	pa := c.Cluster.PeerAuth
	if pa.Secret != "" {
		return []string{pa.Secret}, nil
	}
	if pa.SecretFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(pa.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster secret: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if err := peerauth.CheckSecret(line); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", pa.SecretFile, len(out)+1, err)
			}
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no secret", pa.SecretFile)
	}
	return out, nil
}

// ParsePrefix parses an address ("10.0.0.5") or a CIDR prefix ("10.0.0.0/24").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// ClientCredentials returns the client_auth credentials, secrets read from their files, and the
// role of anonymous callers.
func (c *Config) ClientCredentials() ([]clientauth.Credential, clientauth.Role, error) {
	ca := c.ClientAuth
	anon := clientauth.Admin
	if len(ca.Credentials) > 0 {
		anon = clientauth.None
	}
	if ca.Anonymous != "" {
		r, err := clientauth.ParseRole(ca.Anonymous)
		if err != nil {
			return nil, 0, &Error{Key: "client_auth.anonymous", Msg: err.Error()}
		}
		anon = r
	}
	var out []clientauth.Credential
	for name, cc := range ca.Credentials {
		key := "client_auth.credential." + name
		role, err := clientauth.ParseRole(cc.Role)
		if err != nil || role == clientauth.None {
			return nil, 0, &Error{Key: key + ".role", Msg: fmt.Sprintf("want read, register or admin (got %q)", cc.Role)}
		}
		cred := clientauth.Credential{Name: name, Role: role, Apps: cc.Apps}
		if cred.Password, err = secretOf(cc.Password, cc.PasswordFile); err != nil {
			return nil, 0, &Error{Key: key + ".password_file", Msg: err.Error()}
		}
		if cred.Token, err = secretOf(cc.Token, cc.TokenFile); err != nil {
			return nil, 0, &Error{Key: key + ".token_file", Msg: err.Error()}
		}
		if cred.Password == "" && cred.Token == "" {
			return nil, 0, &Error{Key: key, Msg: "needs a password, password_file, token or token_file"}
		}
		out = append(out, cred)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if _, err := clientauth.New(out, anon); err != nil {
		return nil, 0, &Error{Key: "client_auth", Msg: err.Error()}
	}
	return out, anon, nil
}

// secretOf returns an inline secret, or the first line of a file.
func secretOf(inline, file string) (string, error) {
	if inline != "" && file != "" {
		return "", errors.New("set the value or its file, not both")
	}
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return line, nil
}
