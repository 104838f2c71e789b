package eurekawire

import (
	"errors"
	"reflect"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// The reference's 2.4 example, trimmed.
const list24 = `{"replicationList":[
 {"appName":"DEMO","id":"host-a:demo:8080","lastDirtyTimestamp":1700000000000,"status":"UP","instanceInfo":{"instanceId":"host-a:demo:8080","app":"DEMO"},"action":"Register"},
 {"appName":"DEMO","id":"host-b:demo:8080","lastDirtyTimestamp":1700000005000,"overriddenStatus":"OUT_OF_SERVICE","status":"OUT_OF_SERVICE","action":"Heartbeat"},
 {"appName":"DEMO","id":"host-c:demo:8080","action":"Cancel"}
]}`

func TestDecodeEurekaExample(t *testing.T) {
	items, err := DecodeReplicationList([]byte(list24))
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Item{
		{Action: sdk.ActionRegister, App: "DEMO", ID: "host-a:demo:8080", LastDirtyTimestamp: 1700000000000, Status: "UP",
			Instance: []byte(`{"instanceId":"host-a:demo:8080","app":"DEMO"}`)},
		{Action: sdk.ActionHeartbeat, App: "DEMO", ID: "host-b:demo:8080", LastDirtyTimestamp: 1700000005000, Status: "OUT_OF_SERVICE", OverriddenStatus: "OUT_OF_SERVICE"},
		{Action: sdk.ActionCancel, App: "DEMO", ID: "host-c:demo:8080"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("got %+v", items)
	}
}

func TestEncodeFieldOrderAndExtensions(t *testing.T) {
	got := string(AppendReplicationList(nil, []sdk.Item{
		{Action: sdk.ActionRegister, App: "DEMO", ID: "a", LastDirtyTimestamp: 5, Status: "UP", Instance: []byte(`{"app":"DEMO"}`)},
		{Action: "Audit", App: "DEMO", ID: "b", Payload: []byte{1, 2}, TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{Action: sdk.ActionDeleteStatusOverride, App: "DEMO", ID: "c", LastDirtyTimestamp: 7, Status: "UP", StatusVersion: 1700000000123},
	}))
	want := `{"replicationList":[{"appName":"DEMO","id":"a","lastDirtyTimestamp":5,"status":"UP","instanceInfo":{"app":"DEMO"},"action":"Register"},` +
		`{"appName":"DEMO","id":"b","action":"Audit","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","payload":"AQI="},` +
		`{"appName":"DEMO","id":"c","lastDirtyTimestamp":7,"status":"UP","action":"DeleteStatusOverride","statusVersion":1700000000123}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	back, err := DecodeReplicationList([]byte(got))
	if err != nil || len(back) != 3 || string(back[1].Payload) != "\x01\x02" || back[1].TraceParent == "" ||
		back[2].StatusVersion != 1700000000123 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestResponses(t *testing.T) {
	body := AppendReplicationListResponse(nil, []sdk.ItemResult{{StatusCode: 200}, {StatusCode: 409, Entity: []byte(`{"app":"DEMO"}`)}, {StatusCode: 404}})
	if string(body) != `{"responseList":[{"statusCode":200},{"statusCode":409,"responseEntity":{"app":"DEMO"}},{"statusCode":404}]}` {
		t.Fatalf("%s", body)
	}
	res, err := DecodeReplicationListResponse(body)
	if err != nil || len(res) != 3 || res[1].StatusCode != 409 || string(res[1].Entity) != `{"app":"DEMO"}` {
		t.Fatalf("%+v %v", res, err)
	}
	for _, bad := range []string{`{}`, `[`, `{"responseList":[{"statusCode":"x"}]}`} {
		if _, err := DecodeReplicationListResponse([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func FuzzDecodeReplicationList(f *testing.F) {
	f.Add([]byte(list24))
	f.Add([]byte(`{"replicationList":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := DecodeReplicationList(data)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error does not wrap ErrParse: %v", err)
			}
			return
		}
		for i := range items {
			// An instanceInfo that is not an object cannot be re-embedded verbatim; drop it.
			if len(items[i].Instance) > 0 && items[i].Instance[0] != '{' {
				items[i].Instance = nil
			}
		}
		again, err := DecodeReplicationList(AppendReplicationList(nil, items))
		if err != nil || len(again) != len(items) {
			t.Fatalf("re-encoded list does not decode: %v", err)
		}
	})
}

// Jackson matches the batch's field names exactly; a member differing only in case is unknown
// and ignored, where encoding/json alone would let it override the real field.
func TestDecodeFieldNamesAreCaseSensitive(t *testing.T) {
	items, err := DecodeReplicationList([]byte(`{"replicationList":[` +
		`{"appName":"DEMO","APPNAME":"EVIL","id":"a","ID":"evil","action":"Cancel","Action":"Register","lastDirtyTimestamp":5,"LastDirtyTimestamp":9},` +
		`{"APPNAME":"EVIL","Id":"evil","ACTION":"Cancel"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Item{{Action: sdk.ActionCancel, App: "DEMO", ID: "a", LastDirtyTimestamp: 5}, {}}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("got %+v, want %+v", items, want)
	}
	if _, err := DecodeReplicationList([]byte(`{"ReplicationList":[]}`)); !errors.Is(err, ErrParse) {
		t.Fatalf("ReplicationList wrapper: %v, want ErrParse", err)
	}
	res, err := DecodeReplicationListResponse([]byte(`{"responseList":[{"statusCode":200,"StatusCode":500},{"STATUSCODE":500}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].StatusCode != 200 || res[1].StatusCode != 0 {
		t.Fatalf("responses %+v", res)
	}
}
