package plugintest

import (
	"fmt"

	"github.com/heraldhq/herald/sdk"
)

// Instance returns a valid bare Eureka InstanceInfo JSON object for app and id, as Register items
// carry it.
func Instance(app, id string) []byte {
	return []byte(fmt.Sprintf(`{"instanceId":%q,"hostName":"%s.example.internal","app":%q,"ipAddr":"10.0.0.7",`+
		`"status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},`+
		`"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":{"owner":"team-a","zone":"eu-1"},`+
		`"vipAddress":%q,"lastUpdatedTimestamp":"1700000000000","lastDirtyTimestamp":"1700000000000","actionType":"ADDED"}`,
		id, id, app, app))
}

// Item returns a typical item of action a on app/id (a custom action carries a payload).
func Item(a sdk.Action, app, id string) sdk.Item {
	it := sdk.Item{Action: a, App: app, ID: id, LastDirtyTimestamp: 1700000000000,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	switch a {
	case sdk.ActionRegister:
		it.Status, it.Instance = "UP", Instance(app, id)
	case sdk.ActionHeartbeat:
		it.Status = "UP"
	case sdk.ActionCancel:
		it.LastDirtyTimestamp = 0
	case sdk.ActionStatusUpdate:
		it.Status = "OUT_OF_SERVICE"
	case sdk.ActionDeleteStatusOverride:
		it.Status = "UP"
	default:
		it.Payload = []byte(`{"note":"plugintest"}`)
	}
	return it
}

// Batch returns a batch of n items cycling through the five actions.
func Batch(id string, n int) sdk.Batch {
	actions := []sdk.Action{sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionStatusUpdate, sdk.ActionDeleteStatusOverride, sdk.ActionCancel}
	b := sdk.Batch{ID: id}
	for i := 0; i < n; i++ {
		b.Items = append(b.Items, Item(actions[i%len(actions)], "PLUGINTEST", fmt.Sprintf("i-%d", i/len(actions))))
	}
	return b
}
