# herald: the reference configuration.
#
# Every option is listed with its default value, so this file runs as it is:
#
#     herald server -config config.hcl        # one node on 127.0.0.1:8761, no peers
#     herald config validate config.hcl       # check a file without starting a node
#
# Precedence, lowest first: built-in defaults < this file < environment variables < -set flags.
#   Environment: HERALD_ + the key path in upper case, with a DOUBLE underscore between levels
#                (single underscores belong to key names):
#                  HERALD_NODE__PORT=8762
#                  HERALD_REPLICATION__MAX_BATCH_SIZE=500
#                  HERALD_CLUSTER__PEERS=http://10.0.0.2:8761/eureka/,http://10.0.0.3:8761/eureka/
#   Flags:       herald server -config config.hcl -set node.port=8762 -set log.level=debug
# Durations are strings with a unit ("500ms", "30s", "15m"); a bare number is refused, because
# "30" would mean nanoseconds to a program and seconds to a reader. Unknown keys are errors, and
# every error names the file, line and key. env("NAME") reads an environment variable (an unset one
# is an error), env("NAME", "default") falls back to a default, and tonumber(...) / tobool(...)
# give the value its type: port = tonumber(env("PORT", "8761")).
#
# Names in [brackets] are the matching Eureka server properties, for operators coming from Eureka.

# The node itself.
node {
  # Name used in logs, traces (service.instance.id) and metrics. Default: "<bind_addr>:<port>".
  name = ""
  # Address and port the Eureka API listens on.
  bind_addr = "127.0.0.1"
  port      = 8761
  # The node's own Eureka base URL as its peers reach it [eureka.myUrl]. Default:
  # http://<bind_addr>:<port>/eureka/. Set it when peers use a DNS name or a load balancer.
  advertise_url = ""
}

log {
  # trace, debug, info, warn or error.
  level = "info"
  # One JSON object per line, for log shippers.
  json = false
}

http {
  # Largest request body accepted (after gzip decoding); larger bodies get 413. A registration is
  # about 1 KiB; a replication batch of 250 registrations about 250 KiB.
  #
  # Fixed limits on what an instance may carry (not options; Eureka has none of them). A
  # registration or PUT .../metadata beyond them gets 400 with a message naming the field and key;
  # from a peer, that batch item alone gets 400; startup sync and anti-entropy skip it:
  #   - metadata keys (instance and dataCenterInfo) must be XML element names once XStream-escaped
  #     ('_' as "__", '$' as "_-"), without ':' ("a:b", "a×b", zero-width spaces are refused),
  #     because Eureka's XML writes them as elements;
  #   - every string (keys and values included) must be UTF-8 that XML 1.0 can carry (no control
  #     characters but tab, CR and LF; no U+FFFE/U+FFFF); a body that is not UTF-8 is refused;
  #   - PUT .../metadata may not make an instance larger than max_body_bytes as a registration;
  #   - vipAddress, secureVipAddress: at most 64 comma-separated entries and 1 KiB each;
  #   - leaseInfo renewalIntervalInSecs, durationInSecs: Java int seconds (at most 2147483647);
  #   - app name and instance id: not blank, not "." or "..", no '/' (the API could not serve
  #     them back).
  # JSON field names match exactly, as Jackson's do: {"HOSTNAME": ...} is an unknown field.
  max_body_bytes   = 1048576
  read_timeout     = "30s"
  write_timeout    = "30s"
  idle_timeout     = "120s"
  # Graceful stop (SIGTERM, SIGINT): readiness is withdrawn first (/health/ready answers 503), the
  # node keeps serving for shutdown_delay so that load balancers and Kubernetes stop sending it
  # traffic, then it closes its port and, within shutdown_timeout, lets in-flight requests finish
  # and drains the replication queues to its peers. Tasks still unsent at the deadline are logged
  # per peer ("replication tasks not sent to peer"); the clients' next heartbeats repair them (a
  # peer that lacks an instance answers its heartbeat 404 and the client registers again).
  shutdown_timeout = "10s"
  shutdown_delay   = "0s"
}

