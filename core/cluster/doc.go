// Package cluster knows the other nodes of a herald cluster and keeps this node's registry in step
// with theirs, outside the write-by-write replication pipeline.
//
// It has three jobs:
//
//   - Peers: the set of peer nodes, from a static list of Eureka base URLs and optionally DNS
//     (A/AAAA or SRV), without this node. A URL is this node when its host resolves to one of this
//     node's addresses and its port is this node's port, or when it equals the configured self URL.
//     Eureka compares the host only, so two nodes on one machine never replicate to each other;
//     herald compares host and port. The set is recomputed periodically and on Reload, and handed to
//     the replication pipeline, which keeps the queues of peers that did not change.
//
//   - Startup sync: copy the registry of the first peer that has a non-empty one, as Eureka's
//     syncUp does, then open the registry for traffic, and gate reads for a while if nothing was
//     copied (Eureka's shouldAllowAccess). Nodes report where their own start is (GET
//     {prefix}sync), so when every peer that answers is starting too the cluster is taken as
//     cold-starting and reads open at once (coldstart.go). Ready says whether reads are open and
//     why, for a readiness endpoint; the node logs one line when they open.
//
//   - Anti-entropy, which Eureka lacks: every node periodically compares a digest of its registry
//     with each peer's and pulls what it missed (newer copies, instances it lacks, cancels), so a node
//     that missed writes during a partition or a crash converges without waiting for heartbeats. The
//     digest covers every replicated field of every instance (registry.ContentHash), and copies
//     with equal lastDirtyTimestamps are ordered the same way on every node (registry.Version), so
//     any lost write is repaired, whatever the length of the partition. The protocol and its rules
//     are described on Cluster and in antientropy.go.
package cluster
