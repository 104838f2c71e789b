package sdk

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// PeerAddress returns the host:port of a peer's transport listener: peer.Address when the peer's
// block sets transport_address, otherwise the host of its Eureka URL and that URL's port (80 or
// 443 when it has none) plus portOffset, the convention herald's grpc transport follows (a
// transport documents its offset as a config key).
func PeerAddress(peer Peer, portOffset int) (string, error) {
	if peer.Address != "" {
		if _, _, err := net.SplitHostPort(peer.Address); err != nil {
			return "", fmt.Errorf("address %q: %w", peer.Address, err)
		}
		return peer.Address, nil
	}
	return OffsetAddress(peer.URL, portOffset)
}

// OffsetAddress is host:port+offset of a URL such as a node's Eureka URL
// (http://10.0.0.2:8761/eureka/ and 1000 give 10.0.0.2:9761): where a node's own listener goes by
// the same convention.
func OffsetAddress(raw string, offset int) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("URL %q has no host", raw)
	}
	port := 0
	switch {
	case u.Port() != "":
		if port, err = strconv.Atoi(u.Port()); err != nil {
			return "", fmt.Errorf("URL %q: port: %w", raw, err)
		}
	case u.Scheme == "https":
		port = 443
	case u.Scheme == "http":
		port = 80
	default:
		return "", fmt.Errorf("URL %q has no port", raw)
	}
	if p := port + offset; p < 1 || p > 65535 {
		return "", fmt.Errorf("URL %q: port %d + offset %d is not a TCP port", raw, port, offset)
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(port+offset)), nil
}
