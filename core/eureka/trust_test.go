package eureka_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/core/eureka"
	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
)

// A caller that is not an authenticated peer cannot post a batch, and its replication header is
// ignored: the write is a client's, so admission runs on it.
func TestCallersThatAreNotPeers(t *testing.T) {
	admitted := 0
	n := newNode(t, nodeConfig{base: "/eureka/v2", opts: func(o *eureka.Options) {
		o.IsPeer = func(*http.Request) bool { return false }
		o.Accept = func(_ context.Context, inst *registry.Instance) error {
			admitted++
			if inst.Metadata["owner"] == "mallory" {
				return refusal{code: http.StatusForbidden}
			}
			return nil
		}
	}})
	n.register(t, "VICTIM", inst("VICTIM", "v-1", "10.0.0.1", "UP", 1000))

	t.Run("batch refused and nothing applied", func(t *testing.T) {
		body := `{"replicationList":[{"appName":"VICTIM","id":"v-1","action":"Cancel"},` +
			`{"appName":"VICTIM","id":"v-1","action":"StatusUpdate","status":"OUT_OF_SERVICE","overriddenStatus":"OUT_OF_SERVICE","lastDirtyTimestamp":99999999999999}]}`
		r := n.do(t, "POST", "/peerreplication/batch", body, "Content-Type", "application/json")
		wantCode(t, "forged batch", r, http.StatusForbidden)
		got, ok := n.reg.Instance("VICTIM", "v-1")
		if !ok || got.Status != registry.StatusUp {
			t.Fatalf("after a refused batch the instance is %v (present %v), want UP", got, ok)
		}
	})

	t.Run("replication header does not skip admission", func(t *testing.T) {
		before := admitted
		forged := inst("VICTIM", "v-1", "6.6.6.6", "UP", 2000)
		forged.Metadata = map[string]string{"owner": "mallory"}
		r := n.do(t, "POST", "/apps/VICTIM", forged.json(), "Content-Type", "application/json",
			eureka.ReplicationHeader, "true")
		wantCode(t, "register with a forged replication header", r, http.StatusForbidden)
		if admitted != before+1 {
			t.Fatalf("admission ran %d times, want once", admitted-before)
		}
		if got, _ := n.reg.Instance("VICTIM", "v-1"); got.IPAddr != "10.0.0.1" {
			t.Fatalf("forged registration applied: ip %s", got.IPAddr)
		}
	})

	t.Run("metadata update is admitted", func(t *testing.T) {
		r := n.do(t, "PUT", "/apps/VICTIM/v-1/metadata?owner=mallory", "")
		wantCode(t, "metadata update refused by admission", r, http.StatusForbidden)
		if got, _ := n.reg.Instance("VICTIM", "v-1"); got.Metadata["owner"] != "" {
			t.Fatalf("refused metadata applied: %v", got.Metadata)
		}
		r = n.do(t, "PUT", "/apps/VICTIM/v-1/metadata?owner=alice", "")
		wantCode(t, "metadata update admitted", r, http.StatusOK)
	})
}

// Status changes and override removals go through the Accept handlers of their actions.
func TestStatusChangesAreAdmitted(t *testing.T) {
	var seen []sdk.Item
	n := newNode(t, nodeConfig{base: "/eureka/v2", opts: func(o *eureka.Options) {
		o.IsPeer = func(*http.Request) bool { return false }
		o.AcceptItem = func(_ context.Context, it sdk.Item) error {
			seen = append(seen, it)
			if it.Status == "OUT_OF_SERVICE" {
				return refusal{code: http.StatusForbidden}
			}
			return nil
		}
	}})
	n.register(t, "ORDERS", inst("ORDERS", "o-1", "10.0.0.1", "UP", 1000))
	r := n.do(t, "PUT", "/apps/ORDERS/o-1/status?value=OUT_OF_SERVICE", "", eureka.ReplicationHeader, "true")
	wantCode(t, "status change refused by admission", r, http.StatusForbidden)
	if got, _ := n.reg.Instance("ORDERS", "o-1"); got.Status != registry.StatusUp {
		t.Fatalf("refused status change applied: %s", got.Status)
	}
	r = n.do(t, "DELETE", "/apps/ORDERS/o-1/status", "")
	wantCode(t, "override removal admitted", r, http.StatusOK)
	if len(seen) != 2 || seen[0].Action != sdk.ActionStatusUpdate || seen[1].Action != sdk.ActionDeleteStatusOverride ||
		seen[0].App != "ORDERS" || seen[0].ID != "o-1" {
		t.Fatalf("admission saw %+v", seen)
	}
}

