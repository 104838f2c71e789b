package peerauth

import (
	"fmt"
	"net/http"
	"time"
)

// Config is a node's peer authentication as the host hands it to its plugins (a transport signs
// what it sends with it and, when it has a listener of its own, verifies what it receives).
type Config struct {
	// Secrets are the cluster secrets: the first signs, all verify (rotation).
	Secrets      []string
	ReplayWindow time.Duration
	// TLS names the node's certificate, key and the cluster CA (empty: no TLS).
	TLS           TLSFiles
	TLSMinVersion string
	// MTLS accepts callers with a certificate from the cluster CA as peers.
	MTLS bool
	// PeerNames is the optional allow-list of peer certificate names.
	PeerNames []string
	// Insecure trusts every caller (cluster { insecure_peers = true }).
	Insecure bool
}

// TLSEnabled reports whether the node uses TLS towards peers.
func (c Config) TLSEnabled() bool { return c.TLS.CertFile != "" }

// Signer returns a signer for node, or nil when there is no secret.
func (c Config) Signer(node string) (*Signer, error) {
	if len(c.Secrets) == 0 {
		return nil, nil
	}
	return NewSigner(node, c.Secrets[0])
}

// LoadTLS loads the TLS material, or returns nil when there is none.
func (c Config) LoadTLS() (*TLS, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	v, err := ParseMinVersion(c.TLSMinVersion)
	if err != nil {
		return nil, err
	}
	return LoadTLS(c.TLS, v)
}

// Authenticator returns the authenticator a receiving side uses, bounding signed bodies to maxBody.
func (c Config) Authenticator(maxBody int64) (*Authenticator, error) {
	a := &Authenticator{MTLS: c.MTLS && c.TLSEnabled(), Insecure: c.Insecure, MaxBody: maxBody}
	if len(c.Secrets) > 0 {
		v, err := NewVerifier(c.Secrets, c.ReplayWindow, nil)
		if err != nil {
			return nil, err
		}
		a.Verifier = v
	}
	if len(c.PeerNames) > 0 {
		a.Names = make(map[string]bool, len(c.PeerNames))
		for _, n := range c.PeerNames {
			a.Names[n] = true
		}
	}
	return a, nil
}

// Client returns an HTTP client transport for calls to peers built on base: TLS with the node's
// certificate when it has one, every request signed when it has a secret.
func (c Config) Client(node string, base *http.Transport) (http.RoundTripper, *TLS, error) {
	t, err := c.LoadTLS()
	if err != nil {
		return nil, nil, err
	}
	if t != nil {
		base.TLSClientConfig = t.ClientConfig()
	}
	s, err := c.Signer(node)
	if err != nil {
		return nil, nil, fmt.Errorf("peer auth: %w", err)
	}
	if s == nil {
		return base, t, nil
	}
	return &SigningTransport{Signer: s, Base: base}, t, nil
}
