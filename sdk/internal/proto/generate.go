// Package proto holds the generated protocol between herald and its plugin processes. It is
// internal: plugin authors use the sdk package's Go types.
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
