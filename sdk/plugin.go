package sdk

import (
	"context"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/heraldhq/herald/sdk/peerauth"
)

// ProtocolVersion is the version of the plugin protocol this SDK speaks. The host refuses plugins
// of another version with an error that names both.
//
// Version 2 renamed the handshake's cookie variable (see Handshake): a plugin built for version 1
// looks for the old name, and exits at start-up with go-plugin's "This binary is a plugin" message
// under a version 2 host. Rebuild it with this SDK.
const ProtocolVersion = 2

// MagicCookieKey is the environment variable herald sets for its plugin processes; sdk.Serve
// refuses to run without it. It lies outside the HERALD_ prefix of herald's configuration
// variables (HERALD_NODE__PORT sets node.port), so a plugin process's environment never reads as
// configuration, and no configuration key can shadow the cookie.
const MagicCookieKey = "HERALDPLUGIN_MAGIC_COOKIE"

// Handshake is the go-plugin handshake between herald and its plugins. The magic cookie only
// keeps a plugin binary from being run by hand by mistake; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: "6c1e0a5f-herald-plugin",
}

// Plugin kinds, as named in `plugin "KIND" "NAME"` blocks.
const (
	KindTransport     = "transport"
	KindFlushPolicy   = "flush_policy"
	KindActionHandler = "action_handler"
)

// MaxMessageBytes bounds one gRPC message between herald and a plugin in both directions: a batch
// of 250 registrations is about 250 KiB, so this leaves room for large custom batches while
// keeping a misbehaving peer from exhausting memory.
const MaxMessageBytes = 64 << 20

// Info describes a plugin.
type Info struct {
	Name            string
	Kind            string
	ProtocolVersion int
	// Config declares the plugin's config {} block as a struct (a value or a nil pointer of its
	// type, e.g. Config: Config{}); its tags give the keys (see SchemaOf). The SDK derives Schema
	// from it, the host checks the block against that schema before Configure, and
	// ConfigureRequest.Decode fills the struct. Nil: the plugin takes no settings, unless Schema
	// is set by hand.
	Config any
	// Schema lists the keys of the config {} block; derived from Config when nil. The host refuses
	// a block with keys it does not list, values of the wrong type or required keys missing.
	Schema []ConfigKey
}

// ConfigKey documents one key of a plugin's config block.
type ConfigKey struct {
	// Path is the key, with its enclosing blocks: "listen", "tls.cert". The keys of the objects in
	// a list(object) or map(object) are under the list's or map's key.
	Path string
	// Type is "string", "bool", "int", "number", "duration" (a string such as "30s"), "object" (a
	// nested block), or "list(T)" / "map(T)" of one of those.
	Type     string
	Required bool
	// Default is the value when the key is not set, as decoded from JSON: a string, bool,
	// json.Number, []any or map[string]any. Nil: none.
	Default     any
	Description string
}

// Telemetry is what a plugin needs to send its own spans where the host sends its.
type Telemetry struct {
	Endpoint    string
	Protocol    string
	SampleRatio float64
	ServiceName string
}

// ConfigureRequest is handed to a plugin once, before any other call.
type ConfigureRequest struct {
	// Config is the plugin's config {} block as JSON, checked by the host against Info's schema.
	// Decode it into the plugin's config struct with req.Decode(&cfg) (see DecodeConfig): the same
	// bytes and the same decoding in-process and out of process.
	Config    RawConfig
	NodeName  string
	NodeURL   string
	LogLevel  string
	Telemetry Telemetry
	// Host is the node's host service: read the registry, apply or replicate actions, hand in
	// inbound batches. Never nil: without a host its calls return ErrNoHost.
	Host Host
	// PeerAuth is how the node authenticates to its peers: a transport signs or presents the
	// node's certificate on what it sends, and verifies callers of a listener of its own with
	// PeerAuth.Authenticator (see package peerauth).
	PeerAuth peerauth.Config
	// ValidateOnly is set by `herald config validate`: check the configuration and return, start
	// nothing (no listener, no connection). A plugin that declares Info.Config is not called at
	// all then: the SDK decodes the block and runs its Validate method instead.
	ValidateOnly bool
	// Logger is the plugin's logger (see Logger): its lines appear in the node's log, at the
	// node's level, named after the plugin and with the node's name, in-process and out of
	// process alike. Set by herald and by the SDK in a plugin process; keep it for later calls.
	Logger Logger
}

// Diagnostic is a problem with a plugin's configuration: Path names the key ("listen",
// "tls.cert"), Message says what is wrong. The host prints it with the block's file and line.
type Diagnostic struct {
	Path    string
	Message string
	Warning bool
}

// Describer is implemented by plugins that describe themselves; without it the host uses the
// name and kind from the configuration.
type Describer interface {
	Info() Info
}

// Configurable is implemented by plugins that take a config {} block or need the node's settings.
// Returning an error diagnostic refuses the configuration and stops the host from starting.
type Configurable interface {
	Configure(ctx context.Context, req ConfigureRequest) []Diagnostic
}

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
