// Package config reads herald's configuration: an HCL2 file merged by koanf with environment
// variables and command-line overrides, decoded into typed structs. Unknown keys are errors, and
// every error names where the offending key was set: file, line and column, or the variable or flag.
package config

import "time"

// Config is a node's whole configuration. The HCL names are the koanf tags.
type Config struct {
	Node          NodeConfig        `koanf:"node"`
	Log           LogConfig         `koanf:"log"`
	HTTP          HTTPConfig        `koanf:"http"`
	Registry      RegistryConfig    `koanf:"registry"`
	ResponseCache CacheConfig       `koanf:"response_cache"`
	Cluster       ClusterConfig     `koanf:"cluster"`
	Replication   ReplicationConfig `koanf:"replication"`
	Telemetry     TelemetryConfig   `koanf:"telemetry"`
	TLS           TLSConfig         `koanf:"tls"`
	ClientAuth    ClientAuthConfig  `koanf:"client_auth"`
	// PluginDir is searched for plugin binaries named herald-KIND-NAME.
	PluginDir string `koanf:"plugin_dir"`
	// Plugins are the `plugin "KIND" "NAME" {}` blocks: kind -> name -> block.
	Plugins map[string]map[string]PluginConfig `koanf:"plugin"`

	file string
	pos  map[string]Position
}

// NodeConfig is the `node` block.
type NodeConfig struct {
	Name         string `koanf:"name"`
	BindAddr     string `koanf:"bind_addr"`
	Port         int    `koanf:"port"`
	AdvertiseURL string `koanf:"advertise_url"`
}

// LogConfig is the `log` block.
type LogConfig struct {
	Level string `koanf:"level"`
	JSON  bool   `koanf:"json"`
}