# The registry: leases, eviction and self-preservation, as Eureka.
registry {
  # Stop expiring leases when renewals fall below the threshold, on the theory that the network,
  # not the clients, failed [enableSelfPreservation].
  self_preservation = true
  # Share of expected renewals below which self-preservation holds expiry off
  # [renewalPercentThreshold]. Also caps one eviction pass at 1 - threshold of the registry.
  renewal_percent_threshold = 0.85
  # How often clients renew; the threshold assumes it [expectedClientRenewalIntervalSeconds].
  # Set it to your clients' interval, or the threshold is wrong.
  expected_client_renewal_interval = "30s"
  # How often the expected number of renewing clients is recounted from the registry
  # [renewalThresholdUpdateIntervalMs].
  renewal_threshold_update_interval = "15m"
  # How often expired leases are evicted [evictionIntervalTimerInMs].
  eviction_interval = "60s"
  # herald only: how long self-preservation may protect a lease past its expiry. "0s" protects
  # forever, as Eureka does; a value such as "30m" bounds how long a dead instance can linger
  # after a real outage of its clients.
  max_protection_time = "0s"
  # How long changes stay in /apps/delta [retentionTimeInMSInDeltaQueue], and how often old
  # ones are pruned [deltaRetentionTimerIntervalInMs].
  delta_retention          = "3m"
  delta_retention_interval = "30s"
  # Answer /apps/delta with 403, making clients fetch the full registry [disableDelta].
  disable_delta = false
  # Compare a heartbeat's lastDirtyTimestamp with the stored one: 404 (client has newer data,
  # re-register) or, between peers, 409 with the newer copy [syncWhenTimestampDiffers].
  sync_when_timestamp_differs = true
  # A status override not read for this long is forgotten (Eureka: 1 hour, hard-coded).
  override_expiry = "1h"
  # Eureka counts the lease duration twice after a renew (a lease renewed once expires 180 s
  # after the last renew with the 90 s default) and reports lastRenewalTimestamp in the future.
  # Clients do not depend on either; true fixes both, so dead instances go 90 s sooner.
  fix_lease_duration_bug = false
  # herald only: how long a cancel is remembered, so anti-entropy does not bring the instance back
  # from a peer that missed the cancel. Keep it above cluster.anti_entropy.interval.
  tombstone_ttl = "5m"
  # herald only: a lastDirtyTimestamp further than this ahead of the node's clock is refused, from
  # clients (400) and from peers (that item alone is answered 400). Eureka accepts any: a record
  # stamped years ahead then wins every conflict against the instance's real later writes.
  max_clock_skew = "5m"
}

# Eureka's two-level response cache for /apps, /apps/delta, /apps/{app} and /vips.
response_cache {
  # Serve reads from a read-only copy refreshed every update_interval
  # [shouldUseReadOnlyResponseCache]. It is what makes full fetches cheap, at the price of up to
  # update_interval of staleness. false: reads see a change as soon as it happens.
  use_read_only   = true
  update_interval = "30s" # [responseCacheUpdateIntervalMs]
  auto_expiration = "180s" # [responseCacheAutoExpirationInSeconds]
  # herald only: bytes the cached documents (plain and gzipped) may hold, per level. Eureka bounds
  # its cache by count only, so a client walking many app or VIP names, or a large registry, could
  # grow it without limit. 256 MiB holds the full registry of about 20,000 instances in every
  # format in both levels; past it, expired documents go first, then others, and a document larger
  # than the budget is served without being kept. Raise it with the registry's size.
  max_bytes = 268435456
}

