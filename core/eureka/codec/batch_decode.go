package codec

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// Batch is a ReplicationList (the body of Eureka's POST /peerreplication/batch) decoded by
// DecodeReplicationList.
type Batch struct {
	// Items are the items as eurekawire.DecodeReplicationList returns them; an item's Instance is
	// a slice of the decoded document, not a copy.
	Items []sdk.Item
	// Decoded holds, for each item with an instanceInfo, that instance decoded as
	// DecodeInstanceBare decodes it; the zero value for the others.
	Decoded []DecodedInstance
}

// DecodedInstance is an item's instanceInfo decoded, or why it could not be (an error that wraps
// ErrParse, as DecodeInstanceBare's).
type DecodedInstance struct {
	Instance *registry.Instance
	Err      error
}

// batchEntry is one item while the list is decoded.
type batchEntry struct {
	item sdk.Item
	raw  []byte // instanceInfo as it stands, "null" included
	inst DecodedInstance
}

// DecodeReplicationList parses a ReplicationList in one pass, decoding each item's instanceInfo
// into the registry's model as it goes. It accepts exactly what eurekawire.DecodeReplicationList
// accepts (encoding/json with field names matched exactly, as Eureka's Jackson does; a member
// given twice counts as encoding/json counts it) and returns the same items; an instanceInfo that
// DecodeInstanceBare refuses is refused for its item alone, in Decoded.
func DecodeReplicationList(data []byte) (*Batch, error) {
	if len(data) > maxDocument {
		return nil, parseErr("document too large")
	}
	s := scanner{data: data}
	if s.peek() != '{' {
		s.skip()
		if s.err != nil {
			return nil, s.err
		}
		return nil, parseErr(`missing "replicationList"`)
	}
	var list []batchEntry
	present := false
	s.open()
	for n := 0; ; n++ {
		tok, more := s.next(n == 0, '}')
		if !more {
			break
		}
		if string(name(tok)) != "replicationList" {
			s.skip()
			continue
		}
		switch s.peek() {
		case 'n':
			s.skip()
			list, present = nil, false
		case '[':
			if !present {
				list, present = nil, true
			}
			var err error
			if list, err = s.items(list); err != nil {
				return nil, err
			}
		default:
			s.skip()
			if s.err == nil {
				return nil, parseErr(`"replicationList" is not a list`)
			}
		}
	}
	s.ws()
	if s.err == nil && s.i < len(data) {
		s.fail("data after the document")
	}
	if s.err != nil {
		return nil, s.err
	}
	if !present {
		return nil, parseErr(`missing "replicationList"`)
	}
	b := &Batch{Items: make([]sdk.Item, len(list)), Decoded: make([]DecodedInstance, len(list))}
	for i := range list {
		e := &list[i]
		b.Items[i] = e.item
		if len(e.raw) > 0 && string(e.raw) != "null" {
			b.Items[i].Instance = e.raw
			b.Decoded[i] = e.inst
		}
	}
	return b, nil
}

// items decodes a list into list as encoding/json decodes an array into a slice: the elements
// already there are decoded into, not replaced.
func (s *scanner) items(list []batchEntry) ([]batchEntry, error) {
	s.open()
	i := 0
	for n := 0; ; n++ {
		if _, more := s.next(n == 0, ']'); !more {
			break
		}
		if i >= cap(list) {
			list = slices.Grow(list, 1)
		}
		if i >= len(list) {
			list = list[:i+1]
		}
		if err := s.item(&list[i]); err != nil {
			return nil, err
		}
		i++
	}
	if s.err != nil {
		return nil, s.err
	}
	if i < len(list) {
		list = list[:i]
	}
	if i == 0 {
		list = []batchEntry{}
	}
	return list, nil
}

