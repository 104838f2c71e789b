package grpctransport

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/sdk/peerauth"
)

// streamMethod is what a stream's signature names: the gRPC method of the replication stream.
const streamMethod = "/herald.transport.grpc.v1.Replication/Replicate"

// authSetup is the peer authentication of one transport: credentials for dialing and listening,
// a signer for the streams it opens, and an authenticator for the streams it accepts.
type authSetup struct {
	dial   credentials.TransportCredentials
	listen []grpc.ServerOption
	signer *peerauth.Signer
	auth   *peerauth.Authenticator
}

// newAuthSetup builds it from the node's peer authentication. Without TLS the connection is
// plaintext: a stream is then authenticated when it opens (a signature with the cluster secret
// over its opening), but its frames are not integrity-protected, so use TLS on networks an
// attacker can write to.
func newAuthSetup(node string, pa peerauth.Config) (*authSetup, error) {
	a := &authSetup{dial: insecure.NewCredentials()}
	t, err := pa.LoadTLS()
	if err != nil {
		return nil, err
	}
	if t != nil {
		a.dial = credentials.NewTLS(t.ClientConfig())
		a.listen = append(a.listen, grpc.Creds(credentials.NewTLS(t.ServerConfig(false))))
	}
	if a.signer, err = pa.Signer(node); err != nil {
		return nil, err
	}
	if a.auth, err = pa.Authenticator(0); err != nil {
		return nil, err
	}
	return a, nil
}

// streamContext adds the opening signature to a stream's context.
func (a *authSetup) streamContext(ctx context.Context) context.Context {
	if a.signer == nil {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, metadata.New(a.signer.SignValues("POST", streamMethod, nil)))
}

// errNotPeer refuses a caller that did not authenticate as a peer.
var errNotPeer = errors.New("not an authenticated peer")

// check authenticates an inbound stream: a certificate from the cluster CA (mutual TLS), a valid
// opening signature, or an operator's explicit trust.
func (a *authSetup) check(ctx context.Context) (peerauth.Identity, error) {
	au := a.auth
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			if id, ok := au.CertPeer(ti.State.VerifiedChains[0][0]); ok {
				return id, nil
			}
		}
	}
	if au.Verifier != nil {
		md, _ := metadata.FromIncomingContext(ctx)
		get := func(k string) string {
			if v := md.Get(k); len(v) > 0 {
				return v[0]
			}
			return ""
		}
		if get("x-herald-signature") != "" {
			name, err := au.Verifier.VerifyValues("POST", streamMethod, get, nil)
			if errors.Is(err, peerauth.ErrBusy) {
				return peerauth.Identity{}, status.Error(codes.Unavailable, err.Error())
			}
			if err != nil {
				return peerauth.Identity{}, status.Error(codes.Unauthenticated, "peer authentication failed: "+err.Error())
			}
			return peerauth.Identity{Name: name, Method: peerauth.Secret}, nil
		}
	}
	if au.Insecure {
		return peerauth.Identity{Method: peerauth.Trusted}, nil
	}
	return peerauth.Identity{}, status.Error(codes.Unauthenticated, errNotPeer.Error())
}

// interceptor refuses streams from callers that are not authenticated peers.
func (a *authSetup) interceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if _, err := a.check(ss.Context()); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
