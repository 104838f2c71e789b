// Package codec reads and writes Eureka's wire formats: the legacy Jackson JSON and XStream XML
// documents (instance, application, applications), the compact variant, and the peer replication
// batch (ReplicationList / ReplicationListResponse).
//
// Output matches Eureka byte for byte where that is cheap (key order, string-typed "auto" fields,
// `{"$":8080,"@enabled":"true"}` ports, `@class` markers). Input is lenient where Eureka clients
// differ (numbers or strings, bare port numbers, boolean @enabled, missing or unknown @class,
// `instance` as object or array, any field order) and strict where the data would be wrong.
package codec

import "errors"

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
	// Peer adds herald's own fields for herald peers (JSON only): "statusVersion", the order of the
	// instance's status changes (registry.Instance.StatusVersion). Eureka's clients never see it.
	Peer bool
}
