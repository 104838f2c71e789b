package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/go-hclog"
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
	rp := c.Replication
	between("replication.max_batch_size", rp.MaxBatchSize, 1, 10000)
	between("replication.max_buffer_size", rp.MaxBufferSize, 1, 10_000_000)
	between("replication.workers", rp.Workers, 1, 1000)
	if rp.MaxBatchSize > rp.MaxBufferSize {
		bad("replication.max_batch_size", "must not exceed replication.max_buffer_size (%d > %d)", rp.MaxBatchSize, rp.MaxBufferSize)
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
	}
	t := c.Telemetry.Tracing
	if t.Exporter != "otlp-grpc" && t.Exporter != "otlp-http" {
		bad("telemetry.tracing.exporter", `must be "otlp-grpc" or "otlp-http" (got %q)`, t.Exporter)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("telemetry.tracing.sample_ratio", "must be between 0 and 1 (got %v)", t.SampleRatio)
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

// PosOf returns where the key path (segments, so labels may contain dots) was set.
func (c *Config) PosOf(path ...string) Position { return c.posOf(path) }
