package main

import (
	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/core/replication"
	"github.com/heraldhq/herald/sdk"
)

// addressedPeers fills sdk.Peer.Address, the address of a peer's transport listener, from the
// peer's `peer "URL" { transport_address = "host:port" }` block before the pipeline sees the peer
// set: every pipeline, its transport's Send, and its logs and spans see the same Peer. A peer
// without the setting keeps Address empty, and a transport with a listener of its own derives
// the address from the peer's URL (port_offset).
// It embeds the pipeline itself, so the optional methods the node looks for (Replicate,
// AdmitRegistration) stay visible.
type addressedPeers struct {
	*replication.Replicator
	cfg *config.Config
}

// withPeerAddresses wraps r when some peer block sets transport_address.
func withPeerAddresses(r *replication.Replicator, cfg *config.Config) node.Replicator {
	for _, pt := range cfg.Replication.Peers {
		if pt.TransportAddress != "" {
			return addressedPeers{Replicator: r, cfg: cfg}
		}
	}
	return r
}

// SetPeers implements cluster.PeerSetter. The same peer always gets the same Address, so an
// unchanged peer stays an equal value and keeps its pipeline.
func (a addressedPeers) SetPeers(peers []sdk.Peer) {
	for i, p := range peers {
		if pt, ok := peerTuning(a.cfg, p); ok && pt.TransportAddress != "" {
			peers[i].Address = pt.TransportAddress
		}
	}
	a.Replicator.SetPeers(peers)
}