cluster {
  # Eureka base URLs of the nodes of this cluster. The node recognises itself in the list by host
  # AND port (or by node.advertise_url / self_url), so every node can share one list, and several
  # nodes on one host work. Empty: a standalone node.
  peers = []
  # This node's URL as it appears in peers, when neither the advertise URL nor host and port
  # match it (NAT, proxies).
  self_url = ""
  # Optional peer discovery through DNS: A/AAAA records of name with port, or SRV records. Peers
  # found in DNS are reached over https when this node has a tls block, over http otherwise. On
  # Kubernetes, a headless Service gives both (deploy/kubernetes/).
  dns {
    name    = ""
    srv     = false
    port    = 8761
    refresh = "10m"
  }
  # How often the peer set is recomputed [peerEurekaNodesUpdateIntervalMs]. SIGHUP reloads the
  # file's peers at once; queued work for unchanged peers is kept.
  peer_update_interval = "10m"
  # A starting node copies the registry from the first peer that has one
  # [numberRegistrySyncRetries, registrySyncRetryWaitMs]. If it copied nothing, reads answer 403
  # for wait_when_empty [waitTimeInMsWhenSyncEmpty], so clients do not fetch an empty registry;
  # herald lifts the gate early once anti-entropy has compared digests with a peer, and never
  # gates a node that has no peers at all (there is nothing it could be missing). Nor a cold start:
  # when every peer that answers is itself starting (nodes started together), nobody has a
  # registry to give, and reads open at once. Between rounds, peers that did not answer are asked
  # again every second, and the next round starts as soon as one does. The node logs one line
  # when reads open, saying why.
  startup_sync {
    retries         = 5
    retry_wait      = "30s"
    wait_when_empty = "5m"
  }
  # herald only: nodes compare compact digests of their registries and repair differences, so a
  # node that missed writes (partition, crash) converges without waiting for heartbeats. When
  # nothing differs, one round costs one small request per peer, whatever the registry's size.
  # The digests cover every replicated field (status, override, metadata...), so a write lost in
  # a partition longer than replication.max_time_for_replication is repaired too. Two copies with
  # the same lastDirtyTimestamp are settled alike on every node: one with a status override wins
  # over one without (an OUT_OF_SERVICE is kept), otherwise the larger content hash.
  anti_entropy {
    enabled  = true
    interval = "30s"
  }
  # herald only: how peers prove who they are. Every peer surface (POST /peerreplication/batch,
  # the x-netflix-discovery-replication header, /herald/v1/* digests, pulls and sync, and the grpc
  # transport's listener) accepts only authenticated peers; from anyone else the replication
  # header is ignored (the write is a client's: admitted and replicated like any other) and the
  # batch and digest endpoints answer 403. A node with peers and no way to authenticate them
  # refuses to start (see insecure_peers). Two ways, usable together:
  peer_auth {
    # Mutual TLS: a caller presenting a certificate from tls.ca_file is a peer. Needs the tls
    # block; the node presents its own certificate when it calls peers.
    mtls = false
    # With mtls: only certificates with one of these names (Common Name or DNS name) are peers.
    # Set it when clients' certificates come from the same CA. Empty: any certificate of the CA.
    peer_names = []
    # A shared cluster secret (at least 32 bytes; `herald tls secret create` makes one): every
    # request to a peer is signed with HMAC-SHA256 over its method, path, query, time, a nonce,
    # the node's name and the body. For setups where TLS ends at a proxy in front of the nodes.
    # Prefer secret_file, or HERALD_CLUSTER__PEER_AUTH__SECRET, to a secret in this file.
    secret = ""
    # The secret's file: the first line signs; further lines are previous secrets still accepted,
    # so a rotation is: add the new secret as the first line on every node (SIGHUP is not needed
    # for peers to accept it: restart nodes one at a time), then remove the old line.
    secret_file = ""
    # A signature is valid this long around the receiver's clock, and only once (a bounded
    # replay cache remembers it): keep the nodes' clocks in sync (NTP).
    replay_window = "30s"
    # Addresses or CIDR prefixes of Eureka servers peering with this node, trusted as peers
    # WITHOUT proof, because Eureka cannot authenticate. Anyone who can send from such an address
    # can forge peer writes: use only on a network you control.
    eureka_peers = []
  }
  # Run with peers but no peer_auth: every caller of the peer endpoints is trusted, as in Eureka.
  # Only on a network you fully trust; the node logs a warning and the dashboard shows one.
  insecure_peers = false
}

# herald only: TLS for the whole HTTP surface (Eureka API, peer endpoints, /herald/v1, dashboard,
# metrics) and for the node's calls to peers, which verify the peer's certificate against ca_file
# and present this node's certificate. Empty cert_file: plain HTTP. SIGHUP reloads the certificate
# and CA (connections already open are not affected). `herald tls ca create` and
# `herald tls cert create -node NAME -host HOST` make a CA and node certificates.
tls {
  cert_file = ""
  key_file  = ""
  # The cluster CA: peers' certificates must chain to it (and clients' with verify_clients).
  ca_file = ""
  # "1.2" or "1.3".
  min_version = "1.2"
  # Require a certificate from ca_file of every caller, clients included (Eureka clients then
  # need one too). Off: a certificate is verified when a caller presents one.
  verify_clients = false
}

