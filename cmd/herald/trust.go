package main

import (
	"fmt"

	"github.com/heraldhq/herald/core/clientauth"
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// peerAuthConfig is the node's peer authentication from the tls block and cluster.peer_auth, as
// transports and plugins receive it.
func peerAuthConfig(cfg *config.Config) (peerauth.Config, error) {
	secrets, err := cfg.PeerSecrets()
	if err != nil {
		return peerauth.Config{}, &config.Error{Pos: cfg.PosOf("cluster", "peer_auth", "secret_file"), Key: "cluster.peer_auth.secret_file", Msg: err.Error()}
	}
	pa := cfg.Cluster.PeerAuth
	return peerauth.Config{
		Secrets:       secrets,
		ReplayWindow:  pa.ReplayWindow,
		TLS:           peerauth.TLSFiles{CAFile: cfg.TLS.CAFile, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile},
		TLSMinVersion: cfg.TLS.MinVersion,
		MTLS:          pa.MTLS,
		PeerNames:     pa.PeerNames,
		Insecure:      cfg.Cluster.InsecurePeers,
	}, nil
}

// nodeTrust builds the node's TLS and peer authentication.
func nodeTrust(cfg *config.Config, name string) (node.Trust, error) {
	pa, err := peerAuthConfig(cfg)
	if err != nil {
		return node.Trust{}, err
	}
	t := node.Trust{RequireClientCert: cfg.TLS.VerifyClients}
	if t.TLS, err = pa.LoadTLS(); err != nil {
		return node.Trust{}, &config.Error{Pos: cfg.PosOf("tls"), Key: "tls", Msg: err.Error()}
	}
	if t.Signer, err = pa.Signer(name); err != nil {
		return node.Trust{}, fmt.Errorf("cluster.peer_auth: %w", err)
	}
	if t.Auth, err = pa.Authenticator(cfg.HTTP.MaxBodyBytes); err != nil {
		return node.Trust{}, fmt.Errorf("cluster.peer_auth: %w", err)
	}
	creds, anon, err := cfg.ClientCredentials()
	if err != nil {
		return node.Trust{}, err
	}
	if len(creds) > 0 || anon != clientauth.Admin {
		if t.Clients, err = clientauth.New(creds, anon); err != nil {
			return node.Trust{}, err
		}
	}
	for _, e := range cfg.Cluster.PeerAuth.EurekaPeers {
		p, err := config.ParsePrefix(e)
		if err != nil {
			return node.Trust{}, &config.Error{Pos: cfg.PosOf("cluster", "peer_auth", "eureka_peers"), Key: "cluster.peer_auth.eureka_peers", Msg: err.Error()}
		}
		t.Auth.Trusted = append(t.Auth.Trusted, p)
	}
	return t, nil
}
