// Package sdk is what a team imports to extend herald, and nothing else: plugins depend on this
// package (and its subpackages), never on herald's core.
//
// herald replicates every registry write to every peer through a pipeline per peer. Two parts of
// that pipeline are plugins:
//
//   - a Transport carries one batch of replicated items to one peer and returns the peer's answer
//     for each item, or a failure class for the whole batch;
//   - a FlushPolicy decides when the pipeline cuts a batch from the tasks waiting for a peer.
//
// A plugin runs in its own process and talks to herald over gRPC (github.com/hashicorp/go-plugin,
// mutual TLS set up by herald). Its main function is one call:
//
//	package main
//
//	import "github.com/heraldhq/herald/sdk"
//
//	func main() { sdk.Serve(sdk.WithTransport(&Carrier{})) }
//
// and herald runs it from a `plugin "transport" "carrier" { command = "/path/to/binary" }` block,
// selected with `replication { transport = "carrier" }` (or per peer in a `peer "URL" {}` block).
//
// # Writing a transport
//
// Implement Transport:
//
//	func (c *Carrier) Send(ctx context.Context, peer sdk.Peer, b sdk.Batch) ([]sdk.ItemResult, error)
//
// Send delivers b.Items, in order, to peer and returns exactly one ItemResult per item, in the same
// order. Status codes are Eureka's: 200 applied; 404 for a heartbeat means the peer lacks the
// instance (herald then sends it a register); 409 means the peer holds a newer copy, which it
// returns in Entity as a bare Eureka InstanceInfo JSON object (herald adopts it). Each Item carries
// a Register's instance as opaque JSON bytes (Item.Instance) and the W3C trace context of its task
// (Item.TraceParent): carry both unchanged.
//
// When the whole batch fails, return an error made with Fail and a class, because the class
// decides what herald does with the batch:
//
//   - Transient: the network failed (connection refused, reset). The batch goes back to the front
//     of the queue and this peer pauses for the network-failure delay (100 ms by default).
//   - Congestion: the peer is overloaded (it answered 503, or did not answer in time). Same, with the
//     longer congestion delay (1 s), so a struggling peer is not hammered.
//   - Permanent: retrying cannot help (the peer refused the request). The batch is dropped and
//     counted.
//
// An error without a class counts as Permanent; a cancelled ctx as Transient. Honour ctx: herald
// cancels it when it stops. Send is called concurrently by several workers.
//
// On the receiving side, a transport that listens on its own (rather than posting to the peer's
// Eureka endpoint as the built-in "http" transport does) hands what it receives to herald; that
// part of the SDK is not published yet.
//
// # Writing a flush policy
//
// Implement FlushPolicy:
//
//	func (p *Policy) Decide(ctx context.Context, s sdk.PendingState) (sdk.FlushDecision, error)
//
// A call into a plugin costs about a fifth of a millisecond, so herald never asks per task: it asks
// once, enforces the returned thresholds itself (cut when MinCount tasks wait or the oldest has
// waited MaxAge, at most MaxBatch per batch, or at once with CutNow), and asks again after
// RecheckAfter (or after the next cut when it is zero). PendingState tells the policy the queue's
// size and age, idle workers, batches in flight and the peer's recent latency and errors. If
// Decide fails, herald falls back to its size-or-age rule.
//
// # Configuration and description
//
// A plugin may implement Describer (its name, kind and the keys of its config block) and
// Configurable: herald calls Configure once with the block's config {} data, the node's identity
// and log level. Return a Diagnostic per problem, with the key's path; herald refuses to start and
// prints each one with the block's file and line.
//
// # Crashes
//
// A plugin process that dies is restarted by herald with backoff; the batches it was sending fail
// as Transient and are retried, so no replicated write is lost. A plugin exits by itself when
// herald goes away.
//
// The built-in plugins in herald's plugins/ directory are written against this package only and
// are complete examples: plugins/transport/http (a transport) and plugins/flush/sizeorage (a flush
// policy).
package sdk
