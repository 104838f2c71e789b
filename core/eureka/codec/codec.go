// Package codec reads and writes Eureka's wire formats: the legacy Jackson JSON and XStream XML
// documents (instance, application, applications), the compact variant, and the peer replication
// batch (ReplicationList / ReplicationListResponse).
//
// Output matches Eureka byte for byte where that is cheap (key order, string-typed "auto" fields,
// `{"$":8080,"@enabled":"true"}` ports, `@class` markers). Input is lenient where Eureka clients
// differ (numbers or strings, bare port numbers, boolean @enabled, missing or unknown @class,
// `instance` as object or array, any field order) and strict where the data would be wrong.
package codec

import (
	"errors"

	"github.com/heraldhq/herald/core/registry"
)

// Format is a wire format.
type Format int

// The two formats Eureka speaks.
const (
	XML Format = iota
	JSON
)

// ErrParse is wrapped by every decoding error (the API answers "cannot parse request body").
var ErrParse = errors.New("cannot parse request body")

// Options change how documents are written.
type Options struct {
	// Compact selects the reduced encoding of X-Eureka-Accept: compact.
	Compact bool
}

// AppendInstance appends {"instance":{...}} (JSON) or <instance>...</instance> (XML).
func AppendInstance(dst []byte, f Format, inst *registry.Instance, o Options) []byte {
	panic("unimplemented")
}

// AppendInstanceBare appends the bare JSON object of an instance (no wrapper), as used in
// replication batch items and 409 entities.
func AppendInstanceBare(dst []byte, inst *registry.Instance) []byte { panic("unimplemented") }

// AppendApplication appends {"application":{...}} / <application>...</application>.
func AppendApplication(dst []byte, f Format, app *registry.Application, o Options) []byte {
	panic("unimplemented")
}

// AppendApplications appends {"applications":{...}} / <applications>...</applications>.
func AppendApplications(dst []byte, f Format, apps *registry.Applications, o Options) []byte {
	panic("unimplemented")
}

// DecodeInstance parses a wrapped instance document ({"instance":{...}} or <instance>). Errors
// wrap ErrParse. Defaults follow Eureka's parser (status UP, ports 7001/7002, ...). A missing
// lastDirtyTimestamp is left 0 (the caller fills in its clock).
func DecodeInstance(data []byte, f Format) (*registry.Instance, error) { panic("unimplemented") }

// DecodeInstanceBare parses a bare JSON InstanceInfo object.
func DecodeInstanceBare(data []byte) (*registry.Instance, error) { panic("unimplemented") }

// DecodeApplications parses an applications document (used by startup sync and tests).
func DecodeApplications(data []byte, f Format) (*registry.Applications, error) {
	panic("unimplemented")
}
