package sdk

import "testing"

func TestPeerAddress(t *testing.T) {
	for _, c := range []struct {
		peer   Peer
		offset int
		want   string
	}{
		{Peer{URL: "http://127.0.0.1:8761/eureka/"}, 1000, "127.0.0.1:9761"},
		{Peer{URL: "http://eureka-2.internal:8762/eureka/"}, 5, "eureka-2.internal:8767"},
		{Peer{URL: "https://[::1]/eureka/"}, 1000, "[::1]:1443"},
		{Peer{URL: "http://127.0.0.1:8761/eureka/", Address: "10.0.0.9:7000"}, 1000, "10.0.0.9:7000"},
	} {
		got, err := PeerAddress(c.peer, c.offset)
		if err != nil || got != c.want {
			t.Errorf("PeerAddress(%+v, %d) = %q, %v; want %q", c.peer, c.offset, got, err, c.want)
		}
	}
	for _, p := range []Peer{{URL: "http://127.0.0.1:65000/eureka/"}, {URL: "/eureka/"}, {Address: "no-port"}} {
		if got, err := PeerAddress(p, 1000); err == nil {
			t.Errorf("PeerAddress(%+v) = %q, want an error", p, got)
		}
	}
}
