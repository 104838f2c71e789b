// Package wirepb holds the generated wire protocol of the grpc transport. It is internal: the
// transport converts it to and from the sdk's Go types at the edge.
package wirepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative wire.proto