# herald only: credentials for Eureka clients, sent as HTTP Basic (Spring Cloud's
# http://user:pass@host:8761/eureka/, eureka-js-client's auth option, fargo's URL) or as
# "Authorization: Bearer TOKEN". Roles: read (GETs, the dashboard, metrics), register (also
# writes: register, heartbeat, cancel, metadata and status, for the apps its patterns name),
# admin (everything). Without credential blocks the API is open, as Eureka's is. Answers: 401
# without valid credentials, 403 when the role does not allow the request. Peers are not clients.
client_auth {
  # Role of callers without credentials: "admin", "read" or "none". Empty: "admin" while there
  # is no credential, "none" once there is one.
  anonymous = ""
  # credential "orders-service" {
  #   password_file = "/etc/herald/orders.pass"   # or password = "..." (or token / token_file)
  #   role          = "register"
  #   apps          = ["ORDERS", "ORDERS-*"]       # register only: which apps (empty: all)
  # }
}

# Replication to peers: one pipeline per peer with Eureka's three queues (acceptor, pending stage,
# batch work queue).
replication {
  # Transport plugin that carries batches: "http" (Eureka's /peerreplication/batch wire format,
  # works with Eureka servers), "grpc" (herald to herald, one stream per peer, cheaper per task;
  # every node must run it, see its block below) or any plugin "transport" block below.
  transport = "http"
  # Flush policy plugin that decides when a batch is cut. "adaptive" (the default) cuts at once at
  # light load (sub-millisecond propagation) and, as pending tasks, busy workers, send latency or
  # failures grow, waits for up to max_batch_size tasks or batching_delay: few large batches at
  # saturation, where every batch costs a send (and, for a transport in a plugin process, a hop to
  # it). "size-or-age" is Eureka's rule: cut at max_batch_size tasks or when the oldest waited
  # batching_delay, at any load. Or a plugin block below.
  flush_policy = "adaptive"
  # adaptive's config {} block takes max_batch_size, max_delay, target_latency (2ms) and
  # recheck_after (5ms); max_batch_size and max_delay default to this block's max_batch_size and
  # batching_delay (a peer block's, for that peer), in-process or out_of_process = true alike.
  # Action handler plugins, in order: each may validate or enrich a client's registration before it
  # is applied and replicated (the first refusal answers the client), and validate, apply or observe
  # replicated actions on the receiving node. "eureka" applies the five Eureka actions; leave it
  # first unless another handler applies them. Others come from plugin "action_handler" blocks.
  action_handlers = ["eureka"]
  # Most tasks in one batch (Eureka: 250, hard-coded).
  max_batch_size = 250
  # Most bytes in one batch, as the http transport encodes it (envelope included). Eureka cuts by
  # count only, so 250 large registrations make a batch its peers refuse with 413, and with it
  # every other write it carries. It must stay below the peers' http.max_body_bytes; the default is
  # 1 MiB less 64 KiB. It is also the largest registration a node admits: a client registration
  # whose replication item is larger is refused with 413 rather than acknowledged and never
  # delivered. Should a peer still refuse a batch (a smaller limit there, an item it rejects), the
  # batch is sent again in halves until only the refused task is dropped and counted.
  max_batch_bytes = 983040
  # Longest a task waits to be batched: with adaptive, only under load (its max_delay); with
  # size-or-age, at any load. Eureka's 500 ms puts half a second under every propagation. herald
  # cuts a batch only when a worker is free, so under load tasks queue and batches grow anyway.
  # Measured on a 2-core machine, three nodes in one process (BENCHMARKS.md, "Flush policies";
  # the 500ms row from "Propagation", at 1,000 writes/s):
  #   policy / delay       p50 / p99 propagation at light load   replicated writes/s at saturation
  #   size-or-age 500ms    136 ms / 255 ms                        -
  #   size-or-age 5ms      3.0 ms / 7.4 ms                        1.21x size-or-age 1ms (26 tasks per batch)
  #   size-or-age 1ms      1.4 ms / 2.4 ms                        1.00x (6 tasks per batch)
  #   adaptive 5ms         <1 ms / 0.8 ms                         0.97x (22 tasks per batch)  <- default
  # A transport in a plugin process pays a hop per batch: adaptive's larger batches under load
  # pay it less often.
  batching_delay = "5ms"
  # Most tasks pending per peer; past it the oldest is dropped and counted
  # [maxElementsInPeerReplicationPool].
  max_buffer_size = 10000
  # Most bytes pending per peer, each task counted at its encoded size; past it the oldest tasks
  # are dropped and counted as overflow, as past max_buffer_size. A count alone does not bound
  # memory: 10000 registrations of 500 KB are 5 GB. 64 MiB holds 10000 tasks of ordinary size
  # (heartbeats and status changes are ~150 bytes, registrations ~1-2 KB). A peer that is down
  # costs at most this, plus workers × max_batch_bytes being sent; anti-entropy repairs what it
  # missed when it is back. Must be at least max_batch_bytes.
  max_buffer_bytes = 67108864
  # Concurrent senders per peer [maxThreadsForPeerReplication].
  workers = 20
  # Pause for this peer after a 503 or a read timeout (Eureka: 1000 ms), and after a connection
  # failure (Eureka: 100 ms). A pause affects only that peer.
  congestion_retry_delay      = "1s"
  network_failure_retry_delay = "100ms"
  # Longest pause (Eureka: 30 s).
  max_delay_cap = "30s"
  # A cancel or status change not sent within this is dropped [maxTimeForReplication]; a register
  # or heartbeat lives for the instance's renewal interval, as in Eureka.
  max_time_for_replication = "30s"
  # The http transport's timeouts [peerNodeConnectTimeoutMs, peerNodeReadTimeoutMs].
  connect_timeout = "1s"
  read_timeout    = "5s"
  # gzip request bodies [enableReplicatedRequestCompression].
  compress = false

  # Per-peer tuning: a peer "URL" block overrides the settings above for that peer.
  # peer "http://10.0.0.3:8761/eureka/" {
  #   transport      = "grpc"
  #   max_batch_size = 500
  #   batching_delay = "5ms"
  #   workers        = 4
  #   # herald only: host:port of the peer's listener for a transport that has one of its own (the
  #   # grpc transport, a plugin's receiving side), as this node reaches it: the transport's
  #   # sdk.Peer.Address. Unset (the default), such a transport takes the peer URL's host and its
  #   # port plus the transport's port_offset, which is what a cluster of nodes with the same
  #   # settings needs (peers found by DNS always do). Set it behind NAT or port mappings, or for a
  #   # peer whose transport listens elsewhere. Transports that send to the peer's URL ignore it.
  #   transport_address = "10.0.0.3:9761"
  # }
}