func (s *scanner) item(e *batchEntry) error {
	switch s.peek() {
	case '{':
	case 'n':
		s.skip()
		return s.err
	default:
		s.skip()
		if s.err != nil {
			return s.err
		}
		return parseErr("a replicationList item is not an object")
	}
	s.open()
	for n := 0; ; n++ {
		tok, more := s.next(n == 0, '}')
		if !more {
			return s.err
		}
		var err error
		switch f := name(tok); string(f) {
		case "appName":
			err = s.stringField(&e.item.App)
		case "id":
			err = s.stringField(&e.item.ID)
		case "lastDirtyTimestamp":
			err = s.wireInt(&e.item.LastDirtyTimestamp)
		case "overriddenStatus":
			err = s.stringField(&e.item.OverriddenStatus)
		case "status":
			err = s.stringField(&e.item.Status)
		case "action":
			err = s.stringField((*string)(&e.item.Action))
		case "traceparent":
			err = s.stringField(&e.item.TraceParent)
		case "statusVersion":
			err = s.wireInt(&e.item.StatusVersion)
		case "payload":
			// Rare (custom actions): encoding/json's own rules (base64, or a list of bytes).
			if raw := s.skip(); s.err == nil {
				if jerr := json.Unmarshal(raw, &e.item.Payload); jerr != nil {
					err = parseErr("payload: %v", jerr)
				}
			}
		case "instanceInfo":
			s.ws()
			start := s.i
			if s.peek() == 'n' {
				s.skip()
				e.inst = DecodedInstance{}
			} else {
				inst, ierr := s.instance()
				e.inst = DecodedInstance{Instance: inst, Err: ierr}
			}
			e.raw = s.data[start:s.i]
		default:
			s.skip()
		}
		if err != nil {
			return err
		}
		if s.err != nil {
			return s.err
		}
	}
}

// stringField decodes a string into *dst as encoding/json does: null leaves it as it is, any
// other kind of value is an error.
func (s *scanner) stringField(dst *string) error {
	switch s.peek() {
	case '"':
		tok, plain := s.str()
		if s.err == nil {
			*dst = text(tok, plain)
		}
		return nil
	case 'n':
		s.skip()
		return nil
	}
	s.skip()
	return parseErr("want a string")
}

// wireInt decodes lastDirtyTimestamp and statusVersion of a batch item as eurekawire does: a
// number or a string holding one, surrounding quotes trimmed; "" and null leave *dst as it is.
func (s *scanner) wireInt(dst *int64) error {
	raw := s.skip()
	if s.err != nil {
		return nil
	}
	if v, ok := plainInt(raw); ok {
		*dst = v
		return nil
	}
	str := strings.Trim(string(bytes.TrimSpace(raw)), `"`)
	if str == "" || str == "null" {
		return nil
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return parseErr("want an integer, got %s", raw)
	}
	*dst = v
	return nil
}

