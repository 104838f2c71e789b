package config

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// TestPluginCookieIsNotConfiguration: the environment of a herald process may hold the plugin
// handshake's cookie variable (a plugin process inherits it, and `herald plugin serve` is herald),
// and configuration variables are matched by prefix. The cookie must never read as a
// configuration key, nor be shadowed by one.
func TestPluginCookieIsNotConfiguration(t *testing.T) {
	if strings.HasPrefix(strings.ToUpper(sdk.Handshake.MagicCookieKey), EnvPrefix) {
		t.Fatalf("the plugin cookie %s lies in the configuration prefix %s", sdk.Handshake.MagicCookieKey, EnvPrefix)
	}
	env := []string{sdk.Handshake.MagicCookieKey + "=" + sdk.Handshake.MagicCookieValue, "HERALD_NODE__PORT=8763"}
	c, err := Parse("", nil, env, nil)
	if err != nil {
		t.Fatalf("configuration with the plugin cookie in the environment: %v", err)
	}
	if c.Node.Port != 8763 {
		t.Fatalf("node.port %d, want 8763 from HERALD_NODE__PORT", c.Node.Port)
	}
	// The name it had before protocol version 2 read as an unknown configuration key: the check
	// above is what keeps that from coming back.
	if _, err := Parse("", nil, []string{"HERALD_PLUGIN_COOKIE=x"}, nil); err == nil || !strings.Contains(err.Error(), "names no configuration key") {
		t.Fatalf("HERALD_PLUGIN_COOKIE: want an unknown-key error, got %v", err)
	}
}