telemetry {
  # service.name of traces. Each node also reports node.name as service.instance.id.
  service_name = "herald"
  # OpenTelemetry traces, one per replicated task, from the client's request to the apply on each
  # peer. Off by default, and then free. Setting OTEL_EXPORTER_OTLP_ENDPOINT (or
  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it on as in any OpenTelemetry SDK; the other OTEL_
  # variables (protocol, headers, sampler, service name, resource attributes) are honoured too.
  tracing {
    enabled      = false
    exporter     = "otlp-grpc" # or "otlp-http"
    endpoint     = ""          # host:port; default localhost:4317 (grpc) / localhost:4318 (http)
    headers      = {}
    insecure     = false
    # Share of new traces sampled; a trace started upstream keeps its parent's decision.
    sample_ratio = 1.0
    # Share of new traces per kind of work, multiplied by sample_ratio. The kind is decided where a
    # trace starts (the client's request) and every node and plugin process follows that decision.
    # Heartbeats are most of the traffic and all alike; reads and anti-entropy checks are traced
    # only under a sampled parent. OTEL_TRACES_SAMPLER, when set, replaces all of this.
    sampling = {
      register     = 1    # registrations and metadata updates
      heartbeat    = 0.01
      cancel       = 1
      status       = 1    # status overrides and their removal
      reads        = 0    # GETs of the Eureka API, the dashboard, metrics
      anti_entropy = 0    # /herald/v1 digests, pulls, startup sync
      other        = 1    # custom actions and anything else that starts a trace
    }
  }
  # Prometheus metrics in the text format.
  metrics {
    enabled = true
    path    = "/metrics"
  }
  # Go's runtime profiles (CPU, heap, goroutines, block, mutex) at /debug/pprof/, for
  # `go tool pprof http://HOST:PORT/debug/pprof/heap`. Off by default: profiles show the process's
  # internals and a CPU profile costs while it runs. With client_auth they need the admin role;
  # without it anyone who reaches the port can read them.
  profiling {
    enabled = false
  }
}

