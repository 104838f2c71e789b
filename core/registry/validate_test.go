package registry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The metadata keys that made /apps, /apps/delta and /vips unreadable as XML on every node.
var poisonKeys = []string{"a×b", "a:b:c", "a:b", "a\u200bb", "a\xffb", "", "1st", "-x", ".x", "a b", "a<b", "a\x01b", "@class", "a\uFFFEb"}

func TestValidateInstanceRefusesWhatBreaksReads(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*Instance)
		field  string
		reason string
	}{
		{"control character in hostName", func(i *Instance) { i.HostName = "h\x00" }, "hostName", "U+0000"},
		{"invalid UTF-8 in a URL", func(i *Instance) { i.HomePageURL = "http://h/\xc3" }, "homePageUrl", "not valid UTF-8"},
		{"U+FFFF in asgName", func(i *Instance) { i.ASGName = "\uffff" }, "asgName", "U+FFFF"},
		{"metadata value", func(i *Instance) { i.Metadata = map[string]string{"k": "v\x1b"} }, "metadata", "value"},
		{"dataCenterInfo metadata key", func(i *Instance) { i.DataCenterInfo.Metadata = map[string]string{"a:b": "v"} }, "dataCenterInfo.metadata", "namespace"},
		{"id ..", func(i *Instance) { i.InstanceID = ".." }, "instanceId", "URL path"},
		{"id .", func(i *Instance) { i.InstanceID = "." }, "instanceId", "URL path"},
		{"id with a slash", func(i *Instance) { i.InstanceID = "a/b" }, "instanceId", "'/'"},
		{"blank id", func(i *Instance) { i.InstanceID, i.HostName = "", " " }, "instanceId", "blank"},
		{"app ..", func(i *Instance) { i.App = ".." }, "app", "URL path"},
		{"app with a slash", func(i *Instance) { i.App = "A/B" }, "app", "'/'"},
		{"duration overflows", func(i *Instance) { i.LeaseInfo.DurationSecs = 1 << 40 }, "leaseInfo.durationInSecs", "out of range"},
		{"interval overflows", func(i *Instance) { i.LeaseInfo.RenewalIntervalSecs = 9e18 }, "leaseInfo.renewalIntervalInSecs", "out of range"},
		{"duration under Java's int", func(i *Instance) { i.LeaseInfo.DurationSecs = -1 << 40 }, "leaseInfo.durationInSecs", "out of range"},
		{"too many VIPs", func(i *Instance) { i.VIPAddress = strings.Repeat("v,", MaxVIPEntries) + "v" }, "vipAddress", "addresses"},
		{"250,000 commas", func(i *Instance) { i.SecureVIPAddress = strings.Repeat(",", 250000) }, "secureVipAddress", "bytes"},
		{"VIP too long", func(i *Instance) { i.VIPAddress = strings.Repeat("v", MaxVIPBytes+1) }, "vipAddress", "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := inst("DEMO", "i1", StatusUp, 1)
			c.mod(i)
			err := ValidateInstance(i)
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want an *InvalidError wrapping ErrInvalid", err)
			}
			if ie.Field != c.field || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %q (field %q), want field %q and %q in the message", err, ie.Field, c.field, c.reason)
			}
			r, _ := newReg(t, nil)
			if err := r.Register(ctx, i, FromPeer); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Register: %v, want ErrInvalid", err)
			}
			if ok, err := r.Adopt(ctx, i, 0); ok || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Adopt: %v %v, want ErrInvalid", ok, err)
			}
			if r.Stats().Instances != 0 {
				t.Fatal("a refused instance was stored")
			}
		})
	}
}

func TestValidateMetadataKeys(t *testing.T) {
	for _, k := range poisonKeys {
		err := ValidateMetadataEntry(k, "v")
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Key != k || !ie.HasKey {
			t.Errorf("key %q: error %v, want one naming the key", k, err)
			continue
		}
		if want := fmt.Sprintf("metadata key %q", k); !strings.Contains(err.Error(), want) {
			t.Errorf("key %q: message %q lacks %s", k, err, want)
		}
	}
	for _, k := range []string{"zone", "management.port", "instanceId", "a_b", "$x", "_-", "a-1.b", "größe", "名前", "Ωmega", "x·y", "k\u0301"} {
		if err := ValidateMetadataEntry(k, "any value: <&>\"' \t\r\n ünï 😀"); err != nil {
			t.Errorf("key %q refused: %v", k, err)
		}
	}
}

func TestValidateInstanceAcceptsTheLimits(t *testing.T) {
	i := inst("DEMO", "i1", StatusUp, 1)
	i.Metadata = map[string]string{"a": strings.Repeat("x", 1<<20)}
	i.VIPAddress = strings.Repeat("v,", MaxVIPEntries-1) + "v"
	i.SecureVIPAddress = strings.Repeat("v", MaxVIPBytes)
	i.LeaseInfo = LeaseInfo{RenewalIntervalSecs: MaxLeaseSecs, DurationSecs: MaxLeaseSecs}
	r, _ := newReg(t, nil)
	mustRegister(t, r, i, FromClient)
	// The lease arithmetic stays in range: the instance is neither expired nor evicted.
	if got := get(t, r, "DEMO", "i1"); got.LeaseInfo.DurationSecs != MaxLeaseSecs {
		t.Fatalf("duration %d, want %d", got.LeaseInfo.DurationSecs, MaxLeaseSecs)
	}
	if d := RenewalInterval(i); d <= 0 {
		t.Fatalf("renewal interval %v overflowed", d)
	}
}
