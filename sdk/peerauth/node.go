package peerauth

// HeaderNode is the response header in which a herald node names itself (its node.name) to an
// authenticated peer: on the batch POST, the digests, the pulls and the startup sync. The caller
// shows the name beside the peer's URL in spans, logs, metrics and the dashboard; it identifies
// nothing (a peer's identity is its URL), so it is not signed.
const HeaderNode = "X-Herald-Node"
