package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// The admission example (every instance must carry metadata "owner") cannot be bypassed: not with
// the replication header, not by a metadata update, and not through a node that lacks the
// handler, whose instances reach the other nodes neither by replication, nor by anti-entropy,
// nor by a new node's startup sync.
func TestAdmissionCannotBeBypassed(t *testing.T) {
	t.Parallel()
	admission := fmt.Sprintf(`
plugin "action_handler" "admission" {
  command = %q
  config {
    required_metadata = ["owner"]
  }
}
replication {
  action_handlers = ["admission", "eureka"]
}
`, exampleBinary(t, "admission"))
	ports := e2e.FreePorts(t, 4)
	var urls []string
	for _, p := range ports[:3] {
		urls = append(urls, urlOf(p))
	}
	nodes := make([]*e2e.Node, 3)
	for i, p := range ports[:3] {
		extra := admission
		if i == 2 {
			extra = "" // a node configured without the policy
		}
		nodes[i] = e2e.NewNode(t, heraldBin, fmt.Sprintf("node%d", i), p, clusterHCL(p, urls, extra))
		nodes[i].Start()
	}
	guarded, open := nodes[:2], nodes[2]
	owned := func(app, id, owner string) []byte {
		md := map[string]string{}
		if owner != "" {
			md["owner"] = owner
		}
		return e2e.InstanceJSON(app, id, time.Now().UnixMilli(), "UP", md)
	}

	// The replication header from a client is no way around admission.
	code, body := do(t, "POST", guarded[0].URL()+"apps/NOOWNER", owned("NOOWNER", "h-1", ""), nil)
	if code != 422 {
		t.Fatalf("registration without owner: %d %s", code, body)
	}
	code, body, _ = client.Do(t.Context(), "POST", guarded[0].URL()+"apps/NOOWNER", "application/json", owned("NOOWNER", "h-1", ""), repl)
	if code != 422 {
		t.Fatalf("registration without owner, with the replication header: %d %s, want 422", code, body)
	}

	// A metadata update that drops the owner is refused.
	code, body = do(t, "POST", guarded[0].URL()+"apps/OWNED", owned("OWNED", "o-1", "alice"), nil)
	if code != 204 {
		t.Fatalf("registration with owner: %d %s", code, body)
	}
	code, body = do(t, "PUT", guarded[0].URL()+"apps/OWNED/o-1/metadata?owner=", nil, nil)
	if code != 422 || !strings.Contains(string(body), "owner") {
		t.Fatalf("metadata update dropping the owner: %d %s, want 422", code, body)
	}

	// A node without the policy takes an instance without owner and renews it (so anti-entropy
	// would copy it to a node that lacks it); the guarded nodes refuse it on every path.
	code, body = do(t, "POST", open.URL()+"apps/NOOWNER", owned("NOOWNER", "x-1", ""), nil)
	if code != 204 {
		t.Fatalf("registration at the open node: %d %s", code, body)
	}
	if code, _ = do(t, "PUT", open.URL()+"apps/NOOWNER/x-1?status=UP", nil, nil); code != 200 {
		t.Fatalf("heartbeat at the open node: %d", code)
	}
	late := e2e.NewNode(t, heraldBin, "late", ports[3], clusterHCL(ports[3], []string{urlOf(ports[3]), open.URL()}, admission))
	late.Start() // startup sync from the open node only
	for _, n := range append(guarded, late) {
		base := aeExchanges(t, e2e.DefaultClient, n)
		e2e.Eventually(t, time.Minute, func() error { // two anti-entropy rounds
			if v := aeExchanges(t, e2e.DefaultClient, n); v < base+4 {
				return fmt.Errorf("%v exchanges so far", v-base)
			}
			return nil
		})
		if _, ok, err := instance(t, n, "NOOWNER", "x-1"); err != nil || ok {
			t.Fatalf("an instance without owner reached %s (%v)", n.Name, err)
		}
	}
	visibleOn(t, "OWNED", "o-1", nodes...)
}
