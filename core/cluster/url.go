package cluster

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// peerURL is a peer's Eureka base URL in canonical form.
type peerURL struct {
	// url is the canonical URL, user info included: what the replication transport dials.
	url string
	// key is the canonical URL without user info. Two URLs that differ only in credentials name the
	// same node, and the key is safe to log, so it is also the peer's name.
	key string
	// host is the lower-case host without brackets; port the explicit or default port.
	host string
	port int
	// base is scheme://host:port with user info, where the herald endpoints are asked.
	base string
}

// normalizeURL returns the canonical form of a Eureka base URL: scheme and host lower case, the
// default port dropped (so http://a/ and http://a:80/ are one peer), the path ending in a slash
// (Eureka's peer URLs are used both with and without it).
func normalizeURL(raw string) (peerURL, error) {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	if err != nil {
		return peerURL{}, fmt.Errorf("peer URL %q: %w", raw, err)
	}
	scheme := strings.ToLower(u.Scheme)
	var defPort int
	switch scheme {
	case "http":
		defPort = 80
	case "https":
		defPort = 443
	default:
		return peerURL{}, fmt.Errorf("peer URL %q: scheme must be http or https", raw)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return peerURL{}, fmt.Errorf("peer URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return peerURL{}, fmt.Errorf("peer URL %q: a base URL has no query or fragment", raw)
	}
	port := defPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return peerURL{}, fmt.Errorf("peer URL %q: invalid port %q", raw, p)
		}
		port = n
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != defPort {
		hostport += ":" + strconv.Itoa(port)
	}
	path := u.EscapedPath()
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	userinfo := ""
	if u.User != nil {
		userinfo = u.User.String() + "@"
	}
	return peerURL{
		url:  scheme + "://" + userinfo + hostport + path,
		key:  scheme + "://" + hostport + path,
		host: host,
		port: port,
		base: scheme + "://" + userinfo + hostport,
	}, nil
}

// splitListen returns the host and port of a listen address; an empty or unspecified host means
// every address of the machine.
func splitListen(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("listen address %q: invalid port %q", addr, p)
	}
	return strings.ToLower(h), n, nil
}
