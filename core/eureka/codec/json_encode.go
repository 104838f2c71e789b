package codec

import (
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/heraldhq/herald/core/registry"
)

const (
	classDefaultDC = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
	classMyDC      = "com.netflix.appinfo.MyDataCenterInfo"
	classAmazon    = "com.netflix.appinfo.AmazonInfo"
	classEmptyMap  = "java.util.Collections$EmptyMap"
)

// compactAmazonKeys are the Amazon metadata keys the compact encoding keeps.
var compactAmazonKeys = map[string]bool{"instance-id": true, "public-ipv4": true, "public-hostname": true,
	"local-ipv4": true, "availability-zone": true}

// AppendInstance appends {"instance":{...}} (JSON) or <instance>...</instance> (XML).
func AppendInstance(dst []byte, f Format, inst *registry.Instance, o Options) []byte {
	if f == XML {
		return appendInstanceXML(dst, inst, o, "")
	}
	dst = append(dst, `{"instance":`...)
	dst = appendInstanceJSON(dst, inst, o)
	return append(dst, '}')
}

// AppendInstanceBare appends the bare JSON object of an instance (no wrapper), as used in
// replication batch items and 409 entities.
func AppendInstanceBare(dst []byte, inst *registry.Instance) []byte {
	return appendInstanceJSON(dst, inst, Options{})
}

// AppendApplication appends {"application":{...}} / <application>...</application>.
func AppendApplication(dst []byte, f Format, app *registry.Application, o Options) []byte {
	if f == XML {
		return appendApplicationXML(dst, app, o, "")
	}
	dst = append(dst, `{"application":`...)
	dst = appendApplicationJSON(dst, app, o)
	return append(dst, '}')
}

// AppendApplications appends {"applications":{...}} / <applications>...</applications>.
func AppendApplications(dst []byte, f Format, apps *registry.Applications, o Options) []byte {
	if f == XML {
		return appendApplicationsXML(dst, apps, o)
	}
	dst = append(dst, `{"applications":{"versions__delta":`...)
	dst = appendString(dst, apps.VersionsDelta)
	dst = append(dst, `,"apps__hashcode":`...)
	dst = appendString(dst, apps.AppsHashCode)
	dst = append(dst, `,"application":[`...)
	for i, a := range apps.Applications {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendApplicationJSON(dst, a, o)
	}
	return append(dst, "]}}"...)
}

func appendApplicationJSON(dst []byte, app *registry.Application, o Options) []byte {
	dst = append(dst, `{"name":`...)
	dst = appendString(dst, app.Name)
	dst = append(dst, `,"instance":[`...)
	for i, inst := range app.Instances {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendInstanceJSON(dst, inst, o)
	}
	return append(dst, "]}"...)
}

