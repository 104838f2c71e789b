package plugintest

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// CustomAction is the custom action the suites put in batches, as an action handler's own action
// would travel: with a Payload and no Instance.
const CustomAction sdk.Action = "plugintest.Note"

// Instance returns a valid bare Eureka InstanceInfo JSON object for app and id, as Register items
// carry it (metadata: owner team-a, zone eu-1).
func Instance(app, id string) []byte {
	return []byte(fmt.Sprintf(`{"instanceId":%q,"hostName":"%s.example.internal","app":%q,"ipAddr":"10.0.0.7",`+
		`"status":"UP","overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},`+
		`"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"metadata":{"owner":"team-a","zone":"eu-1"},`+
		`"vipAddress":%q,"lastUpdatedTimestamp":"1700000000000","lastDirtyTimestamp":"1700000000000","actionType":"ADDED"}`,
		id, id, app, app))
}

// Item returns a typical item of action a on app/id, as herald replicates it: a Register carries
// its Instance, a custom action a Payload, every item a traceparent.
func Item(a sdk.Action, app, id string) sdk.Item {
	it := sdk.Item{Action: a, App: app, ID: id, LastDirtyTimestamp: 1700000000000,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	switch a {
	case sdk.ActionRegister:
		it.Status, it.OverriddenStatus, it.Instance = "UP", "UNKNOWN", Instance(app, id)
	case sdk.ActionHeartbeat:
		it.Status = "UP"
	case sdk.ActionCancel:
		it.LastDirtyTimestamp = 0
	case sdk.ActionStatusUpdate:
		it.Status = "OUT_OF_SERVICE"
	case sdk.ActionDeleteStatusOverride:
		it.Status = "UP"
	default:
		it.Payload = []byte(fmt.Sprintf(`{"note":"plugintest","id":%q}`, id))
	}
	return it
}

// BuiltinActions are Eureka's five actions, in the order Batch cycles through them.
var BuiltinActions = []sdk.Action{sdk.ActionRegister, sdk.ActionHeartbeat, sdk.ActionStatusUpdate,
	sdk.ActionDeleteStatusOverride, sdk.ActionCancel}

// Batch returns a batch of n items of application PLUGINTEST cycling through the five actions,
// with ids i-0, i-1, …
func Batch(id string, n int) sdk.Batch {
	b := sdk.Batch{ID: id, Items: make([]sdk.Item, 0, n)}
	for i := 0; i < n; i++ {
		b.Items = append(b.Items, Item(BuiltinActions[i%len(BuiltinActions)], "PLUGINTEST", fmt.Sprintf("i-%d", i)))
	}
	return b
}

// ClosedAddr returns a TCP address on 127.0.0.1 that nothing listens on: a peer that is down.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SilentAddr returns the TCP address of a listener that accepts connections, reads what it is
// sent and never answers: a peer that hangs. It stops when the test ends.
func SilentAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("plugintest: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
