package registry

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what an instance may carry. Eureka has none; without them one registration can make
// every read of the registry fail or cost seconds on every node (see ValidateInstance).
const (
	// MaxVIPEntries bounds the comma-separated entries of vipAddress and of secureVipAddress: every
	// /vips and /svips lookup splits the lists of all instances.
	MaxVIPEntries = 64
	// MaxVIPBytes bounds the length of vipAddress and of secureVipAddress, in bytes.
	MaxVIPBytes = 1024
	// MaxLeaseSecs is the largest renewalIntervalInSecs or durationInSecs: Eureka's LeaseInfo
	// holds them as Java ints, and larger values overflow herald's millisecond arithmetic.
	MaxLeaseSecs = math.MaxInt32
)

// InvalidError is an instance the registry refuses to store: its app and id, the field at fault
// (as Eureka's JSON names it: "metadata", "dataCenterInfo.metadata", "leaseInfo.durationInSecs",
// "vipAddress", ...), the metadata key when the fault is in a metadata map, and why. It wraps
// ErrInvalid. API handlers answer it with 400 and its text.
type InvalidError struct {
	App, ID string
	Field   string
	// Key is the metadata key at fault; HasKey tells an empty key from none.
	Key    string
	HasKey bool
	Reason string
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid instance")
	if e.App != "" || e.ID != "" {
		// Quoted when they are the fault: the message goes back in a plain-text body and logs.
		fmt.Fprintf(&b, " %s/%s", printable(e.App), printable(e.ID))
	}
	b.WriteString(": ")
	b.WriteString(e.Field)
	if e.HasKey {
		fmt.Fprintf(&b, " key %q", e.Key)
	}
	b.WriteByte(' ')
	b.WriteString(e.Reason)
	return b.String()
}