// appendInstanceJSON writes Eureka's legacy Jackson layout: fixed key order, ports as
// {"$":n,"@enabled":"true"}, string-typed "auto" fields.
func appendInstanceJSON(dst []byte, i *registry.Instance, o Options) []byte {
	dst = append(dst, '{')
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
	}
	str := func(k, v string) {
		if v != "" {
			key(k)
			dst = appendString(dst, v)
		}
	}
	str("instanceId", i.InstanceID)
	key("hostName")
	dst = appendString(dst, i.HostName)
	key("app")
	dst = appendString(dst, i.App)
	key("ipAddr")
	dst = appendString(dst, i.IPAddr)
	if !o.Compact && i.Sid != "" && i.Sid != "na" && i.Sid != "unknown" {
		str("sid", i.Sid)
	}
	key("status")
	dst = appendString(dst, string(orUnknown(i.Status)))
	if !o.Compact {
		key("overriddenStatus")
		dst = appendString(dst, string(orUnknown(i.OverriddenStatus)))
	}
	key("port")
	dst = appendPortJSON(dst, i.Port)
	key("securePort")
	dst = appendPortJSON(dst, i.SecurePort)
	if !o.Compact {
		key("countryId")
		dst = strconv.AppendInt(dst, int64(i.CountryID), 10)
	}
	key("dataCenterInfo")
	dst = appendDCIJSON(dst, i.DataCenterInfo, o)
	if !o.Compact {
		key("leaseInfo")
		l := leaseDefaults(i.LeaseInfo)
		dst = append(dst, `{"renewalIntervalInSecs":`...)
		dst = strconv.AppendInt(dst, int64(l.RenewalIntervalSecs), 10)
		dst = append(dst, `,"durationInSecs":`...)
		dst = strconv.AppendInt(dst, int64(l.DurationSecs), 10)
		dst = append(dst, `,"registrationTimestamp":`...)
		dst = strconv.AppendInt(dst, l.RegistrationTimestamp, 10)
		dst = append(dst, `,"lastRenewalTimestamp":`...)
		dst = strconv.AppendInt(dst, l.LastRenewalTimestamp, 10)
		dst = append(dst, `,"evictionTimestamp":`...)
		dst = strconv.AppendInt(dst, l.EvictionTimestamp, 10)
		dst = append(dst, `,"serviceUpTimestamp":`...)
		dst = strconv.AppendInt(dst, l.ServiceUpTimestamp, 10)
		dst = append(dst, '}')
		key("metadata")
		dst = appendMapJSON(dst, i.Metadata, true)
	}
	str("appGroupName", i.AppGroupName)
	if !o.Compact {
		str("homePageUrl", i.HomePageURL)
		str("statusPageUrl", i.StatusPageURL)
		str("healthCheckUrl", i.HealthCheckURL)
		str("secureHealthCheckUrl", i.SecureHealthCheckURL)
	}
	str("vipAddress", i.VIPAddress)
	str("secureVipAddress", i.SecureVIPAddress)
	if !o.Compact {
		key("isCoordinatingDiscoveryServer")
		if i.IsCoordinatingDiscoveryServer {
			dst = append(dst, `"true"`...)
		} else {
			dst = append(dst, `"false"`...)
		}
	}
	key("lastUpdatedTimestamp")
	dst = appendQuotedInt(dst, i.LastUpdatedTimestamp)
	if !o.Compact {
		key("lastDirtyTimestamp")
		dst = appendQuotedInt(dst, i.LastDirtyTimestamp)
	}
	str("actionType", string(i.ActionType))
	str("asgName", i.ASGName)
	if o.Peer && i.StatusVersion != 0 {
		key("statusVersion")
		dst = strconv.AppendInt(dst, i.StatusVersion, 10)
	}
	return append(dst, '}')
}

func orUnknown(s registry.Status) registry.Status {
	if s == "" {
		return registry.StatusUnknown
	}
	return s
}

func appendPortJSON(dst []byte, p registry.Port) []byte {
	dst = append(dst, `{"$":`...)
	dst = strconv.AppendInt(dst, int64(p.Number), 10)
	if p.Enabled {
		return append(dst, `,"@enabled":"true"}`...)
	}
	return append(dst, `,"@enabled":"false"}`...)
}

func dcClass(d registry.DataCenterInfo) string {
	if d.Class != "" {
		return d.Class
	}
	if d.Name == "Amazon" {
		return classAmazon
	}
	return classDefaultDC
}

func appendDCIJSON(dst []byte, d registry.DataCenterInfo, o Options) []byte {
	dst = append(dst, `{"@class":`...)
	dst = appendString(dst, dcClass(d))
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, d.Name)
	if d.Name == "Amazon" || len(d.Metadata) > 0 {
		dst = append(dst, `,"metadata":`...)
		dst = appendMapJSON(dst, dcMetadata(d, o), false)
	}
	return append(dst, '}')
}

// appendMapJSON writes a string map with sorted keys; an empty instance metadata map is written as
// Jackson writes Java's empty map.
func appendMapJSON(dst []byte, m map[string]string, emptyClass bool) []byte {
	if len(m) == 0 {
		if emptyClass {
			return append(dst, `{"@class":"java.util.Collections$EmptyMap"}`...)
		}
		return append(dst, "{}"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

func appendQuotedInt(dst []byte, v int64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '"')
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does (including <, >, & and
// the line separators U+2028/U+2029, and replacing invalid UTF-8).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// leaseDefaults fills the interval and duration a client left out, as Eureka's parser does.
func leaseDefaults(l registry.LeaseInfo) registry.LeaseInfo {
	if l.RenewalIntervalSecs <= 0 {
		l.RenewalIntervalSecs = 30
	}
	if l.DurationSecs <= 0 {
		l.DurationSecs = 90
	}
	return l
}

// dcMetadata is the data-center metadata to write: all of it, or the compact subset.
func dcMetadata(d registry.DataCenterInfo, o Options) map[string]string {
	if !o.Compact {
		return d.Metadata
	}
	md := map[string]string{}
	for k, v := range d.Metadata {
		if compactAmazonKeys[k] {
			md[k] = v
		}
	}
	return md
}
