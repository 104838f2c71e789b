package eureka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/replication/receive"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// A batch through the endpoint, whose decoder hands each decoded instance to the receiver, gets
// the answers that the items decoded with encoding/json get from a receiver that decodes each
// instance itself, item by item, and leaves the same registry behind.
func TestBatchAnswersAsTwoPassDecoding(t *testing.T) {
	inst := func(id, extra string) string {
		return `{"instanceId":"` + id + `","hostName":"h-` + id + `","app":"demo","ipAddr":"10.0.0.1","status":"UP",` +
			`"port":{"$":8080,"@enabled":"true"},"dataCenterInfo":{"@class":"x","name":"MyOwn"},"vipAddress":"demo"` + extra + `}`
	}
	body := []byte(`{"replicationList":[` +
		`{"appName":"demo","id":"a","lastDirtyTimestamp":1000,"instanceInfo":` + inst("a", "") + `,"action":"Register"},` +
		`{"appName":"DEMO","id":"b","instanceInfo":` + inst("b", `,"port":70000`) + `,"action":"Register"},` +
		`{"appName":"DEMO","id":"c","instanceInfo":` + inst("c", `,"metadata":{"a:b:c":"v"}`) + `,"action":"Register"},` +
		`{"appName":"DEMO","id":"d","instanceInfo":` + inst("d", `,"ipAddr":null,"IPADDR":"1.2.3.4"`) + `,"action":"Register"},` +
		`{"appName":"DEMO","id":"e","instanceInfo":` + inst("e", `,"leaseInfo":"x"`) + `,"action":"Heartbeat"},` +
		`{"appName":"DEMO","id":"f","instanceInfo":null,"action":"Register"},` +
		`{"appName":"DEMO","id":"a","lastDirtyTimestamp":1000,"action":"Heartbeat"},` +
		`{"appName":"DEMO","id":"g","instanceInfo":` + inst("g", `,"status":"down","metadata":{"k":1.50,"@class":"m"}`) + `,"action":"Register"}]}`)

	n := newNode(t, nodeConfig{})
	r := n.doBytes(t, "POST", "/peerreplication/batch", body, "Content-Type", "application/json")
	wantCode(t, "batch", r, 200)

	ref := newNode(t, nodeConfig{})
	items, err := eurekawire.DecodeReplicationList(body)
	if err != nil {
		t.Fatal(err)
	}
	want := receive.New(ref.reg).Apply(context.Background(), items)
	got, err := eurekawire.DecodeReplicationListResponse(r.body)
	if err != nil {
		t.Fatal(err)
	}
	codes := func(rs []sdk.ItemResult) string {
		var b strings.Builder
		for _, x := range rs {
			fmt.Fprintf(&b, "%d ", x.StatusCode)
		}
		return b.String()
	}
	if codes(got) != codes(want) {
		t.Fatalf("answers %s, want %s", codes(got), codes(want))
	}
	if c := codes(want); !strings.Contains(c, "500") || !strings.Contains(c, "400") {
		t.Fatalf("the batch exercises no per-item refusal: %s", c)
	}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		got, gok := n.reg.Instance("DEMO", id)
		exp, eok := ref.reg.Instance("DEMO", id)
		if gok != eok || (gok && (got.Status != exp.Status || got.Metadata["k"] != exp.Metadata["k"] || got.Port != exp.Port)) {
			t.Errorf("%s: stored %v %+v, want %v %+v", id, gok, got, eok, exp)
		}
	}
}
