package registry

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// decoded returns an instance as a decoder makes one: every string its own allocation.
func decoded(app, id string, own bool) *Instance {
	s := strings.Clone
	host := s("host-" + id + ".prod.example.com")
	home := "http://" + host + ":8080/"
	i := &Instance{InstanceID: s(host + ":" + app + ":8080"), HostName: host, App: s(app), IPAddr: s("10.1.2.3"),
		Sid: s("na"), Status: Status(s("UP")), OverriddenStatus: Status(s("UNKNOWN")), Port: Port{8080, true},
		SecurePort: Port{8443, false}, CountryID: 1,
		DataCenterInfo: DataCenterInfo{Class: s(dcClassDefault), Name: s("MyOwn")}, HasDataCenterInfo: true,
		LeaseInfo: LeaseInfo{RenewalIntervalSecs: 30, DurationSecs: 90}, HasLeaseInfo: true,
		Metadata:    map[string]string{s("zone"): s("zone-1"), s("management.port"): s("8081"), s("version"): s("1.4.2")},
		HomePageURL: s(home), StatusPageURL: s(home + "actuator/info"), HealthCheckURL: s(home + "actuator/health"),
		VIPAddress: s(strings.ToLower(app)), SecureVIPAddress: s(strings.ToLower(app)), ActionType: ActionType(s("ADDED")),
		LastDirtyTimestamp: 1700000000000}
	if own {
		i.Metadata[s("startedAt")] = s(id)
	}
	return i
}

func dataOf(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

func mapID(m map[string]string) uintptr { return reflect.ValueOf(m).Pointer() }

func TestCompactKeepsContent(t *testing.T) {
	var sm sharedMaps
	in := decoded("APP", "1", true)
	in.DataCenterInfo = DataCenterInfo{Class: dcClassAmazon, Name: "Amazon",
		Metadata: map[string]string{"instance-id": "i-1", "local-ipv4": "10.1.2.3"}}
	in.SecureHealthCheckURL = "https://" + in.HostName + ":8443/actuator/health"
	in.AppGroupName, in.ASGName, in.Status = "GROUP", "asg-1", "SOMETHING"
	want := in.Clone()
	c := sm.compact(in)
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("compact changed the instance:\n got %+v\nwant %+v", c, want)
	}
	if ContentHash(c) != ContentHash(want) {
		t.Fatal("compact changed the content hash")
	}
	// The copy shares no map with the caller's instance.
	in.Metadata["zone"] = "changed"
	in.DataCenterInfo.Metadata["instance-id"] = "changed"
	if c.Metadata["zone"] != "zone-1" || c.DataCenterInfo.Metadata["instance-id"] != "i-1" {
		t.Fatalf("the caller's maps changed the stored copy: %v %v", c.Metadata, c.DataCenterInfo.Metadata)
	}
	empty := decoded("APP", "2", false)
	empty.Metadata = map[string]string{}
	if c := sm.compact(empty); c.Metadata == nil || len(c.Metadata) != 0 || c.DataCenterInfo.Metadata != nil {
		t.Fatalf("empty and absent maps: %#v %#v", c.Metadata, c.DataCenterInfo.Metadata)
	}
}

func TestCompactShares(t *testing.T) {
	var sm sharedMaps
	a, b := sm.compact(decoded("APP", "1", false)), sm.compact(decoded("APP", "2", false))
	if mapID(a.Metadata) != mapID(b.Metadata) {
		t.Error("equal metadata maps are not shared")
	}
	for _, f := range []struct {
		name string
		a, b string
	}{{"app", a.App, b.App}, {"vip", a.VIPAddress, b.SecureVIPAddress},
		{"class", a.DataCenterInfo.Class, b.DataCenterInfo.Class}, {"status", string(a.Status), string(StatusUp)}} {
		if dataOf(f.a) != dataOf(f.b) {
			t.Errorf("%s: two copies of %q", f.name, f.a)
		}
	}
	// Unequal maps are not shared, but their keys are.
	c, d := sm.compact(decoded("APP", "3", true)), sm.compact(decoded("APP", "4", true))
	if mapID(c.Metadata) == mapID(d.Metadata) || c.Metadata["startedAt"] == d.Metadata["startedAt"] {
		t.Fatalf("unequal maps shared: %v %v", c.Metadata, d.Metadata)
	}
	for k := range c.Metadata {
		for l := range d.Metadata {
			if k == l && dataOf(k) != dataOf(l) {
				t.Errorf("metadata key %q: two copies", k)
			}
		}
	}
	// An instance's own strings: the home page URL starts the other URLs, the host name is in
	// them and starts the id.
	inHealth := func(s string) bool {
		h := dataOf(a.HealthCheckURL)
		return dataOf(s) >= h && dataOf(s)+uintptr(len(s)) <= h+uintptr(len(a.HealthCheckURL))
	}
	if !inHealth(a.HomePageURL) || !inHealth(a.HostName) {
		t.Errorf("home page URL and host name are not slices of the health check URL")
	}
}

func TestSharedMapsBounded(t *testing.T) {
	var sm sharedMaps
	for i := range 50000 {
		m := sm.share(map[string]string{"startedAt": strconv.Itoa(i), "zone": "zone-1"})
		if m["startedAt"] != strconv.Itoa(i) {
			t.Fatalf("map %d: %v", i, m)
		}
		if sm.bytes > sharedMapsBudget {
			t.Fatalf("table holds %d bytes, budget %d", sm.bytes, sharedMapsBudget)
		}
	}
	if len(sm.maps) == 0 || len(sm.maps) >= 50000 {
		t.Fatalf("%d maps in the table", len(sm.maps))
	}
	// A map too large to share is copied.
	big := map[string]string{"pad": strings.Repeat("x", sharedMapMaxBytes)}
	if m := sm.share(big); mapID(m) == mapID(big) || m["pad"] != big["pad"] || mapID(sm.share(big)) == mapID(m) {
		t.Fatal("a large map was shared or not copied")
	}
}

func TestPack(t *testing.T) {
	for _, tc := range [][]string{
		{"http://h:8080/actuator/health", "", "http://h:8080/actuator/info", "http://h:8080/", "h", "h", "10.0.0.1"},
		{"", "", "", "", "", "", ""},
		{"a", "b", "ab", "ba", "aba", "", "b"},
		{strings.Repeat("x", packMaxLen), "y", "", "", "", "", ""},
	} {
		fields := slicesClone(tc)
		ptrs := make([]*string, len(fields))
		for i := range fields {
			ptrs[i] = &fields[i]
		}
		pack(ptrs...)
		if !reflect.DeepEqual(fields, tc) {
			t.Errorf("pack(%q) = %q", tc, fields)
		}
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// BenchmarkCompact is the cost Register pays for the registry's compact copy of an instance.
func BenchmarkCompact(b *testing.B) {
	for _, own := range []bool{false, true} {
		b.Run(fmt.Sprintf("own=%v", own), func(b *testing.B) {
			var sm sharedMaps
			insts := make([]*Instance, 1024)
			for i := range insts {
				insts[i] = decoded("APP", strconv.Itoa(i), own)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sm.compact(insts[i%len(insts)])
			}
		})
	}
}