# Where external plugin binaries are looked up by name (herald-KIND-NAME); "" = only commands with
# a path, or on PATH.
plugin_dir = ""

# Plugins. The built-in ones (transports "http" and "grpc", flush policies "size-or-age" and
# "adaptive", action handler "eureka") run in-process and need no block. A block configures a
# built-in, runs it as its own process, or adds an external plugin built with herald's sdk (see
# sdk/TRANSPORT.md, sdk/FLUSH_POLICY.md, sdk/ACTION_HANDLER.md and examples/). Built-in and
# external plugins, in-process or not, are loaded the same way: described, their config {} block
# checked against the plugin's schema (unknown keys, with the nearest known key; wrong types, e.g.
# 2.5 for a whole number or 30 for a duration, which wants "30s"; missing required keys), then
# configured and validated by the plugin itself. Plugin processes are supervised: a crash is
# noticed at once, the plugin restarts with backoff and the batches it was sending are retried.
# They die with herald. Every problem (missing binary, checksum mismatch, handshake or kind
# mismatch, a config key the schema or the plugin refuses) stops the start with the file, line and
# key; `herald config validate` runs the same checks (it launches each plugin process, checks it
# and closes it, and starts nothing).
#
# A plugin process runs with GOMAXPROCS=1 (one thread running Go code) unless its block sets
# max_procs: a transport, flush policy or action handler waits for the node most of the time and
# works briefly per batch, and with one P its runtime wakes one thread per batch instead of handing
# goroutines between threads; on a 2-core machine under load that gave the out-of-process http
# transport about a quarter more writes/s and a fifth less CPU per write (BENCHMARKS.md). Set
# max_procs = 0 for Go's default (one per CPU, or GOMAXPROCS from herald's environment), or more
# than 1 for a plugin that does heavy work of its own (compression of large batches, say). GOMAXPROCS
# in env does the same; a block may set one of the two.
#
# Built-ins take their defaults from the node: http's connect_timeout, read_timeout and compress
# from the replication block, size-or-age's max_batch_size and batching_delay likewise, the node's
# name and peer authentication for every transport. A key written in config {} wins.
#
# plugin "flush_policy" "size-or-age" {
#   config {
#     max_batch_size = 250           # tasks that cut a batch at once (default: replication.max_batch_size)
#     batching_delay = "5ms"         # longest the oldest task waits (default: replication.batching_delay)
#   }
# }
#
# plugin "transport" "http" {
#   out_of_process = true            # re-executes herald as `herald plugin serve transport http`
#   config {                         # the plugin's own settings, checked against its schema
#     connect_timeout = "1s"         # default: replication.connect_timeout
#     read_timeout    = "5s"         # default: replication.read_timeout
#     compress        = true         # default: replication.compress
#     node_id         = "node-a"     # sent as DiscoveryIdentity-Id; default: node.name
#   }
# }
#
# plugin "transport" "grpc" {       # herald-to-herald protobuf streams: replication { transport = "grpc" }
#   config {                         # on every node; add out_of_process = true to run it as a process
#     listen      = "0.0.0.0:9761"   # default: the node's host and port + port_offset; "off" = send only
#     port_offset = 1000             # peers are reached at their Eureka port + port_offset, unless their
#                                    # peer block sets transport_address
#     compress    = false            # gzip frames
#     connect_timeout = "1s"         # time to open a peer's connection and stream
#     read_timeout    = "5s"         # time to wait for a batch's answer (past it: congestion)
#   }
# }
#
# plugin "action_handler" "admission" {   # add it to replication { action_handlers = [...] }
#   command = "/usr/local/bin/herald-action_handler-admission"   # examples/admission
#   config {
#     required_metadata = ["owner"]
#   }
# }
#
# plugin "transport" "custom" {     # select it with replication { transport = "custom" }
#   command = "/usr/local/bin/herald-transport-custom"   # or a name found in plugin_dir
#   args    = ["-v"]
#   env     = { CUSTOM_REGION = "eu-west-1" }
#   max_procs = 1                   # the process's GOMAXPROCS (default 1; 0: Go's default)
#   sha256  = "0000000000000000000000000000000000000000000000000000000000000000"
#   config {
#     endpoint = "10.0.0.9:7000"
#   }
# }
