# Node c of a three-host herald cluster: herald-a, herald-b and herald-c.example.internal.
# The three files differ only in node {} and in the node's own certificate. Put this one at
# /etc/herald/config.hcl on herald-c.example.internal and run: herald server -config /etc/herald/config.hcl
# Every option and its default: config.hcl at the top of the repository.

node {
  name      = "herald-c"
  bind_addr = "0.0.0.0"
  port      = 8761
  # How the other nodes and the clients reach this one.
  advertise_url = "https://herald-c.example.internal:8761/eureka/"
}

# Certificates made with herald itself (see README.md next to this file):
#   herald tls ca create -dir tls
#   herald tls cert create -node herald-c -host herald-c.example.internal -ca tls/herald-ca.pem -ca-key tls/herald-ca-key.pem -dir tls
tls {
  cert_file = "/etc/herald/tls/herald-c.pem"
  key_file  = "/etc/herald/tls/herald-c-key.pem"
  ca_file   = "/etc/herald/tls/herald-ca.pem"
}

cluster {
  # The same list on every node: a node recognises its own URL and leaves it out.
  peers = [
    "https://herald-a.example.internal:8761/eureka/",
    "https://herald-b.example.internal:8761/eureka/",
    "https://herald-c.example.internal:8761/eureka/",
  ]
  # Peers prove themselves with a certificate of the cluster CA, and only these names are peers
  # (clients may hold certificates of the same CA).
  peer_auth {
    mtls       = true
    peer_names = ["herald-a", "herald-b", "herald-c"]
  }
}

http {
  # On SIGTERM: readiness withdrawn (GET /health/ready answers 503) for shutdown_delay while the
  # load balancer notices, then the replication queues drain to the other two nodes.
  shutdown_delay   = "5s"
  shutdown_timeout = "20s"
}

log {
  json = true
}
