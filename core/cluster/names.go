package cluster

import (
	"net/http"
	"strings"
	"sync"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/sdk/peerauth"
)

// maxNodeName bounds a learned name; a longer header is ignored.
const maxNodeName = 128

// PeerNames holds the node names the peers gave in their answers (peerauth.HeaderNode), by the
// peer's origin (scheme://host:port). The names are for people: spans, logs, the per-peer info
// metric and the dashboard show them beside the peer's URL. A peer's identity stays its URL: the
// peer set handed to the replication pipeline never carries a learned name, so learning or
// changing one never replaces a peer's pipeline. A nil *PeerNames knows no names. It is safe for
// concurrent use.
type PeerNames struct {
	logger hclog.Logger
	mu     sync.RWMutex
	names  map[string]string // by origin
}

// NewPeerNames returns an empty name book; logger (may be nil) gets one line per learned name.
func NewPeerNames(logger hclog.Logger) *PeerNames {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &PeerNames{logger: logger, names: map[string]string{}}
}

// Learn records name for the peer at rawURL, any URL on the peer (its Eureka base URL or a
// request URL). An empty, overlong or unprintable name is ignored.
func (n *PeerNames) Learn(rawURL, name string) {
	if n == nil || !validNodeName(name) {
		return
	}
	o := origin(rawURL)
	if o == "" {
		return
	}
	n.mu.RLock()
	old, ok := n.names[o]
	n.mu.RUnlock()
	if ok && old == name {
		return
	}
	n.mu.Lock()
	old, ok = n.names[o]
	n.names[o] = name
	n.mu.Unlock()
	if !ok {
		n.logger.Info("peer node name learned", "peer", o, "peer_name", name)
	} else if old != name {
		n.logger.Info("peer node name changed", "peer", o, "peer_name", name, "was", old)
	}
}

// Name returns the name learned for the peer at rawURL, or "" when none is known yet.
func (n *PeerNames) Name(rawURL string) string {
	if n == nil {
		return ""
	}
	o := origin(rawURL)
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.names[o]
}

// LearnFrom records the name in resp's peerauth.HeaderNode, if any, for the peer resp came from.
func (n *PeerNames) LearnFrom(resp *http.Response) {
	if n == nil || resp == nil || resp.Request == nil || resp.Request.URL == nil {
		return
	}
	if name := resp.Header.Get(peerauth.HeaderNode); name != "" {
		n.Learn(resp.Request.URL.String(), name)
	}
}

// Transport returns base (http.DefaultTransport when nil) learning the name in every answer.
func (n *PeerNames) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if n == nil {
		return base
	}
	return &learningTransport{names: n, base: base}
}

type learningTransport struct {
	names *PeerNames
	base  http.RoundTripper
}

func (t *learningTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		t.names.LearnFrom(resp)
	}
	return resp, err
}

// origin returns "scheme://host:port" of a URL, lower-cased, without user info, path, or a default
// port ("" when it is not an http or https URL). It is string work only, as it runs per sampled
// task span.
func origin(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	scheme = strings.ToLower(scheme)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	rest = strings.ToLower(rest)
	switch {
	case scheme == "http":
		rest = strings.TrimSuffix(rest, ":80")
	case scheme == "https":
		rest = strings.TrimSuffix(rest, ":443")
	default:
		return ""
	}
	if rest == "" {
		return ""
	}
	return scheme + "://" + rest
}

func validNodeName(s string) bool {
	if s == "" || len(s) > maxNodeName {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