func printable(s string) string {
	if xmlText(s) == "" {
		return s
	}
	return fmt.Sprintf("%q", s)
}

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// ValidateInstance checks what the registry must never store because it would break reads for
// everybody: text that XML 1.0 cannot carry (invalid UTF-8, control characters, U+FFFE/U+FFFF)
// in any field; metadata keys that are not XML element names (Eureka's XML writes them as
// elements, so "a:b", "a×b" or "a\u200bb" would make /apps, /apps/delta and /vips unparseable);
// an app name or instance id the API cannot serve back ("", ".", "..", anything with a '/');
// lease durations outside Java's int range; VIP lists over MaxVIPEntries entries or MaxVIPBytes
// bytes. The error is an *InvalidError (wrapping ErrInvalid) naming the field and key.
//
// Registry.Register calls it; the API calls it first to answer with 400, and so should anything
// that stores an instance by other means.
func ValidateInstance(inst *Instance) error {
	if inst == nil {
		return fmt.Errorf("%w: nil instance", ErrInvalid)
	}
	app, id := strings.ToUpper(inst.App), inst.ID()
	bad := func(field, format string, a ...any) error {
		return &InvalidError{App: app, ID: id, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if err := routable(inst.App); err != "" {
		return bad("app", "%q %s", inst.App, err)
	}
	if err := routable(id); err != "" {
		return bad("instanceId", "%q %s", id, err)
	}
	for _, f := range [...]struct{ name, v string }{
		{"instanceId", inst.InstanceID}, {"hostName", inst.HostName}, {"app", inst.App}, {"ipAddr", inst.IPAddr},
		{"sid", inst.Sid}, {"status", string(inst.Status)}, {"overriddenStatus", string(inst.OverriddenStatus)},
		{"dataCenterInfo.@class", inst.DataCenterInfo.Class}, {"dataCenterInfo.name", inst.DataCenterInfo.Name},
		{"appGroupName", inst.AppGroupName}, {"homePageUrl", inst.HomePageURL}, {"statusPageUrl", inst.StatusPageURL},
		{"healthCheckUrl", inst.HealthCheckURL}, {"secureHealthCheckUrl", inst.SecureHealthCheckURL},
		{"vipAddress", inst.VIPAddress}, {"secureVipAddress", inst.SecureVIPAddress},
		{"actionType", string(inst.ActionType)}, {"asgName", inst.ASGName},
	} {
		if why := xmlText(f.v); why != "" {
			return bad(f.name, "%s", why)
		}
	}
	for _, v := range [...]struct{ name, v string }{{"vipAddress", inst.VIPAddress}, {"secureVipAddress", inst.SecureVIPAddress}} {
		if len(v.v) > MaxVIPBytes {
			return bad(v.name, "is %d bytes long, more than the %d allowed", len(v.v), MaxVIPBytes)
		}
		if n := strings.Count(v.v, ",") + 1; n > MaxVIPEntries {
			return bad(v.name, "lists %d addresses, more than the %d allowed", n, MaxVIPEntries)
		}
	}
	for _, l := range [...]struct {
		name string
		v    int
	}{{"leaseInfo.renewalIntervalInSecs", inst.LeaseInfo.RenewalIntervalSecs}, {"leaseInfo.durationInSecs", inst.LeaseInfo.DurationSecs}} {
		if int64(l.v) > MaxLeaseSecs || int64(l.v) < math.MinInt32 {
			return bad(l.name, "%d is out of range: Eureka's lease times are int seconds, at most %d", l.v, MaxLeaseSecs)
		}
	}
	for _, md := range [...]struct {
		name string
		m    map[string]string
	}{{"metadata", inst.Metadata}, {"dataCenterInfo.metadata", inst.DataCenterInfo.Metadata}} {
		for k, v := range md.m {
			if err := ValidateMetadataEntry(k, v); err != nil {
				e := err.(*InvalidError)
				e.App, e.ID, e.Field = app, id, md.name
				return e
			}
		}
	}
	return nil
}

// ValidateMetadataEntry checks one metadata key and value as ValidateInstance does (the key an XML
// element name, both text XML 1.0 can carry). The error is an *InvalidError naming the key.
func ValidateMetadataEntry(key, value string) error {
	bad := func(format string, a ...any) error {
		return &InvalidError{Field: "metadata", Key: key, HasKey: true, Reason: fmt.Sprintf(format, a...)}
	}
	if why := xmlText(key); why != "" {
		return bad("%s", why)
	}
	if why := xmlName(key); why != "" {
		return bad("cannot be an XML element name (Eureka's XML writes metadata keys as elements): %s", why)
	}
	if why := xmlText(value); why != "" {
		return bad("has a value that %s", why)
	}
	return nil
}

// routable says why the API could not serve a resource named s back (HTTP path cleaning turns
// "." and ".." into redirects, a '/' splits the path), or "".
func routable(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is blank"
	case s == "." || s == "..":
		return "cannot be used in a URL path"
	case strings.ContainsRune(s, '/'):
		return "contains '/', which cannot be used in a URL path segment"
	}
	return ""
}

// xmlText says why s cannot be XML 1.0 character data, or "". encoding/xml would write U+FFFD
// instead, and Eureka's XStream would write a document no parser reads.
func xmlText(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Sprintf("is not valid UTF-8 (byte 0x%02x at offset %d)", c, i)
		}
		if !xmlChar(r) {
			return fmt.Sprintf("contains %U at offset %d, which XML 1.0 cannot carry", r, i)
		}
		i += n
	}
	return ""
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// xmlName says why key, escaped as XStream escapes element names ('_' as "__", '$' as "_-"), is
// not an XML element name that every parser reads without a namespace declaration, or "". The
// rule is XML 1.0's NCName (a Name without ':'), with the letters of XML 1.0's Appendix B, which
// encoding/xml, Java's parsers and expat all accept.
func xmlName(key string) string {
	if key == "" {
		return "it is empty"
	}
	ascii := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= utf8.RuneSelf:
			ascii = false
		case c == ':':
			return "':' makes it a namespace-prefixed name, and no namespace is declared"
		case c == '_' || c == '$' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
		case i > 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')):
		case i == 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')):
			return fmt.Sprintf("it starts with %q", c)
		default:
			return fmt.Sprintf("%q at offset %d is not allowed in one", c, i)
		}
	}
	if ascii {
		return ""
	}
	// Non-ASCII: name the first rune that is not a letter, digit, mark or extender, then let
	// encoding/xml, whose tables are Appendix B's, have the last word.
	for i, r := range key {
		if r < utf8.RuneSelf {
			continue
		}
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == 0xB7) ||
			(i == 0 && !unicode.IsLetter(r)) {
			return fmt.Sprintf("%U at offset %d is not allowed in one", r, i)
		}
	}
	name := strings.ReplaceAll(strings.ReplaceAll(key, "_", "__"), "$", "_-")
	tok, err := xml.NewDecoder(strings.NewReader("<" + name + "/>")).RawToken()
	if se, ok := tok.(xml.StartElement); err != nil || !ok || se.Name.Space != "" || se.Name.Local != name {
		return "it has a character that XML 1.0 does not allow in names"
	}
	return ""
}