// plainInt parses a number token made of digits only (an optional minus first), short enough not
// to overflow: what every sender writes. ok is false for anything else.
func plainInt(raw []byte) (int64, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	d := raw
	if neg {
		d = raw[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// instance decodes a bare InstanceInfo as DecodeInstanceBare does. A value it refuses is still
// read through (and validated) so that the rest of the batch decodes; syntax errors are in s.err.
func (s *scanner) instance() (*registry.Instance, error) {
	if s.peek() != '{' {
		s.skip()
		return nil, parseErr("instanceInfo is not an object")
	}
	var j jsonInstance
	bad := s.instanceInto(&j)
	if s.err != nil {
		return nil, s.err
	}
	if bad != nil {
		return nil, bad
	}
	return j.model()
}

// instanceInto decodes the object at s.i (a '{') into j, member by member as encoding/json
// decodes into a jsonInstance: the fields already set stay unless a member sets them again. After
// the first member it refuses, it only reads the rest through; that refusal is returned.
func (s *scanner) instanceInto(j *jsonInstance) error {
	return s.members(func(f []byte) error { return s.instanceField(j, f) })
}

// members walks the members of the object at s.i (a '{'), calling field with each member's name
// to read its value. Once field refuses one, the rest are only read through; that refusal is
// returned.
func (s *scanner) members(field func(name []byte) error) error {
	var bad error
	s.open()
	for n := 0; ; n++ {
		tok, more := s.next(n == 0, '}')
		if !more {
			return bad
		}
		if bad != nil {
			s.skip()
			continue
		}
		bad = field(name(tok))
	}
}

// objectOrNull reads a null through (false), or reports an object at s.i (true); any other value
// is read through and refused as what.
func (s *scanner) objectOrNull(what string) (bool, error) {
	switch s.peek() {
	case 'n':
		s.skip()
		return false, nil
	case '{':
		return true, nil
	default:
		s.skip()
		return false, parseErr(what + " is not an object")
	}
}

// instanceField decodes one member of an instance into j, as encoding/json does into jsonInstance.
func (s *scanner) instanceField(j *jsonInstance, f []byte) error {
	switch string(f) {
	case "instanceId":
		return s.stringField(&j.InstanceID)
	case "hostName":
		return s.stringField(&j.HostName)
	case "app":
		return s.stringPtr(&j.App)
	case "ipAddr":
		return s.stringField(&j.IPAddr)
	case "sid":
		return s.stringField(&j.Sid)
	case "status":
		return s.stringField(&j.Status)
	case "overriddenStatus":
		return s.stringField(&j.OverriddenStatus)
	case "overriddenstatus":
		return s.stringField(&j.OverriddenStatusLow)
	case "port":
		return s.port(&j.Port)
	case "securePort":
		return s.port(&j.SecurePort)
	case "countryId":
		return s.flexInt(&j.CountryID)
	case "dataCenterInfo":
		return s.dataCenterInfo(&j.DataCenterInfo)
	case "leaseInfo":
		return s.leaseInfo(&j.LeaseInfo)
	case "metadata":
		return s.flexMap(&j.Metadata)
	case "appGroupName":
		return s.stringField(&j.AppGroupName)
	case "homePageUrl":
		return s.stringField(&j.HomePageURL)
	case "statusPageUrl":
		return s.stringField(&j.StatusPageURL)
	case "healthCheckUrl":
		return s.stringField(&j.HealthCheckURL)
	case "secureHealthCheckUrl":
		return s.stringField(&j.SecureHealthCheckURL)
	case "vipAddress":
		return s.stringField(&j.VIPAddress)
	case "secureVipAddress":
		return s.stringField(&j.SecureVIPAddress)
	case "isCoordinatingDiscoveryServer":
		return s.flexBool(&j.IsCoordinating)
	case "lastUpdatedTimestamp":
		return s.flexInt(&j.LastUpdated)
	case "lastDirtyTimestamp":
		return s.flexInt(&j.LastDirty)
	case "actionType":
		return s.stringField(&j.ActionType)
	case "asgName":
		return s.stringField(&j.ASGName)
	case "statusVersion":
		j.StatusVersion = s.skip()
		return nil
	}
	s.skip()
	return nil
}

// stringPtr decodes into a *string field: null sets it to nil.
func (s *scanner) stringPtr(dst **string) error {
	switch s.peek() {
	case 'n':
		s.skip()
		*dst = nil
		return nil
	case '"':
		var v string
		err := s.stringField(&v)
		*dst = &v
		return err
	}
	s.skip()
	return parseErr("want a string")
}

func (s *scanner) flexInt(f *flexInt) error {
	raw := s.skip()
	if s.err != nil {
		return nil
	}
	if v, ok := plainInt(raw); ok {
		f.v, f.set = v, true
		return nil
	}
	if err := f.UnmarshalJSON(raw); err != nil {
		return parseErr("%v", err)
	}
	return nil
}

func (s *scanner) flexBool(f *flexBool) error {
	raw := s.skip()
	if s.err != nil {
		return nil
	}
	switch string(raw) {
	case "false", `"false"`:
		f.v, f.set = false, true
	case "true", `"true"`:
		f.v, f.set = true, true
	default:
		if err := f.UnmarshalJSON(raw); err != nil {
			return parseErr("%v", err)
		}
	}
	return nil
}

// port decodes {"$":8080,"@enabled":"true"}, a number or a string into a *jsonPort field, as
// jsonPort.UnmarshalJSON does (with the member names matched exactly).
func (s *scanner) port(pp **jsonPort) error {
	c := s.peek()
	if c == 'n' {
		s.skip()
		*pp = nil
		return nil
	}
	if *pp == nil {
		*pp = &jsonPort{}
	}
	p := *pp
	if c != '{' {
		var n flexInt
		if err := s.flexInt(&n); err != nil {
			return err
		}
		p.num, p.set = n.v, n.set
		return nil
	}
	var num flexInt
	var enabled flexBool
	bad := s.members(func(f []byte) error {
		switch string(f) {
		case "$":
			return s.flexInt(&num)
		case "@enabled":
			return s.flexBool(&enabled)
		}
		s.skip()
		return nil
	})
	if bad != nil || s.err != nil {
		return bad
	}
	if !num.set {
		return parseErr(`port object without "$"`)
	}
	p.num, p.enabled, p.set = num.v, enabled, true
	return nil
}

func (s *scanner) dataCenterInfo(pp **jsonDCI) error {
	if obj, err := s.objectOrNull("dataCenterInfo"); !obj {
		if err == nil {
			*pp = nil
		}
		return err
	}
	if *pp == nil {
		*pp = &jsonDCI{}
	}
	d := *pp
	return s.members(func(f []byte) error {
		switch string(f) {
		case "@class":
			return s.stringField(&d.Class)
		case "name":
			return s.stringPtr(&d.Name)
		case "metadata":
			return s.flexMap(&d.Metadata)
		}
		s.skip()
		return nil
	})
}

func (s *scanner) leaseInfo(pp **jsonLease) error {
	if obj, err := s.objectOrNull("leaseInfo"); !obj {
		if err == nil {
			*pp = nil
		}
		return err
	}
	if *pp == nil {
		*pp = &jsonLease{}
	}
	l := *pp
	return s.members(func(f []byte) error {
		switch string(f) {
		case "renewalIntervalInSecs":
			return s.flexInt(&l.RenewalInterval)
		case "durationInSecs":
			return s.flexInt(&l.Duration)
		case "registrationTimestamp":
			return s.flexInt(&l.Registration)
		case "lastRenewalTimestamp":
			return s.flexInt(&l.LastRenewal)
		case "renewalTimestamp":
			return s.flexInt(&l.RenewalLegacy)
		case "evictionTimestamp":
			return s.flexInt(&l.Eviction)
		case "serviceUpTimestamp":
			return s.flexInt(&l.ServiceUp)
		}
		s.skip()
		return nil
	})
}

// flexMap decodes metadata as flexMap.UnmarshalJSON does: the last value of a key counts, a
// string is its text, null is "", a number or boolean is kept as written, an object or list is
// an error, and "@class" is dropped.
func (s *scanner) flexMap(m *flexMap) error {
	switch s.peek() {
	case 'n':
		s.skip()
		return nil
	case '{':
	default:
		s.skip()
		return parseErr("metadata is not an object")
	}
	out := flexMap{}
	var nested map[string]bool // keys whose last value is an object or a list
	s.open()
	for n := 0; ; n++ {
		tok, more := s.next(n == 0, '}')
		if !more {
			break
		}
		k := text(tok, false)
		if k == "@class" {
			s.skip()
			continue
		}
		switch s.peek() {
		case '{', '[':
			s.skip()
			if nested == nil {
				nested = map[string]bool{}
			}
			nested[k] = true
			continue
		case '"':
			tok, plain := s.str()
			if s.err != nil {
				return nil
			}
			out[k] = text(tok, plain)
		case 'n':
			s.skip()
			out[k] = ""
		default:
			out[k] = string(s.skip())
		}
		delete(nested, k)
	}
	if s.err != nil {
		return nil
	}
	for k := range nested {
		return parseErr("metadata %q: want a string, got an object or list", k)
	}
	*m = out
	return nil
}
