package codec

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/core/registry"
)

// XML follows XStream's layout as Eureka's server writes it: no declaration, `overriddenstatus`
// in lower case, ports as <port enabled="true">8080</port>, the data-center class as an attribute,
// metadata keys as element names with XStream's escaping (_ → __, $ → _-).

func appendXMLText(dst []byte, s string) []byte {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return append(dst, b.Bytes()...)
}

func appendElem(dst []byte, name, value string) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = appendXMLText(dst, value)
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

func appendApplicationsXML(dst []byte, apps *registry.Applications, o Options) []byte {
	dst = append(dst, "<applications>"...)
	dst = appendElem(dst, "versions__delta", apps.VersionsDelta)
	dst = appendElem(dst, "apps__hashcode", apps.AppsHashCode)
	for _, a := range apps.Applications {
		dst = appendApplicationXML(dst, a, o, "")
	}
	return append(dst, "</applications>"...)
}

func appendApplicationXML(dst []byte, app *registry.Application, o Options, _ string) []byte {
	dst = append(dst, "<application>"...)
	dst = appendElem(dst, "name", app.Name)
	for _, i := range app.Instances {
		dst = appendInstanceXML(dst, i, o, "")
	}
	return append(dst, "</application>"...)
}

func appendInstanceXML(dst []byte, i *registry.Instance, o Options, _ string) []byte {
	opt := func(name, v string) {
		if v != "" {
			dst = appendElem(dst, name, v)
		}
	}
	dst = append(dst, "<instance>"...)
	opt("instanceId", i.InstanceID)
	dst = appendElem(dst, "hostName", i.HostName)
	dst = appendElem(dst, "app", i.App)
	dst = appendElem(dst, "ipAddr", i.IPAddr)
	if !o.Compact && i.Sid != "" && i.Sid != "na" && i.Sid != "unknown" {
		dst = appendElem(dst, "sid", i.Sid)
	}
	dst = appendElem(dst, "status", string(orUnknown(i.Status)))
	if !o.Compact {
		dst = appendElem(dst, "overriddenstatus", string(orUnknown(i.OverriddenStatus)))
	}
	dst = appendPortXML(dst, "port", i.Port)
	dst = appendPortXML(dst, "securePort", i.SecurePort)
	if !o.Compact {
		dst = appendElem(dst, "countryId", strconv.Itoa(i.CountryID))
	}
	dst = append(dst, `<dataCenterInfo class="`...)
	dst = appendXMLText(dst, dcClass(i.DataCenterInfo))
	dst = append(dst, `">`...)
	dst = appendElem(dst, "name", i.DataCenterInfo.Name)
	if i.DataCenterInfo.Name == "Amazon" || len(i.DataCenterInfo.Metadata) > 0 {
		dst = appendMapXML(dst, dcMetadata(i.DataCenterInfo, o), false)
	}
	dst = append(dst, "</dataCenterInfo>"...)
	if !o.Compact {
		l := leaseDefaults(i.LeaseInfo)
		dst = append(dst, "<leaseInfo>"...)
		dst = appendElem(dst, "renewalIntervalInSecs", strconv.Itoa(l.RenewalIntervalSecs))
		dst = appendElem(dst, "durationInSecs", strconv.Itoa(l.DurationSecs))
		dst = appendElem(dst, "registrationTimestamp", strconv.FormatInt(l.RegistrationTimestamp, 10))
		dst = appendElem(dst, "lastRenewalTimestamp", strconv.FormatInt(l.LastRenewalTimestamp, 10))
		dst = appendElem(dst, "evictionTimestamp", strconv.FormatInt(l.EvictionTimestamp, 10))
		dst = appendElem(dst, "serviceUpTimestamp", strconv.FormatInt(l.ServiceUpTimestamp, 10))
		dst = append(dst, "</leaseInfo>"...)
		dst = appendMapXML(dst, i.Metadata, true)
	}
	opt("appGroupName", i.AppGroupName)
	if !o.Compact {
		opt("homePageUrl", i.HomePageURL)
		opt("statusPageUrl", i.StatusPageURL)
		opt("healthCheckUrl", i.HealthCheckURL)
		opt("secureHealthCheckUrl", i.SecureHealthCheckURL)
	}
	opt("vipAddress", i.VIPAddress)
	opt("secureVipAddress", i.SecureVIPAddress)
	if !o.Compact {
		dst = appendElem(dst, "isCoordinatingDiscoveryServer", strconv.FormatBool(i.IsCoordinatingDiscoveryServer))
	}
	dst = appendElem(dst, "lastUpdatedTimestamp", strconv.FormatInt(i.LastUpdatedTimestamp, 10))
	if !o.Compact {
		dst = appendElem(dst, "lastDirtyTimestamp", strconv.FormatInt(i.LastDirtyTimestamp, 10))
	}
	opt("actionType", string(i.ActionType))
	opt("asgName", i.ASGName)
	return append(dst, "</instance>"...)
}

