package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk/eurekawire/exactjson"
)

// flexInt accepts a JSON number or a string holding one (clients differ).
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		uq, err := strconv.Unquote(s)
		if err != nil {
			return err
		}
		s = strings.TrimSpace(uq)
		if s == "" {
			return nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Numbers like 8080.0 come from some JSON libraries.
		fv, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || fv != float64(int64(fv)) {
			return fmt.Errorf("want an integer, got %s", b)
		}
		v = int64(fv)
	}
	f.v, f.set = v, true
	return nil
}

// flexBool accepts true/false or "true"/"false".
type flexBool struct {
	v   bool
	set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(strings.ToLower(string(bytes.TrimSpace(b))), `"`) {
	case "true":
		f.v, f.set = true, true
	case "false":
		f.v, f.set = false, true
	case "null", "":
	default:
		return fmt.Errorf("want a boolean, got %s", b)
	}
	return nil
}

// jsonPort accepts {"$":8080,"@enabled":"true"}, a bare number, or a numeric string.
type jsonPort struct {
	num     int64
	enabled flexBool
	set     bool
}

func (p *jsonPort) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			Num     flexInt  `json:"$"`
			Enabled flexBool `json:"@enabled"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if !o.Num.set {
			return fmt.Errorf(`port object without "$"`)
		}
		p.num, p.enabled, p.set = o.Num.v, o.Enabled, true
		return nil
	}
	var n flexInt
	if err := n.UnmarshalJSON(b); err != nil {
		return err
	}
	p.num, p.set = n.v, n.set
	return nil
}

// flexMap accepts an object of scalars, keeping them as strings and dropping Jackson's @class.
type flexMap map[string]string

func (m *flexMap) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(flexMap, len(raw))
	for k, v := range raw {
		if k == "@class" {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[k] = s
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			return fmt.Errorf("metadata %q: want a string, got an object or list", k)
		case string(v) == "null":
			out[k] = ""
		default:
			out[k] = string(v)
		}
	}
	*m = out
	return nil
}

type jsonDCI struct {
	Class    string  `json:"@class"`
	Name     *string `json:"name"`
	Metadata flexMap `json:"metadata"`
}

type jsonLease struct {
	RenewalInterval flexInt `json:"renewalIntervalInSecs"`
	Duration        flexInt `json:"durationInSecs"`
	Registration    flexInt `json:"registrationTimestamp"`
	LastRenewal     flexInt `json:"lastRenewalTimestamp"`
	RenewalLegacy   flexInt `json:"renewalTimestamp"`
	Eviction        flexInt `json:"evictionTimestamp"`
	ServiceUp       flexInt `json:"serviceUpTimestamp"`
}

type jsonInstance struct {
	InstanceID           string     `json:"instanceId"`
	HostName             string     `json:"hostName"`
	App                  *string    `json:"app"`
	IPAddr               string     `json:"ipAddr"`
	Sid                  string     `json:"sid"`
	Status               string     `json:"status"`
	OverriddenStatus     string     `json:"overriddenStatus"`
	OverriddenStatusLow  string     `json:"overriddenstatus"`
	Port                 *jsonPort  `json:"port"`
	SecurePort           *jsonPort  `json:"securePort"`
	CountryID            flexInt    `json:"countryId"`
	DataCenterInfo       *jsonDCI   `json:"dataCenterInfo"`
	LeaseInfo            *jsonLease `json:"leaseInfo"`
	Metadata             flexMap    `json:"metadata"`
	AppGroupName         string     `json:"appGroupName"`
	HomePageURL          string     `json:"homePageUrl"`
	StatusPageURL        string     `json:"statusPageUrl"`
	HealthCheckURL       string     `json:"healthCheckUrl"`
	SecureHealthCheckURL string     `json:"secureHealthCheckUrl"`
	VIPAddress           string     `json:"vipAddress"`
	SecureVIPAddress     string     `json:"secureVipAddress"`
	IsCoordinating       flexBool   `json:"isCoordinatingDiscoveryServer"`
	LastUpdated          flexInt    `json:"lastUpdatedTimestamp"`
	LastDirty            flexInt    `json:"lastDirtyTimestamp"`
	ActionType           string     `json:"actionType"`
	ASGName              string     `json:"asgName"`
	// StatusVersion is herald's (Options.Peer); only anti-entropy's adoption of a peer's copy
	// takes it. Kept raw: a client's document with a value that is not a number is not refused
	// for a member Eureka does not know.
	StatusVersion json.RawMessage `json:"statusVersion"`
}

// The field names of the documents as Jackson matches them: exactly. encoding/json would also take
// {"HOSTNAME":...} for hostName; exactjson hides such members, which Eureka ignores as unknown.
var (
	instanceSchema     = instanceFields()
	applicationsSchema = exactjson.Schema{"applications": exactjson.Schema{
		"versions__delta": nil, "apps__hashcode": nil,
		"application": exactjson.Schema{"name": nil, "instance": instanceSchema},
	}}
)

func instanceFields() exactjson.Schema {
	port := exactjson.Schema{"$": nil, "@enabled": nil}
	s := exactjson.FieldsOf(jsonInstance{})
	s["port"], s["securePort"] = port, port
	s["dataCenterInfo"] = exactjson.FieldsOf(jsonDCI{})
	s["leaseInfo"] = exactjson.FieldsOf(jsonLease{})
	return s
}

// maxDocument bounds what the decoders read (the API applies its own, smaller, body limit).
const maxDocument = 256 << 20

func parseErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrParse}, a...)...)
}

// DecodeInstance parses a wrapped instance document ({"instance":{...}} or <instance>). Errors
// wrap ErrParse. Defaults follow Eureka's parser (status UP, ports 7001/7002, ...). A missing
// lastDirtyTimestamp is left 0 (the caller fills in its clock).
func DecodeInstance(data []byte, f Format) (*registry.Instance, error) {
	if len(data) > maxDocument {
		return nil, parseErr("document too large")
	}
	if f == XML {
		return decodeInstanceXML(data)
	}
	return decodeInstanceJSON(data)
}

// decodeInstanceJSON decodes {"instance":{...}} in one pass. It accepts and refuses what
// encoding/json does decoding into struct{ Instance *jsonInstance `json:"instance"` } with the
// field names matched exactly (as Jackson matches them, exactjson.Exact), and yields the same
// instance: a repeated "instance" merges into the instance of the one before (encoding/json decodes
// into the struct its pointer already holds), "instance":null drops what came before it, members
// with other names are ignored, the nesting limit counts from the top of the document.
func decodeInstanceJSON(data []byte) (*registry.Instance, error) {
	s := scanner{data: data}
	if s.peek() != '{' {
		// null leaves the wrapper empty; a string, number, boolean or list does not fit it.
		s.skip()
		if s.err == nil {
			s.ws()
			if s.i < len(data) {
				s.fail("data after the document")
			}
		}
		if s.err != nil {
			return nil, s.err
		}
		return nil, parseErr(`missing the "instance" wrapper`)
	}
	var j *jsonInstance
	var bad error
	s.open()
	for n := 0; ; n++ {
		tok, more := s.next(n == 0, '}')
		if !more {
			break
		}
		if bad != nil || string(name(tok)) != "instance" {
			s.skip()
			continue
		}
		switch s.peek() {
		case 'n':
			s.skip()
			j = nil
		case '{':
			if j == nil {
				j = &jsonInstance{}
			}
			bad = s.instanceInto(j)
		default:
			s.skip()
			bad = parseErr(`"instance" is not an object`)
		}
	}
	s.ws()
	if s.err == nil && s.i < len(data) {
		s.fail("data after the document")
	}
	if s.err != nil {
		return nil, s.err
	}
	if bad != nil {
		return nil, bad
	}
	if j == nil {
		return nil, parseErr(`missing the "instance" wrapper`)
	}
	return j.model()
}

// DecodeInstanceBare parses a bare JSON InstanceInfo object (an instanceInfo of a replicated
// item, a peer's copy in a 409 answer) in one pass. It accepts and refuses what encoding/json with
// field names matched exactly (as Jackson matches them) does.
func DecodeInstanceBare(data []byte) (*registry.Instance, error) {
	if len(data) > maxDocument {
		return nil, parseErr("document too large")
	}
	s := scanner{data: data}
	inst, err := s.instance()
	s.ws()
	if s.err == nil && s.i < len(data) {
		s.fail("data after the document")
	}
	if s.err != nil {
		return nil, s.err
	}
	return inst, err
}

// ParseStatus maps a status as Eureka's parser does: unknown names become UNKNOWN.
func parseStatus(s string, def registry.Status) registry.Status {
	if s == "" {
		return def
	}
	if st, ok := registry.ParseStatus(strings.ToUpper(s)); ok {
		return st
	}
	return registry.StatusUnknown
}

func (j *jsonInstance) model() (*registry.Instance, error) {
	if j.App == nil {
		return nil, parseErr(`instance has no "app"`)
	}
	i := &registry.Instance{
		InstanceID:                    j.InstanceID,
		HostName:                      j.HostName,
		App:                           strings.ToUpper(*j.App),
		IPAddr:                        j.IPAddr,
		Sid:                           j.Sid,
		Status:                        parseStatus(j.Status, registry.StatusUp),
		Port:                          registry.Port{Number: 7001, Enabled: true},
		SecurePort:                    registry.Port{Number: 7002, Enabled: false},
		CountryID:                     1,
		AppGroupName:                  strings.ToUpper(j.AppGroupName),
		HomePageURL:                   j.HomePageURL,
		StatusPageURL:                 j.StatusPageURL,
		HealthCheckURL:                j.HealthCheckURL,
		SecureHealthCheckURL:          j.SecureHealthCheckURL,
		VIPAddress:                    j.VIPAddress,
		SecureVIPAddress:              j.SecureVIPAddress,
		LastUpdatedTimestamp:          j.LastUpdated.v,
		LastDirtyTimestamp:            j.LastDirty.v,
		ActionType:                    registry.ActionType(strings.ToUpper(j.ActionType)),
		ASGName:                       j.ASGName,
		IsCoordinatingDiscoveryServer: j.IsCoordinating.v,
	}
	if len(j.StatusVersion) > 0 {
		i.StatusVersion, _ = strconv.ParseInt(string(j.StatusVersion), 10, 64)
	}
	ov := j.OverriddenStatus
	if ov == "" {
		ov = j.OverriddenStatusLow
	}
	i.OverriddenStatus = parseStatus(ov, registry.StatusUnknown)
	if j.CountryID.set {
		i.CountryID = int(j.CountryID.v)
	}
	if p, err := port(j.Port, true); err != nil {
		return nil, err
	} else if p != nil {
		i.Port = *p
	}
	if p, err := port(j.SecurePort, false); err != nil {
		return nil, err
	} else if p != nil {
		i.SecurePort = *p
	}
	if len(j.Metadata) > 0 {
		i.Metadata = map[string]string(j.Metadata)
	}
	if d := j.DataCenterInfo; d != nil {
		i.HasDataCenterInfo = true
		i.DataCenterInfo.Class = d.Class
		if d.Name != nil {
			i.DataCenterInfo.Name = *d.Name
		}
		if len(d.Metadata) > 0 {
			i.DataCenterInfo.Metadata = map[string]string(d.Metadata)
		}
	}
	if l := j.LeaseInfo; l != nil {
		i.HasLeaseInfo = true
		i.LeaseInfo = registry.LeaseInfo{
			RenewalIntervalSecs:   int(l.RenewalInterval.v),
			DurationSecs:          int(l.Duration.v),
			RegistrationTimestamp: l.Registration.v,
			LastRenewalTimestamp:  l.LastRenewal.v,
			EvictionTimestamp:     l.Eviction.v,
			ServiceUpTimestamp:    l.ServiceUp.v,
		}
		if !l.LastRenewal.set {
			i.LeaseInfo.LastRenewalTimestamp = l.RenewalLegacy.v
		}
		if i.LeaseInfo.RenewalIntervalSecs <= 0 {
			i.LeaseInfo.RenewalIntervalSecs = 30
		}
		if i.LeaseInfo.DurationSecs <= 0 {
			i.LeaseInfo.DurationSecs = 90
		}
	}
	finish(i)
	return i, nil
}

func port(p *jsonPort, defEnabled bool) (*registry.Port, error) {
	if p == nil || !p.set {
		return nil, nil
	}
	if p.num < 0 || p.num > 65535 {
		return nil, parseErr("port %d out of range", p.num)
	}
	en := defEnabled
	if p.enabled.set {
		en = p.enabled.v
	}
	return &registry.Port{Number: int(p.num), Enabled: en}, nil
}

// finish applies the parser rules shared by JSON and XML: Spring Cloud's instanceId from metadata.
func finish(i *registry.Instance) {
	if i.InstanceID == "" {
		if v := i.Metadata["instanceId"]; v != "" {
			if i.HostName != "" && !strings.HasPrefix(v, i.HostName) {
				v = i.HostName + ":" + v
			}
			i.InstanceID = v
		}
	}
}

// oneOrMany decodes a JSON value that Eureka clients send as an object or as an array of them.
func oneOrMany[T any](raw json.RawMessage) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var out []T
		err := json.Unmarshal(raw, &out)
		return out, err
	}
	var one T
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

// DecodeApplications parses an applications document (used by startup sync and tests).
func DecodeApplications(data []byte, f Format) (*registry.Applications, error) {
	if len(data) > maxDocument {
		return nil, parseErr("document too large")
	}
	if f == XML {
		return decodeApplicationsXML(data)
	}
	var w struct {
		Applications *struct {
			VersionsDelta flexInt         `json:"versions__delta"`
			HashCode      string          `json:"apps__hashcode"`
			Application   json.RawMessage `json:"application"`
		} `json:"applications"`
	}
	if err := json.Unmarshal(exactjson.Exact(data, applicationsSchema), &w); err != nil {
		return nil, parseErr("%v", err)
	}
	if w.Applications == nil {
		return nil, parseErr(`missing the "applications" wrapper`)
	}
	type app struct {
		Name     string          `json:"name"`
		Instance json.RawMessage `json:"instance"`
	}
	apps, err := oneOrMany[app](w.Applications.Application)
	if err != nil {
		return nil, parseErr("application: %v", err)
	}
	out := &registry.Applications{AppsHashCode: w.Applications.HashCode}
	if w.Applications.VersionsDelta.set {
		out.VersionsDelta = strconv.FormatInt(w.Applications.VersionsDelta.v, 10)
	}
	for _, a := range apps {
		insts, err := oneOrMany[jsonInstance](a.Instance)
		if err != nil {
			return nil, parseErr("application %s: %v", a.Name, err)
		}
		ra := &registry.Application{Name: strings.ToUpper(a.Name)}
		for k := range insts {
			i, err := insts[k].model()
			if err != nil {
				return nil, err
			}
			ra.Instances = append(ra.Instances, i)
		}
		out.Applications = append(out.Applications, ra)
	}
	return out, nil
}
