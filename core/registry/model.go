package registry

import "strings"

// Status is an instance status as Eureka spells it on the wire.
type Status string

// The five instance statuses Eureka knows.
const (
	StatusUp           Status = "UP"
	StatusDown         Status = "DOWN"
	StatusStarting     Status = "STARTING"
	StatusOutOfService Status = "OUT_OF_SERVICE"
	StatusUnknown      Status = "UNKNOWN"
)

// ParseStatus returns the status named exactly (upper case) by s, and false if s names none.
func ParseStatus(s string) (Status, bool) {
	switch Status(s) {
	case StatusUp, StatusDown, StatusStarting, StatusOutOfService, StatusUnknown:
		return Status(s), true
	}
	return StatusUnknown, false
}

// ActionType is the change an instance last went through, as shown in deltas.
type ActionType string

// Action types shown in deltas.
const (
	ActionAdded    ActionType = "ADDED"
	ActionModified ActionType = "MODIFIED"
	ActionDeleted  ActionType = "DELETED"
)

// Port is a port number with Eureka's enabled flag.
type Port struct {
	Number  int
	Enabled bool
}

// DataCenterInfo says where an instance runs. Class is the Java class marker (`@class`), Name one of
// MyOwn, Amazon, Netflix; Metadata is only used by Amazon.
type DataCenterInfo struct {
	Class    string
	Name     string
	Metadata map[string]string
}

// LeaseInfo is the lease part of an instance. Clients send RenewalIntervalSecs and DurationSecs; the
// server fills the timestamps on output.
type LeaseInfo struct {
	RenewalIntervalSecs   int
	DurationSecs          int
	RegistrationTimestamp int64
	LastRenewalTimestamp  int64
	EvictionTimestamp     int64
	ServiceUpTimestamp    int64
}

// Instance is Eureka's InstanceInfo. Field order follows the wire order. Optional string fields are
// empty when absent. Timestamps are epoch milliseconds.
type Instance struct {
	InstanceID       string
	HostName         string
	App              string
	IPAddr           string
	Sid              string
	Status           Status
	OverriddenStatus Status
	Port             Port
	SecurePort       Port
	CountryID        int
	DataCenterInfo   DataCenterInfo
	// HasDataCenterInfo is false when the document had no dataCenterInfo at all (a 400 on register).
	HasDataCenterInfo bool
	LeaseInfo         LeaseInfo
	// HasLeaseInfo is false when the document had no leaseInfo.
	HasLeaseInfo                  bool
	Metadata                      map[string]string
	AppGroupName                  string
	HomePageURL                   string
	StatusPageURL                 string
	HealthCheckURL                string
	SecureHealthCheckURL          string
	VIPAddress                    string
	SecureVIPAddress              string
	IsCoordinatingDiscoveryServer bool
	LastUpdatedTimestamp          int64
	LastDirtyTimestamp            int64
	ActionType                    ActionType
	ASGName                       string
	// StatusVersion orders the status changes (override, override removal) of this instance across
	// nodes; herald's own, not Eureka's: it is not part of the content hash, is sent only to herald
	// peers, and is 0 until the instance's status is first changed through the status endpoints.
	StatusVersion int64
}

// ID returns the instance's effective id: InstanceID, else the Amazon `instance-id` metadata, else
// HostName (Eureka's rule).
func (i *Instance) ID() string {
	if i.InstanceID != "" {
		return i.InstanceID
	}
	if strings.EqualFold(i.DataCenterInfo.Name, "Amazon") {
		if id := i.DataCenterInfo.Metadata["instance-id"]; id != "" {
			return id
		}
	}
	return i.HostName
}

// Clone returns a deep copy of i.
func (i *Instance) Clone() *Instance {
	if i == nil {
		return nil
	}
	c := *i
	c.Metadata = cloneMap(i.Metadata)
	c.DataCenterInfo.Metadata = cloneMap(i.DataCenterInfo.Metadata)
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Application is the instances of one application name.
type Application struct {
	Name      string
	Instances []*Instance
}

// Applications is a registry document: the full registry, a delta, or a VIP view.
type Applications struct {
	VersionsDelta string
	AppsHashCode  string
	Applications  []*Application
}