func appendPortXML(dst []byte, name string, p registry.Port) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, ` enabled="`...)
	dst = strconv.AppendBool(dst, p.Enabled)
	dst = append(dst, `">`...)
	dst = strconv.AppendInt(dst, int64(p.Number), 10)
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

// escapeName applies XStream's element-name escaping to a metadata key.
func escapeName(k string) string {
	k = strings.ReplaceAll(k, "_", "__")
	return strings.ReplaceAll(k, "$", "_-")
}

func unescapeName(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] == '_' && i+1 < len(k) {
			switch k[i+1] {
			case '_':
				b.WriteByte('_')
				i++
				continue
			case '-':
				b.WriteByte('$')
				i++
				continue
			}
		}
		b.WriteByte(k[i])
	}
	return b.String()
}

// validName reports whether a metadata key can be an XML element name once escaped. The registry
// stores no other key (registry.ValidateInstance); this keeps the XML readable regardless.
func validName(k string) bool {
	return registry.ValidateMetadataEntry(k, "") == nil
}

func appendMapXML(dst []byte, m map[string]string, emptyClass bool) []byte {
	if len(m) == 0 {
		if emptyClass {
			return append(dst, `<metadata class="java.util.Collections$EmptyMap"/>`...)
		}
		return append(dst, "<metadata/>"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if validName(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	dst = append(dst, "<metadata>"...)
	for _, k := range keys {
		dst = appendElem(dst, escapeName(k), m[k])
	}
	return append(dst, "</metadata>"...)
}

type xmlPort struct {
	Value   string  `xml:",chardata"`
	Enabled *string `xml:"enabled,attr"`
}

// xmlMap reads child elements as key -> text, unescaping XStream names and ignoring the class
// attribute.
type xmlMap map[string]string

func (m *xmlMap) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	out := xmlMap{}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var v string
			if err := d.DecodeElement(&v, &t); err != nil {
				return err
			}
			out[unescapeName(t.Name.Local)] = v
		case xml.EndElement:
			*m = out
			return nil
		}
	}
}

type xmlDCI struct {
	Class    string  `xml:"class,attr"`
	Name     *string `xml:"name"`
	Metadata xmlMap  `xml:"metadata"`
}

type xmlLease struct {
	RenewalInterval string `xml:"renewalIntervalInSecs"`
	Duration        string `xml:"durationInSecs"`
	Registration    string `xml:"registrationTimestamp"`
	LastRenewal     string `xml:"lastRenewalTimestamp"`
	RenewalLegacy   string `xml:"renewalTimestamp"`
	Eviction        string `xml:"evictionTimestamp"`
	ServiceUp       string `xml:"serviceUpTimestamp"`
}

type xmlInstance struct {
	InstanceID           string    `xml:"instanceId"`
	HostName             string    `xml:"hostName"`
	App                  *string   `xml:"app"`
	IPAddr               string    `xml:"ipAddr"`
	Sid                  string    `xml:"sid"`
	Status               string    `xml:"status"`
	OverriddenLow        string    `xml:"overriddenstatus"`
	Overridden           string    `xml:"overriddenStatus"`
	Port                 *xmlPort  `xml:"port"`
	SecurePort           *xmlPort  `xml:"securePort"`
	CountryID            string    `xml:"countryId"`
	DataCenterInfo       *xmlDCI   `xml:"dataCenterInfo"`
	LeaseInfo            *xmlLease `xml:"leaseInfo"`
	Metadata             xmlMap    `xml:"metadata"`
	AppGroupName         string    `xml:"appGroupName"`
	HomePageURL          string    `xml:"homePageUrl"`
	StatusPageURL        string    `xml:"statusPageUrl"`
	HealthCheckURL       string    `xml:"healthCheckUrl"`
	SecureHealthCheckURL string    `xml:"secureHealthCheckUrl"`
	VIPAddress           string    `xml:"vipAddress"`
	SecureVIPAddress     string    `xml:"secureVipAddress"`
	IsCoordinating       string    `xml:"isCoordinatingDiscoveryServer"`
	LastUpdated          string    `xml:"lastUpdatedTimestamp"`
	LastDirty            string    `xml:"lastDirtyTimestamp"`
	ActionType           string    `xml:"actionType"`
	ASGName              string    `xml:"asgName"`
}

func xmlInt(field, s string) (int64, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, parseErr("%s: want an integer, got %q", field, s)
	}
	return v, true, nil
}

