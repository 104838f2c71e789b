// Package peerauth authenticates herald nodes to each other. Every peer surface of a node (the
// replication batch endpoint, the replication header, the digest and pull endpoints, a transport's
// own listener) accepts a caller only when it proves it is a peer, in one of two ways:
//
//   - mutual TLS: the caller presents a certificate signed by the cluster CA (see TLS), optionally
//     restricted to an allow-list of peer names;
//   - a shared cluster secret: the caller signs the request (method, path, query, timestamp, nonce,
//     its node name and the SHA-256 of the body) with HMAC-SHA256 (see Signer and Verifier). A
//     signature is valid within a replay window around the receiver's clock and only once.
//
// The package is part of the SDK so that a custom transport with a receiving side verifies its
// callers exactly as herald's own listener does.
package peerauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed request.
const (
	// HeaderPeer names the sending node.
	HeaderPeer = "X-Herald-Peer"
	// HeaderTimestamp is the signing time in Unix milliseconds.
	HeaderTimestamp = "X-Herald-Timestamp"
	// HeaderNonce is 16 random bytes, hex: two requests never share a signature.
	HeaderNonce = "X-Herald-Nonce"
	// HeaderSignature is "v1=" followed by the hex HMAC-SHA256 of the canonical request.
	HeaderSignature = "X-Herald-Signature"
)

// MinSecretBytes is the shortest cluster secret accepted: 32 bytes, the HMAC-SHA256 key size.
const MinSecretBytes = 32

// DefaultReplayWindow is how far a signature's timestamp may be from the receiver's clock.
const DefaultReplayWindow = 30 * time.Second

// ErrUnsigned is returned by Verify for a request that carries no signature at all.
var ErrUnsigned = errors.New("request is not signed")

// CheckSecret reports whether s is usable as a cluster secret.
func CheckSecret(s string) error {
	if len(s) < MinSecretBytes {
		return fmt.Errorf("cluster secret is %d bytes; at least %d are required (herald tls secret create makes one)", len(s), MinSecretBytes)
	}
	return nil
}

// NewSecret returns a random secret of 32 bytes, hex-encoded (64 characters).
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("peerauth: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// Signer signs outgoing requests with the cluster secret.
type Signer struct {
	node   string
	secret []byte
	now    func() time.Time
}

// NewSigner returns a Signer for the node named node. The secret must pass CheckSecret.
func NewSigner(node, secret string) (*Signer, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	if node == "" {
		node = "unnamed"
	}
	return &Signer{node: node, secret: []byte(secret), now: time.Now}, nil
}

// Sign sets the signature headers on req, whose body is body (nil for none). The body itself is
// not touched: the caller sends exactly these bytes.
func (s *Signer) Sign(req *http.Request, body []byte) {
	ts := strconv.FormatInt(s.now().UnixMilli(), 10)
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	sum := sha256.Sum256(body)
	h := req.Header
	h.Set(HeaderPeer, s.node)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, "v1="+hex.EncodeToString(mac(s.secret, req.Method, req.URL.EscapedPath(), req.URL.RawQuery, ts, nonce, s.node, sum[:])))
}

// SignValues returns the signature header values for a call that is not an HTTP request (a gRPC
// stream, say): method and path name the call, body is what it carries (nil for none).
func (s *Signer) SignValues(method, path string, body []byte) map[string]string {
	req := &http.Request{Method: method, Header: http.Header{}, URL: urlOf(path)}
	s.Sign(req, body)
	out := make(map[string]string, 4)
	for _, k := range []string{HeaderPeer, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		out[strings.ToLower(k)] = req.Header.Get(k)
	}
	return out
}

// mac computes the signature of the canonical request: each field on its own line, so no field
// can be shifted into another.
func mac(secret []byte, method, path, query, ts, nonce, node string, bodySum []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{method, path, query, ts, nonce, node} {
		m.Write([]byte(f))
		m.Write([]byte{'\n'})
	}
	m.Write([]byte(hex.EncodeToString(bodySum)))
	return m.Sum(nil)
}

// Verifier checks signed requests against one or more secrets (the current one first, the
// previous ones during a rotation) and remembers the signatures it accepted within the replay
// window, so a captured request cannot be sent again.
type Verifier struct {
	secrets [][]byte
	window  time.Duration
	seen    *ReplayCache
	now     func() time.Time
}

// NewVerifier returns a Verifier. window <= 0 takes DefaultReplayWindow; seen may be shared by
// several verifiers of one node (nil: a new cache of DefaultReplayBytes).
func NewVerifier(secrets []string, window time.Duration, seen *ReplayCache) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cluster secret")
	}
	v := &Verifier{window: window, seen: seen, now: time.Now}
	if v.window <= 0 {
		v.window = DefaultReplayWindow
	}
	if v.seen == nil {
		v.seen = NewReplayCache(DefaultReplayBytes)
	}
	for i, s := range secrets {
		if err := CheckSecret(s); err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		v.secrets = append(v.secrets, []byte(s))
	}
	return v, nil
}

// Signed reports whether req carries a signature (valid or not).
func Signed(h http.Header) bool { return h.Get(HeaderSignature) != "" }

// Verify checks req's signature over body and returns the signing node's name. It returns
// ErrUnsigned when the request carries no signature, and a descriptive error for a bad, expired
// or replayed one.
func (v *Verifier) Verify(req *http.Request, body []byte) (string, error) {
	return v.verify(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, req.Header.Get, body)
}

// VerifyValues checks a signature carried outside HTTP (see Signer.SignValues); get returns the
// value of a lower-case header name.
func (v *Verifier) VerifyValues(method, path string, get func(string) string, body []byte) (string, error) {
	u := urlOf(path)
	return v.verify(method, u.EscapedPath(), u.RawQuery, func(k string) string { return get(strings.ToLower(k)) }, body)
}

func (v *Verifier) verify(method, path, query string, get func(string) string, body []byte) (string, error) {
	sig := get(HeaderSignature)
	if sig == "" {
		return "", ErrUnsigned
	}
	node, ts, nonce := get(HeaderPeer), get(HeaderTimestamp), get(HeaderNonce)
	if node == "" || ts == "" || len(nonce) != 32 {
		return "", errors.New("signed request lacks its peer, timestamp or nonce header")
	}
	hexSig, ok := strings.CutPrefix(sig, "v1=")
	if !ok {
		return "", errors.New("unknown signature version (want v1=)")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return "", errors.New("malformed signature")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", errors.New("malformed signature timestamp")
	}
	now := v.now()
	at := time.UnixMilli(ms)
	if d := now.Sub(at); d > v.window || d < -v.window {
		return "", fmt.Errorf("signature time %s is outside the replay window of %s (clock skew between nodes?)",
			at.UTC().Format(time.RFC3339), v.window)
	}
	sum := sha256.Sum256(body)
	matched := false
	for _, s := range v.secrets {
		if subtle.ConstantTimeCompare(got, mac(s, method, path, query, ts, nonce, node, sum[:])) == 1 {
			matched = true
			break
		}
	}
	if !matched {
		return "", errors.New("signature does not match (wrong cluster secret, or the request was altered)")
	}
	fresh, err := v.seen.add(got, at.Add(v.window), now)
	if err != nil {
		return "", err
	}
	if !fresh {
		return "", errors.New("signature already used (replayed request)")
	}
	return node, nil
}
