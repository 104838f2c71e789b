package peerauth

import (
	"context"
	"net/url"
)

// Method says how a peer proved who it is.
type Method string

// The ways a caller becomes a peer.
const (
	// MTLS: a client certificate from the cluster CA.
	MTLS Method = "mtls"
	// Secret: a request signed with the cluster secret.
	Secret Method = "secret"
	// Trusted: the operator opted out of authentication for this caller (an Eureka server, or
	// cluster { insecure_peers = true }).
	Trusted Method = "trusted"
)

// Identity is an authenticated peer.
type Identity struct {
	// Name is the peer's node name (certificate name, or the signed peer header).
	Name   string
	Method Method
}

type ctxKey struct{}

// WithPeer returns ctx marked as coming from the authenticated peer id.
func WithPeer(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// PeerFrom returns the authenticated peer of ctx, if any.
func PeerFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

func urlOf(path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		return &url.URL{Path: path}
	}
	return u
}
