package config

import (
	"strings"
	"testing"
)

func TestPeerTransportAddress(t *testing.T) {
	src := "replication {\n  peer \"http://10.0.0.3:8761/eureka/\" {\n    transport_address = %s\n  }\n}\n"
	c, err := Parse("t.hcl", []byte(strings.Replace(src, "%s", `"10.0.0.3:9000"`, 1)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Replication.Peers["http://10.0.0.3:8761/eureka/"].TransportAddress; got != "10.0.0.3:9000" {
		t.Fatalf("transport_address %q", got)
	}
	for _, bad := range []string{`"10.0.0.3"`, `":9000"`, `"10.0.0.3:0"`, `"10.0.0.3:http"`} {
		_, err := Parse("t.hcl", []byte(strings.Replace(src, "%s", bad, 1)), nil, nil)
		if err == nil {
			t.Errorf("transport_address = %s accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "t.hcl:3") || !strings.Contains(msg, "transport_address") ||
			!strings.Contains(msg, "want host:port") {
			t.Errorf("transport_address = %s: error %q does not name the file, line and key", bad, msg)
		}
	}
}
