package peerauth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
)

// Authenticator decides whether an HTTP caller is an authenticated peer. Its zero value
// authenticates nobody.
type Authenticator struct {
	// Verifier checks signed requests (nil: the cluster secret is not in use).
	Verifier *Verifier
	// MTLS accepts a caller whose client certificate was verified against the cluster CA by the
	// TLS handshake (the server's ClientCAs).
	MTLS bool
	// Names, when not empty, is the allow-list of peer names a certificate must carry (as its
	// Common Name or one of its DNS names).
	Names map[string]bool
	// Trusted are addresses whose callers are peers without proof: Eureka servers, which cannot
	// authenticate. An operator's explicit, per-peer opt-in.
	Trusted []netip.Prefix
	// Insecure makes every caller a peer (cluster { insecure_peers = true }).
	Insecure bool
	// MaxBody bounds a signed request's body, which is read whole to check its digest.
	MaxBody int64
}

// Enabled reports whether any caller can be a peer.
func (a *Authenticator) Enabled() bool {
	return a != nil && (a.Verifier != nil || a.MTLS || len(a.Trusted) > 0 || a.Insecure)
}

// ErrBodyTooLarge is returned for a signed request whose body exceeds MaxBody.
var ErrBodyTooLarge = errors.New("signed request body too large")

// Authenticate returns r, with its body buffered when it was signed, and the peer it comes from.
// ok is false for a caller that is not a peer (a client). err is set when the caller tried to
// authenticate and failed (a bad, expired or replayed signature; a certificate outside the
// allow-list): such a request must be refused, not served as a client's.
func (a *Authenticator) Authenticate(r *http.Request) (_ *http.Request, id Identity, ok bool, err error) {
	if a == nil {
		return r, Identity{}, false, nil
	}
	if a.MTLS && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if id, ok := a.CertPeer(leaf); ok {
			return r, id, true, nil
		}
		if Signed(r.Header) || r.Header.Get("x-netflix-discovery-replication") != "" {
			return r, Identity{}, false, fmt.Errorf("certificate %q is not in the peer allow-list", leaf.Subject.CommonName)
		}
	}
	if a.Verifier != nil && Signed(r.Header) {
		body, err := a.readBody(r)
		if err != nil {
			return r, Identity{}, false, err
		}
		name, err := a.Verifier.Verify(r, body)
		if err != nil {
			return r, Identity{}, false, err
		}
		return r, Identity{Name: name, Method: Secret}, true, nil
	}
	if a.Insecure {
		return r, Identity{Name: r.Header.Get(HeaderPeer), Method: Trusted}, true, nil
	}
	if len(a.Trusted) > 0 {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil {
				for _, p := range a.Trusted {
					if p.Contains(ip.Unmap()) {
						return r, Identity{Name: host, Method: Trusted}, true, nil
					}
				}
			}
		}
	}
	return r, Identity{}, false, nil
}

// CertPeer reports whether a client certificate already verified against the cluster CA (by the
// TLS handshake) belongs to a peer: mutual TLS is on and the certificate's name is in the
// allow-list (any name when the list is empty). For listeners that are not HTTP (gRPC, say).
func (a *Authenticator) CertPeer(leaf *x509.Certificate) (Identity, bool) {
	if a == nil || !a.MTLS || leaf == nil {
		return Identity{}, false
	}
	name, ok := a.allowed(leaf.Subject.CommonName, leaf.DNSNames)
	return Identity{Name: name, Method: MTLS}, ok
}

func (a *Authenticator) allowed(cn string, dns []string) (string, bool) {
	if len(a.Names) == 0 {
		if cn == "" && len(dns) > 0 {
			cn = dns[0]
		}
		return cn, true
	}
	if a.Names[cn] && cn != "" {
		return cn, true
	}
	for _, d := range dns {
		if a.Names[d] {
			return d, true
		}
	}
	return "", false
}

// readBody reads a signed request's body whole (bounded) and puts the bytes back for the handler.
func (a *Authenticator) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := a.MaxBody
	if limit <= 0 {
		limit = 4 << 20
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= limit {
		// ReadFrom asks for MinRead bytes of room before the read that sees the end.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	n, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading signed body: %w", err)
	}
	if n > limit {
		return nil, ErrBodyTooLarge
	}
	r.Body = &BufferedBody{b: buf.Bytes()}
	return buf.Bytes(), nil
}

// BufferedBody is the body of a signed request, which Authenticate reads whole to check its
// digest and puts back as this. A handler that wants the whole body can take it from Bytes
// rather than read it, and copy it, a second time.
type BufferedBody struct {
	b   []byte
	off int
}

// Read reads the body as any request body.
func (b *BufferedBody) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

// Close does nothing: the body is in memory.
func (b *BufferedBody) Close() error { return nil }

// Bytes returns the part of the body not read yet, without copying it and without consuming it.
// The bytes must not be modified.
func (b *BufferedBody) Bytes() []byte { return b.b[b.off:] }

// Middleware authenticates every request: a peer's request reaches next with the peer in its
// context (see PeerFrom); a client's reaches next unmarked; a failed attempt is refused with 401
// (503 when the replay cache is full, 413 for an oversized signed body) and never served.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, id, ok, err := a.Authenticate(r)
		switch {
		case err != nil:
			code := http.StatusUnauthorized
			switch {
			case errors.Is(err, ErrBusy):
				code = http.StatusServiceUnavailable
			case errors.Is(err, ErrBodyTooLarge):
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "peer authentication failed: "+err.Error(), code)
		case ok:
			next.ServeHTTP(w, r.WithContext(WithPeer(r.Context(), id)))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// RequirePeer serves next only to authenticated peers (see Middleware); others get 403.
func RequirePeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PeerFrom(r.Context()); !ok {
			http.Error(w, "forbidden: this endpoint is for authenticated peers only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SigningTransport is an http.RoundTripper that signs every request with Signer before Base
// sends it. Bodies are read whole to be signed, so use it for requests of bounded size.
type SigningTransport struct {
	Signer *Signer
	Base   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *SigningTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	r2 := req.Clone(req.Context())
	if body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
	}
	t.Signer.Sign(r2, body)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}