// HTTPConfig is the `http` block.
type HTTPConfig struct {
	MaxBodyBytes    int64         `koanf:"max_body_bytes"`
	ReadTimeout     time.Duration `koanf:"read_timeout"`
	WriteTimeout    time.Duration `koanf:"write_timeout"`
	IdleTimeout     time.Duration `koanf:"idle_timeout"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// ShutdownDelay is how long a stopping node keeps serving with readiness withdrawn.
	ShutdownDelay time.Duration `koanf:"shutdown_delay"`
}

// RegistryConfig is the `registry` block.
type RegistryConfig struct {
	SelfPreservation               bool          `koanf:"self_preservation"`
	RenewalPercentThreshold        float64       `koanf:"renewal_percent_threshold"`
	ExpectedClientRenewalInterval  time.Duration `koanf:"expected_client_renewal_interval"`
	RenewalThresholdUpdateInterval time.Duration `koanf:"renewal_threshold_update_interval"`
	EvictionInterval               time.Duration `koanf:"eviction_interval"`
	MaxProtectionTime              time.Duration `koanf:"max_protection_time"`
	DeltaRetention                 time.Duration `koanf:"delta_retention"`
	DeltaRetentionInterval         time.Duration `koanf:"delta_retention_interval"`
	DisableDelta                   bool          `koanf:"disable_delta"`
	SyncWhenTimestampDiffers       bool          `koanf:"sync_when_timestamp_differs"`
	OverrideExpiry                 time.Duration `koanf:"override_expiry"`
	FixLeaseDurationBug            bool          `koanf:"fix_lease_duration_bug"`
	TombstoneTTL                   time.Duration `koanf:"tombstone_ttl"`
	// MaxClockSkew bounds how far in the future a lastDirtyTimestamp may be, from clients and
	// from peers.
	MaxClockSkew time.Duration `koanf:"max_clock_skew"`
}

// CacheConfig is the `response_cache` block.
type CacheConfig struct {
	UseReadOnly    bool          `koanf:"use_read_only"`
	UpdateInterval time.Duration `koanf:"update_interval"`
	AutoExpiration time.Duration `koanf:"auto_expiration"`
	// MaxBytes bounds the bytes the cached documents hold, per level.
	MaxBytes int64 `koanf:"max_bytes"`
}

// ClusterConfig is the `cluster` block.
type ClusterConfig struct {
	Peers              []string          `koanf:"peers"`
	SelfURL            string            `koanf:"self_url"`
	DNS                DNSConfig         `koanf:"dns"`
	PeerUpdateInterval time.Duration     `koanf:"peer_update_interval"`
	StartupSync        StartupSyncConfig `koanf:"startup_sync"`
	AntiEntropy        AntiEntropyConfig `koanf:"anti_entropy"`
	PeerAuth           PeerAuthConfig    `koanf:"peer_auth"`
	// InsecurePeers lets a node with peers run without peer authentication: every caller of the
	// peer endpoints is then trusted. Off by default; a node with peers and no peer_auth refuses
	// to start unless it is set.
	InsecurePeers bool `koanf:"insecure_peers"`
}

// PeerAuthConfig is `cluster { peer_auth {} }`: how peers prove who they are.
type PeerAuthConfig struct {
	// MTLS accepts callers presenting a certificate from tls.ca_file as peers.
	MTLS bool `koanf:"mtls"`
	// PeerNames, when set, restricts mTLS peers to certificates with one of these names.
	PeerNames []string `koanf:"peer_names"`
	// Secret is the shared cluster secret (prefer SecretFile or the environment).
	Secret string `koanf:"secret"`
	// SecretFile holds the secret on its first line; further lines are previous secrets still
	// accepted during a rotation.
	SecretFile string `koanf:"secret_file"`
	// ReplayWindow is how far a signed request's time may be from this node's clock.
	ReplayWindow time.Duration `koanf:"replay_window"`
	// EurekaPeers are addresses (IPs or CIDR prefixes) of Eureka servers, which cannot
	// authenticate, trusted as peers without proof.
	EurekaPeers []string `koanf:"eureka_peers"`
}

// ClientAuthConfig is the `client_auth` block: credentials for Eureka clients.
type ClientAuthConfig struct {
	// Anonymous is the role of callers without credentials: "admin" (Eureka's way: anyone may do
	// anything), "read" or "none". Empty: "admin" without credentials, "none" with some.
	Anonymous string `koanf:"anonymous"`
	// Credentials are the `credential "NAME" {}` blocks.
	Credentials map[string]CredentialConfig `koanf:"credential"`
}

// CredentialConfig is one `credential "NAME" {}` block of client_auth.
type CredentialConfig struct {
	// Password (or PasswordFile) is checked for HTTP Basic with NAME as the user name.
	Password     string `koanf:"password"`
	PasswordFile string `koanf:"password_file"`
	// Token (or TokenFile) is checked for "Authorization: Bearer".
	Token     string `koanf:"token"`
	TokenFile string `koanf:"token_file"`
	// Role is read, register or admin.
	Role string `koanf:"role"`
	// Apps restricts a register role to these application-name patterns ("ORDERS", "PAY-*").
	Apps []string `koanf:"apps"`
}

// TLSConfig is the `tls` block: TLS for the node's whole HTTP surface and for its calls to peers.
type TLSConfig struct {
	CertFile   string `koanf:"cert_file"`
	KeyFile    string `koanf:"key_file"`
	CAFile     string `koanf:"ca_file"`
	MinVersion string `koanf:"min_version"`
	// VerifyClients requires a certificate from ca_file of every caller, clients included.
	VerifyClients bool `koanf:"verify_clients"`
}

// Enabled reports whether the node serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// DNSConfig is `cluster { dns {} }`.
type DNSConfig struct {
	Name    string        `koanf:"name"`
	SRV     bool          `koanf:"srv"`
	Port    int           `koanf:"port"`
	Refresh time.Duration `koanf:"refresh"`
}

// StartupSyncConfig is `cluster { startup_sync {} }`.
type StartupSyncConfig struct {
	Retries       int           `koanf:"retries"`
	RetryWait     time.Duration `koanf:"retry_wait"`
	WaitWhenEmpty time.Duration `koanf:"wait_when_empty"`
}

// AntiEntropyConfig is `cluster { anti_entropy {} }`.
type AntiEntropyConfig struct {
	Enabled  bool          `koanf:"enabled"`
	Interval time.Duration `koanf:"interval"`
}

// ReplicationConfig is the `replication` block.
type ReplicationConfig struct {
	Transport                string                `koanf:"transport"`
	FlushPolicy              string                `koanf:"flush_policy"`
	ActionHandlers           []string              `koanf:"action_handlers"`
	MaxBatchSize             int                   `koanf:"max_batch_size"`
	BatchingDelay            time.Duration         `koanf:"batching_delay"`
	MaxBufferSize            int                   `koanf:"max_buffer_size"`
	MaxBatchBytes            int64                 `koanf:"max_batch_bytes"`  // also the largest registration admitted
	MaxBufferBytes           int64                 `koanf:"max_buffer_bytes"` // pending bytes per peer
	Workers                  int                   `koanf:"workers"`
	CongestionRetryDelay     time.Duration         `koanf:"congestion_retry_delay"`
	NetworkFailureRetryDelay time.Duration         `koanf:"network_failure_retry_delay"`
	MaxDelayCap              time.Duration         `koanf:"max_delay_cap"`
	MaxTimeForReplication    time.Duration         `koanf:"max_time_for_replication"`
	ConnectTimeout           time.Duration         `koanf:"connect_timeout"`
	ReadTimeout              time.Duration         `koanf:"read_timeout"`
	Compress                 bool                  `koanf:"compress"`
	Peers                    map[string]PeerTuning `koanf:"peer"`
}

// PeerTuning is a `peer "URL" {}` block inside `replication`: settings that differ for one peer.
// Unset fields inherit the replication block's.
type PeerTuning struct {
	Transport     string         `koanf:"transport"`
	FlushPolicy   string         `koanf:"flush_policy"`
	MaxBatchSize  *int           `koanf:"max_batch_size"`
	BatchingDelay *time.Duration `koanf:"batching_delay"`
	Workers       *int           `koanf:"workers"`
	MaxBufferSize *int           `koanf:"max_buffer_size"`
	// TransportAddress is host:port of the peer's listener for a transport that has one of its
	// own (the grpc transport, a plugin's): sdk.Peer.Address. Unset, such a transport derives it
	// from the peer's URL (its port plus the transport's port_offset).
	TransportAddress string `koanf:"transport_address"`
}

// TelemetryConfig is the `telemetry` block.
type TelemetryConfig struct {
	ServiceName string          `koanf:"service_name"`
	Tracing     TracingConfig   `koanf:"tracing"`
	Metrics     MetricsConfig   `koanf:"metrics"`
	Profiling   ProfilingConfig `koanf:"profiling"`
}

// ProfilingConfig is `telemetry { profiling {} }`: Go's runtime profiles at /debug/pprof/.
type ProfilingConfig struct {
	Enabled bool `koanf:"enabled"`
}

// TracingConfig is `telemetry { tracing {} }`.
type TracingConfig struct {
	Enabled     bool              `koanf:"enabled"`
	Exporter    string            `koanf:"exporter"`
	Endpoint    string            `koanf:"endpoint"`
	Headers     map[string]string `koanf:"headers"`
	Insecure    bool              `koanf:"insecure"`
	SampleRatio float64           `koanf:"sample_ratio"`
	// Sampling is the ratio of new traces per kind of work (register, heartbeat, cancel, status,
	// reads, anti_entropy, other), multiplied by SampleRatio.
	Sampling map[string]float64 `koanf:"sampling"`
}

// MetricsConfig is `telemetry { metrics {} }`.
type MetricsConfig struct {
	Enabled bool   `koanf:"enabled"`
	Path    string `koanf:"path"`
}

// PluginConfig is a `plugin "KIND" "NAME" {}` block.
type PluginConfig struct {
	// Command runs an external plugin (a path, or a name found in plugin_dir or on PATH). Empty for
	// a built-in plugin run in-process.
	Command string            `koanf:"command"`
	Args    []string          `koanf:"args"`
	Env     map[string]string `koanf:"env"`
	// SHA256 is the expected checksum of the command's binary, hex.
	SHA256 string `koanf:"sha256"`
	// OutOfProcess runs a built-in plugin as its own process (herald plugin serve KIND NAME).
	OutOfProcess bool `koanf:"out_of_process"`
	// MaxProcs is the plugin process's GOMAXPROCS: nil takes pluginhost.DefaultMaxProcs (1), 0
	// leaves Go's default. The block may set GOMAXPROCS in Env instead.
	MaxProcs *int `koanf:"max_procs"`
	// Config is the plugin's own `config {}` block: the plugin host checks it against the plugin's
	// schema (unknown keys, types, required keys) and hands it to the plugin as JSON.
	Config map[string]any `koanf:"config"`
}

// Default returns the configuration herald runs with when nothing is set: one node on
// 127.0.0.1:8761 with Eureka's defaults, except where config.hcl explains a better one.
func Default() *Config {
	return &Config{
		Node: NodeConfig{BindAddr: "127.0.0.1", Port: 8761},
		Log:  LogConfig{Level: "info"},
		HTTP: HTTPConfig{MaxBodyBytes: 1 << 20, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 120 * time.Second, ShutdownTimeout: 10 * time.Second},
		Registry: RegistryConfig{
			SelfPreservation: true, RenewalPercentThreshold: 0.85,
			ExpectedClientRenewalInterval: 30 * time.Second, RenewalThresholdUpdateInterval: 15 * time.Minute,
			EvictionInterval: 60 * time.Second, DeltaRetention: 3 * time.Minute, DeltaRetentionInterval: 30 * time.Second,
			SyncWhenTimestampDiffers: true, OverrideExpiry: time.Hour, TombstoneTTL: 5 * time.Minute,
			MaxClockSkew: 5 * time.Minute,
		},
		ResponseCache: CacheConfig{UseReadOnly: true, UpdateInterval: 30 * time.Second, AutoExpiration: 180 * time.Second,
			MaxBytes: 256 << 20},
		Cluster: ClusterConfig{
			DNS:                DNSConfig{Port: 8761, Refresh: 10 * time.Minute},
			PeerUpdateInterval: 10 * time.Minute,
			StartupSync:        StartupSyncConfig{Retries: 5, RetryWait: 30 * time.Second, WaitWhenEmpty: 5 * time.Minute},
			AntiEntropy:        AntiEntropyConfig{Enabled: true, Interval: 30 * time.Second},
			PeerAuth:           PeerAuthConfig{ReplayWindow: 30 * time.Second},
		},
		Replication: ReplicationConfig{
			Transport: "http", FlushPolicy: "adaptive", ActionHandlers: []string{"eureka"}, MaxBatchSize: 250, BatchingDelay: 5 * time.Millisecond,
			MaxBufferSize: 10000, Workers: 20, CongestionRetryDelay: time.Second,
			MaxBatchBytes: 1<<20 - 64<<10, MaxBufferBytes: 64 << 20,
			NetworkFailureRetryDelay: 100 * time.Millisecond, MaxDelayCap: 30 * time.Second,
			MaxTimeForReplication: 30 * time.Second, ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second,
		},
		TLS: TLSConfig{MinVersion: "1.2"},
		Telemetry: TelemetryConfig{
			ServiceName: "herald",
			Tracing:     TracingConfig{Exporter: "otlp-grpc", SampleRatio: 1},
			Metrics:     MetricsConfig{Enabled: true, Path: "/metrics"},
		},
	}
}

// Pos returns where a key (dotted path, e.g. "replication.max_batch_size") was set.
func (c *Config) Pos(key string) Position {
	if p, ok := c.pos[toInternal(key)]; ok {
		return p
	}
	// Fall back to the nearest enclosing block that was set.
	parts := splitKey(key)
	for i := len(parts) - 1; i > 0; i-- {
		if p, ok := c.pos[joinInternal(parts[:i])]; ok {
			return p
		}
	}
	return Position{File: c.file}
}

// File is the configuration file's name ("" when none was read).
func (c *Config) File() string { return c.file }
