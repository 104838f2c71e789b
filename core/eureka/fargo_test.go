package eureka_test

// Compatibility with github.com/hudl/fargo, a real Go Eureka client, in its JSON and XML modes.
// fargo has no delta call and no override removal: those two go over plain HTTP and the answers
// are decoded with fargo's own types.

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"testing"

	"github.com/hudl/fargo"
	logging "github.com/op/go-logging"
)

func init() {
	// fargo logs every request at NOTICE; keep test output readable.
	logging.SetLevel(logging.CRITICAL, "fargo")
}

func TestFargoCompatibility(t *testing.T) {
	modes := []struct {
		name string
		base string
		json bool
	}{
		{"json v2", "/eureka/v2", true},
		{"xml v2", "/eureka/v2", false},
		{"json spring prefix", "/eureka", true},
		{"xml spring prefix", "/eureka", false},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			n := newNode(t, nodeConfig{base: m.base})
			conn := fargo.NewConn(n.srv.URL + m.base)
			conn.UseJson = m.json
			accept := "application/xml"
			if m.json {
				accept = "application/json"
			}

			ins := &fargo.Instance{
				InstanceId:       "fargo-1",
				HostName:         "host-f1",
				App:              "FARGO",
				IPAddr:           "10.0.0.1",
				VipAddress:       "fargo",
				SecureVipAddress: "fargo-secure",
				Status:           fargo.UP,
				Port:             8080,
				PortEnabled:      true,
				SecurePort:       8443,
				HomePageUrl:      "http://host-f1:8080/",
				DataCenterInfo:   fargo.DataCenterInfo{Name: fargo.MyOwn},
				LeaseInfo:        fargo.LeaseInfo{RenewalIntervalInSecs: 30, DurationInSecs: 90},
			}
			ins.SetMetadataString("zone", "z1")

			// RegisterInstance checks for the instance first (404), posts it (204) and reads it back.
			if err := conn.RegisterInstance(ins); err != nil {
				t.Fatalf("RegisterInstance: %v", err)
			}
			if ins.Port != 8080 || !ins.PortEnabled || ins.Status != fargo.UP || ins.LeaseInfo.RegistrationTimestamp == 0 {
				t.Errorf("read-back instance: port %d enabled %v status %s registered %d",
					ins.Port, ins.PortEnabled, ins.Status, ins.LeaseInfo.RegistrationTimestamp)
			}

			app, err := conn.GetApp("FARGO")
			if err != nil {
				t.Fatalf("GetApp: %v", err)
			}
			if app.Name != "FARGO" || len(app.Instances) != 1 {
				t.Fatalf("GetApp = %s with %d instances", app.Name, len(app.Instances))
			}
			got := app.Instances[0]
			if got.Id() != "fargo-1" || got.IPAddr != "10.0.0.1" || got.SecurePort != 8443 || got.SecurePortEnabled {
				t.Errorf("instance: id %s ip %s secure port %d enabled %v", got.Id(), got.IPAddr, got.SecurePort, got.SecurePortEnabled)
			}
			if z, err := got.Metadata.GetString("zone"); err != nil || z != "z1" {
				t.Errorf("metadata zone = %q, %v", z, err)
			}

			apps, err := conn.GetApps()
			if err != nil {
				t.Fatalf("GetApps: %v", err)
			}
			if a := apps["FARGO"]; a == nil || len(a.Instances) != 1 {
				t.Errorf("GetApps = %v", apps)
			}

			vip, err := conn.GetInstancesByVIPAddress("fargo", false)
			if err != nil || len(vip) != 1 {
				t.Errorf("GetInstancesByVIPAddress = %d instances, %v", len(vip), err)
			}
			svip, err := conn.GetInstancesByVIPAddress("fargo-secure", true)
			if err != nil || len(svip) != 1 {
				t.Errorf("GetInstancesByVIPAddress secure = %d instances, %v", len(svip), err)
			}

			if err := conn.HeartBeatInstance(ins); err != nil {
				t.Errorf("HeartBeatInstance: %v", err)
			}

			if err := conn.UpdateInstanceStatus(ins, fargo.OUTOFSERVICE); err != nil {
				t.Fatalf("UpdateInstanceStatus: %v", err)
			}
			cur, err := conn.GetInstance("FARGO", "fargo-1")
			if err != nil {
				t.Fatalf("GetInstance: %v", err)
			}
			if cur.Status != fargo.OUTOFSERVICE {
				t.Errorf("status after override = %s", cur.Status)
			}
			if !m.json && cur.Overriddenstatus != fargo.OUTOFSERVICE {
				// fargo's JSON tag is "overriddenstatus" while Eureka writes "overriddenStatus" in
				// JSON, so only the XML mode can see the field.
				t.Errorf("overriddenstatus after override = %s", cur.Overriddenstatus)
			}

			r := n.do(t, "DELETE", "/apps/FARGO/fargo-1/status?value=UP", "")
			wantCode(t, "remove override", r, 200)
			if cur, err = conn.GetInstance("FARGO", "fargo-1"); err != nil || cur.Status != fargo.UP {
				t.Errorf("after override removal: %v, %v", cur, err)
			}

			if err := conn.AddMetadataString(ins, "team", "blue"); err != nil {
				t.Fatalf("AddMetadataString: %v", err)
			}
			cur, err = conn.GetInstance("FARGO", "fargo-1")
			if err != nil {
				t.Fatalf("GetInstance: %v", err)
			}
			if v, err := cur.Metadata.GetString("team"); err != nil || v != "blue" {
				t.Errorf("metadata team = %q, %v", v, err)
			}

			delta := fargoDelta(t, n, accept, m.json)
			if len(delta.Applications) != 1 || delta.Applications[0].Name != "FARGO" || len(delta.Applications[0].Instances) != 1 {
				t.Fatalf("delta = %+v", delta)
			}
			if delta.AppsHashcode != "UP_1_" {
				t.Errorf("delta apps__hashcode = %q", delta.AppsHashcode)
			}

			if err := conn.DeregisterInstance(ins); err != nil {
				t.Fatalf("DeregisterInstance: %v", err)
			}
			var notFound fargo.AppNotFoundError
			if _, err := conn.GetApp("FARGO"); !errors.As(err, &notFound) {
				t.Errorf("GetApp after deregister: %v, want AppNotFoundError", err)
			}
			if err := conn.HeartBeatInstance(ins); err == nil {
				t.Errorf("HeartBeatInstance after deregister succeeded")
			}
			if code, ok := fargo.HTTPResponseStatusCode(conn.HeartBeatInstance(ins)); !ok || code != http.StatusNotFound {
				t.Errorf("heartbeat after deregister: code %d, want 404", code)
			}
		})
	}
}

// fargoDelta fetches /apps/delta and decodes it with fargo's own document types.
func fargoDelta(t *testing.T, n *testNode, accept string, asJSON bool) *fargo.GetAppsResponse {
	t.Helper()
	r := n.do(t, "GET", "/apps/delta", "", "Accept", accept)
	wantCode(t, "delta", r, 200)
	if asJSON {
		var d fargo.GetAppsResponseJson
		if err := json.Unmarshal(r.body, &d); err != nil || d.Response == nil {
			t.Fatalf("decoding JSON delta with fargo: %v\n%s", err, r.body)
		}
		return d.Response
	}
	var d fargo.GetAppsResponse
	if err := xml.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("decoding XML delta with fargo: %v\n%s", err, r.body)
	}
	return &d
}