func (x *xmlInstance) model() (*registry.Instance, error) {
	// Reuse the JSON model's rules by translating field by field.
	j := jsonInstance{
		InstanceID: strings.TrimSpace(x.InstanceID), HostName: strings.TrimSpace(x.HostName), App: x.App,
		IPAddr: strings.TrimSpace(x.IPAddr), Sid: x.Sid, Status: strings.TrimSpace(x.Status),
		OverriddenStatus: strings.TrimSpace(x.Overridden), OverriddenStatusLow: strings.TrimSpace(x.OverriddenLow),
		Metadata: flexMap(x.Metadata), AppGroupName: x.AppGroupName, HomePageURL: x.HomePageURL,
		StatusPageURL: x.StatusPageURL, HealthCheckURL: x.HealthCheckURL, SecureHealthCheckURL: x.SecureHealthCheckURL,
		VIPAddress: x.VIPAddress, SecureVIPAddress: x.SecureVIPAddress, ActionType: strings.TrimSpace(x.ActionType),
		ASGName: x.ASGName,
	}
	if j.App != nil {
		a := strings.TrimSpace(*j.App)
		j.App = &a
	}
	var err error
	set := func(dst *flexInt, field, s string) {
		if err != nil {
			return
		}
		var v int64
		var ok bool
		v, ok, err = xmlInt(field, s)
		dst.v, dst.set = v, ok
	}
	set(&j.CountryID, "countryId", x.CountryID)
	set(&j.LastUpdated, "lastUpdatedTimestamp", x.LastUpdated)
	set(&j.LastDirty, "lastDirtyTimestamp", x.LastDirty)
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(x.IsCoordinating); s != "" {
		j.IsCoordinating = flexBool{v: s == "true", set: true}
	}
	for _, p := range []struct {
		src *xmlPort
		dst **jsonPort
		def bool
		nm  string
	}{{x.Port, &j.Port, true, "port"}, {x.SecurePort, &j.SecurePort, false, "securePort"}} {
		if p.src == nil {
			continue
		}
		v, ok, err := xmlInt(p.nm, p.src.Value)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		jp := &jsonPort{num: v, set: true}
		if p.src.Enabled != nil {
			jp.enabled = flexBool{v: strings.TrimSpace(*p.src.Enabled) == "true", set: true}
		} else {
			jp.enabled = flexBool{v: p.def, set: true}
		}
		*p.dst = jp
	}
	if d := x.DataCenterInfo; d != nil {
		j.DataCenterInfo = &jsonDCI{Class: d.Class, Metadata: flexMap(d.Metadata)}
		if d.Name != nil {
			n := strings.TrimSpace(*d.Name)
			j.DataCenterInfo.Name = &n
		}
	}
	if l := x.LeaseInfo; l != nil {
		j.LeaseInfo = &jsonLease{}
		set(&j.LeaseInfo.RenewalInterval, "renewalIntervalInSecs", l.RenewalInterval)
		set(&j.LeaseInfo.Duration, "durationInSecs", l.Duration)
		set(&j.LeaseInfo.Registration, "registrationTimestamp", l.Registration)
		set(&j.LeaseInfo.LastRenewal, "lastRenewalTimestamp", l.LastRenewal)
		set(&j.LeaseInfo.RenewalLegacy, "renewalTimestamp", l.RenewalLegacy)
		set(&j.LeaseInfo.Eviction, "evictionTimestamp", l.Eviction)
		set(&j.LeaseInfo.ServiceUp, "serviceUpTimestamp", l.ServiceUp)
		if err != nil {
			return nil, err
		}
	}
	return j.model()
}

func newXMLDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "utf8", "us-ascii":
			return r, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	return d
}

func decodeInstanceXML(data []byte) (*registry.Instance, error) {
	var x struct {
		XMLName xml.Name
		xmlInstance
	}
	if err := newXMLDecoder(data).Decode(&x); err != nil {
		return nil, parseErr("%v", err)
	}
	if x.XMLName.Local != "instance" {
		return nil, parseErr("root element <%s>, want <instance>", x.XMLName.Local)
	}
	return x.xmlInstance.model()
}

func decodeApplicationsXML(data []byte) (*registry.Applications, error) {
	var x struct {
		XMLName       xml.Name
		VersionsDelta string `xml:"versions__delta"`
		HashCode      string `xml:"apps__hashcode"`
		Application   []struct {
			Name     string        `xml:"name"`
			Instance []xmlInstance `xml:"instance"`
		} `xml:"application"`
	}
	if err := newXMLDecoder(data).Decode(&x); err != nil {
		return nil, parseErr("%v", err)
	}
	if x.XMLName.Local != "applications" {
		return nil, parseErr("root element <%s>, want <applications>", x.XMLName.Local)
	}
	out := &registry.Applications{VersionsDelta: strings.TrimSpace(x.VersionsDelta), AppsHashCode: strings.TrimSpace(x.HashCode)}
	for _, a := range x.Application {
		ra := &registry.Application{Name: strings.ToUpper(strings.TrimSpace(a.Name))}
		for k := range a.Instance {
			i, err := a.Instance[k].model()
			if err != nil {
				return nil, err
			}
			ra.Instances = append(ra.Instances, i)
		}
		out.Applications = append(out.Applications, ra)
	}
	return out, nil
}