// A lastDirtyTimestamp far in the future would outlive every later real write of the instance.
func TestTimestampsTooFarAheadAreRefused(t *testing.T) {
	n := newNode(t, nodeConfig{base: "/eureka/v2", opts: func(o *eureka.Options) {
		o.MaxClockSkew = time.Minute
	}})
	future := time.Now().Add(10 * 365 * 24 * time.Hour).UnixMilli()
	r := n.do(t, "POST", "/apps/ORDERS", inst("ORDERS", "o-1", "10.0.0.1", "UP", future).json(), "Content-Type", "application/json")
	wantCode(t, "registration ten years ahead", r, http.StatusBadRequest)
	if _, ok := n.reg.Instance("ORDERS", "o-1"); ok {
		t.Fatal("a registration ten years ahead was applied")
	}
	n.register(t, "ORDERS", inst("ORDERS", "o-1", "10.0.0.1", "UP", time.Now().Add(30*time.Second).UnixMilli()))
	r = n.do(t, "PUT", "/apps/ORDERS/o-1/status?value=DOWN&lastDirtyTimestamp="+strconv.FormatInt(future, 10), "")
	wantCode(t, "status change ten years ahead", r, http.StatusBadRequest)
}

// A peer's item from too far ahead is refused on its own; the rest of its batch applies.
func TestBatchItemsTooFarAheadAreRefusedAlone(t *testing.T) {
	n := newNode(t, nodeConfig{base: "/eureka/v2", opts: func(o *eureka.Options) { o.MaxClockSkew = time.Minute }})
	n.register(t, "ORDERS", inst("ORDERS", "o-1", "10.0.0.1", "UP", 1000))
	n.register(t, "ORDERS", inst("ORDERS", "o-2", "10.0.0.2", "UP", 1000))
	future := strconv.FormatInt(time.Now().Add(24*time.Hour).UnixMilli(), 10)
	body := `{"replicationList":[` +
		`{"appName":"ORDERS","id":"o-1","action":"StatusUpdate","status":"OUT_OF_SERVICE","overriddenStatus":"OUT_OF_SERVICE","lastDirtyTimestamp":` + future + `},` +
		`{"appName":"ORDERS","id":"o-2","action":"Cancel"}]}`
	r := n.do(t, "POST", "/peerreplication/batch", body, "Content-Type", "application/json")
	wantCode(t, "batch", r, http.StatusOK)
	if !strings.Contains(string(r.body), `"statusCode":400`) || !strings.Contains(string(r.body), `"statusCode":200`) {
		t.Fatalf("answers %s, want 400 then 200", r.body)
	}
	if got, _ := n.reg.Instance("ORDERS", "o-1"); got.Status != registry.StatusUp {
		t.Fatalf("an item from the future applied: %s", got.Status)
	}
	if _, ok := n.reg.Instance("ORDERS", "o-2"); ok {
		t.Fatal("the other item of the batch was not applied")
	}
}

// A status version from too far ahead would make every later status change of the instance look
// older: the item is refused on its own, like a lastDirtyTimestamp from the future.
func TestBatchStatusVersionTooFarAheadIsRefused(t *testing.T) {
	n := newNode(t, nodeConfig{base: "/eureka/v2", opts: func(o *eureka.Options) { o.MaxClockSkew = time.Minute }})
	n.register(t, "ORDERS", inst("ORDERS", "o-1", "10.0.0.1", "UP", 1000))
	n.register(t, "ORDERS", inst("ORDERS", "o-2", "10.0.0.2", "UP", 1000))
	future := strconv.FormatInt(time.Now().Add(24*time.Hour).UnixMilli(), 10)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	body := `{"replicationList":[` +
		`{"appName":"ORDERS","id":"o-1","action":"StatusUpdate","status":"OUT_OF_SERVICE","lastDirtyTimestamp":1000,"statusVersion":` + future + `},` +
		`{"appName":"ORDERS","id":"o-2","action":"StatusUpdate","status":"OUT_OF_SERVICE","lastDirtyTimestamp":1000,"statusVersion":` + now + `}]}`
	r := n.do(t, "POST", "/peerreplication/batch", body, "Content-Type", "application/json")
	wantCode(t, "batch", r, http.StatusOK)
	if !strings.Contains(string(r.body), `"statusCode":400`) || !strings.Contains(string(r.body), `"statusCode":200`) {
		t.Fatalf("answers %s, want 400 then 200", r.body)
	}
	if got, _ := n.reg.Instance("ORDERS", "o-1"); got.Status != registry.StatusUp || got.StatusVersion != 0 {
		t.Fatalf("a status version from the future applied: %s, version %d", got.Status, got.StatusVersion)
	}
	if got, _ := n.reg.Instance("ORDERS", "o-2"); got.Status != registry.StatusOutOfService {
		t.Fatalf("the other item of the batch was not applied: %s", got.Status)
	}
}
