package peerauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of a node's TLS identity.
type TLSFiles struct {
	// CAFile is the cluster CA: peers' certificates must chain to it.
	CAFile string
	// CertFile and KeyFile are the node's own certificate (with its chain) and private key.
	CertFile string
	KeyFile  string
}

// TLS is a node's certificate and the cluster CA, reloaded from their files when Reload is called
// (on SIGHUP) and, for long-lived processes that get no signal (plugins), when the files change
// (checked at most once a second, on a new handshake). A failed reload keeps the last good
// material, so a half-written file never takes a node off the network. Connections already open
// are not affected.
type TLS struct {
	files      TLSFiles
	minVersion uint16

	mu      sync.RWMutex
	cert    *tls.Certificate
	pool    *x509.CertPool
	stamp   string // modification times of the files loaded
	checked time.Time
}

// ParseMinVersion maps "1.2" and "1.3" to crypto/tls versions ("" is 1.2).
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2", "tls12":
		return tls.VersionTLS12, nil
	case "1.3", "tls13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS minimum version %q: want \"1.2\" or \"1.3\"", s)
}

// LoadTLS reads the files. CertFile and KeyFile are required; CAFile is required for anything
// that verifies peers.
func LoadTLS(files TLSFiles, minVersion uint16) (*TLS, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are required")
	}
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	t := &TLS{files: files, minVersion: minVersion}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Files returns the files t reads.
func (t *TLS) Files() TLSFiles { return t.files }

// Reload reads the files again. On error the previous material stays in use.
func (t *TLS) Reload() error {
	stamp := t.stampNow()
	cert, err := tls.LoadX509KeyPair(t.files.CertFile, t.files.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", t.files.CertFile, t.files.KeyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	var pool *x509.CertPool
	if t.files.CAFile != "" {
		pem, err := os.ReadFile(t.files.CAFile)
		if err != nil {
			return fmt.Errorf("tls: reading ca_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: ca_file %s holds no PEM certificate", t.files.CAFile)
		}
	}
	t.mu.Lock()
	t.cert, t.pool, t.stamp, t.checked = &cert, pool, stamp, time.Now()
	t.mu.Unlock()
	return nil
}

// stampNow describes the files' modification times and sizes.
func (t *TLS) stampNow() string {
	s := ""
	for _, f := range []string{t.files.CAFile, t.files.CertFile, t.files.KeyFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

// current returns the material in use, reloading it first when the files changed.
func (t *TLS) current() (*tls.Certificate, *x509.CertPool) {
	t.mu.RLock()
	cert, pool, stamp, checked := t.cert, t.pool, t.stamp, t.checked
	t.mu.RUnlock()
	if time.Since(checked) < time.Second {
		return cert, pool
	}
	t.mu.Lock()
	t.checked = time.Now()
	t.mu.Unlock()
	if t.stampNow() != stamp && t.Reload() == nil {
		t.mu.RLock()
		cert, pool = t.cert, t.pool
		t.mu.RUnlock()
	}
	return cert, pool
}

// Certificate returns the node's certificate in use.
func (t *TLS) Certificate() *x509.Certificate {
	c, _ := t.current()
	return c.Leaf
}

// ServerConfig returns a server configuration. With requireClientCert every caller must present a
// certificate from the CA; otherwise a certificate is verified when given (that is how peers
// authenticate by mutual TLS while Eureka clients connect without one).
func (t *TLS) ServerConfig(requireClientCert bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	base := &tls.Config{MinVersion: t.minVersion, NextProtos: []string{"h2", "http/1.1"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := t.current()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		if pool != nil {
			c.ClientCAs, c.ClientAuth = pool, auth
		}
		return c, nil
	}
	return base
}

// ClientConfig returns a configuration for dialing peers: it presents the node's certificate and
// verifies the peer's against the cluster CA in use at the time of the handshake (so a rotated CA
// takes effect without restarting) and against the host name or address dialed.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: t.minVersion,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := t.current()
			return cert, nil
		},
		// Verification is done in VerifyConnection against the current pool; the static check is
		// off only because its pool cannot change after the config is built.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := t.current()
			if pool == nil {
				return errors.New("tls: no ca_file to verify the peer with")
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: peer presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// PeerName returns the name a peer certificate stands for: its Common Name, or its first DNS name.
func PeerName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return ""
}
