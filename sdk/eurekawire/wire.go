// Package eurekawire reads and writes Eureka's peer replication batch format: the body of
// POST {base}/peerreplication/batch (ReplicationList) and its answer (ReplicationListResponse).
// Transports that peer with Eureka servers, and herald's batch endpoint, use it.
package eurekawire

import "github.com/heraldhq/herald/sdk"

// AppendReplicationList appends {"replicationList":[...]} for the items, in Eureka's field order
// (appName, id, lastDirtyTimestamp as a number, overriddenStatus, status, instanceInfo bare, action),
// null fields omitted. Custom actions carry their Payload as base64 in "payload" (ignored by Eureka).
// A non-empty TraceParent is carried as "traceparent" (ignored by Eureka).
func AppendReplicationList(dst []byte, items []sdk.Item) []byte { panic("unimplemented") }

// DecodeReplicationList parses a ReplicationList. Each item's instanceInfo is kept as raw JSON in
// Item.Instance.
func DecodeReplicationList(data []byte) ([]sdk.Item, error) { panic("unimplemented") }

// AppendReplicationListResponse appends {"responseList":[{"statusCode":200},...]} with
// responseEntity as the bare instance when set.
func AppendReplicationListResponse(dst []byte, results []sdk.ItemResult) []byte {
	panic("unimplemented")
}

// DecodeReplicationListResponse parses a ReplicationListResponse.
func DecodeReplicationListResponse(data []byte) ([]sdk.ItemResult, error) { panic("unimplemented") }
