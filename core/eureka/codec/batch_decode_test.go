package codec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/core/registry"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
	"github.com/heraldhq/herald/sdk/eurekawire/exactjson"
)

// decodeInstanceBareStd is DecodeInstanceBare as it was before it decoded in one pass: the
// reference the one-pass decoders are compared with.
func decodeInstanceBareStd(data []byte) (*registry.Instance, error) {
	var j jsonInstance
	if err := json.Unmarshal(exactjson.Exact(data, instanceSchema), &j); err != nil {
		return nil, parseErr("%v", err)
	}
	return j.model()
}

// sameInstance checks DecodeInstanceBare against decodeInstanceBareStd.
func sameInstance(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := decodeInstanceBareStd(data)
	got, err := DecodeInstanceBare(data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("instance %q: one-pass error %v, encoding/json error %v", data, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("instance %q:\n got %+v\nwant %+v", data, got, want)
	}
}

// sameAsTwoPasses checks DecodeReplicationList against the two-pass path it replaces:
// eurekawire.DecodeReplicationList (encoding/json), then DecodeInstanceBare on each item's
// instanceInfo. Both must accept and refuse the same documents, return the same items, and
// decode (or refuse) every instance alike. It reports whether the document was accepted.
func sameAsTwoPasses(t *testing.T, data []byte) bool {
	t.Helper()
	want, wantErr := eurekawire.DecodeReplicationList(data)
	got, err := DecodeReplicationList(data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("document %q: one-pass error %v, two-pass error %v", data, err, wantErr)
	}
	if err != nil {
		return false
	}
	if len(got.Items) != len(want) || len(got.Decoded) != len(want) {
		t.Fatalf("document %q: %d items (%d decoded), want %d", data, len(got.Items), len(got.Decoded), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got.Items[i], want[i]) {
			t.Fatalf("document %q item %d:\n got %+v\nwant %+v", data, i, got.Items[i], want[i])
		}
		d := got.Decoded[i]
		if len(want[i].Instance) == 0 {
			if d != (DecodedInstance{}) {
				t.Fatalf("document %q item %d: decoded an instance that is not there: %+v", data, i, d)
			}
			continue
		}
		inst, ierr := decodeInstanceBareStd(want[i].Instance)
		if (ierr == nil) != (d.Err == nil) {
			t.Fatalf("document %q item %d: one-pass instance error %v, two-pass %v", data, i, d.Err, ierr)
		}
		if !reflect.DeepEqual(inst, d.Instance) {
			t.Fatalf("document %q item %d instance:\n got %+v\nwant %+v", data, i, d.Instance, inst)
		}
	}
	return true
}

// realisticBatch is what a herald node sends: registrations carrying full instances, heartbeats,
// status changes, with the herald extensions.
func realisticBatch(n int) []byte {
	items := make([]sdk.Item, 0, n)
	for i := 0; i < n; i++ {
		id := "host-" + strconv.Itoa(i) + ":demo:8080"
		switch i % 4 {
		case 0, 1:
			inst := strings.Replace(golden171[len(`{"instance":`):len(golden171)-1], "host-a:demo:8080", id, 1)
			items = append(items, sdk.Item{Action: sdk.ActionRegister, App: "DEMO", ID: id, LastDirtyTimestamp: 1700000000000 + int64(i),
				Status: "UP", OverriddenStatus: "UNKNOWN", Instance: []byte(inst),
				TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
		case 2:
			items = append(items, sdk.Item{Action: sdk.ActionHeartbeat, App: "DEMO", ID: id, LastDirtyTimestamp: 1700000000000, Status: "UP"})
		default:
			items = append(items, sdk.Item{Action: sdk.ActionStatusUpdate, App: "DEMO", ID: id, LastDirtyTimestamp: 1700000000000,
				Status: "OUT_OF_SERVICE", StatusVersion: int64(i)})
		}
	}
	return eurekawire.AppendReplicationList(nil, items)
}

// batchCorpus are documents at the edges of what encoding/json and Jackson's exact names accept.
var batchCorpus = []string{
	``, ` `, `null`, `[]`, `{}`, `"x"`, `1`, `{"replicationList":null}`, `{"replicationList":[]}`,
	`{"replicationList":[]} x`, `{"replicationList":[],}`, `{"replicationList":[,]}`, `{"replicationList":{}}`,
	`{"replicationList":"x"}`, `{"replicationList":[null]}`, `{"replicationList":[1]}`, `{"replicationList":[[]]}`,
	`{"ReplicationList":[{"appName":"A"}]}`, `{"replicationList":[{"APPNAME":"A","appName":"B","appname":"C"}]}`,
	`{"replicationList":[{"app\u004eame":"A","id":"\u00e9\ud800x","action":"Register"}]}`,
	`{"replicationList":[{"appName":5}]}`, `{"replicationList":[{"appName":null,"id":null}]}`,
	`{"replicationList":[{"appName":"A"}],"replicationList":[{"id":"2"},{"id":"3"}]}`,
	`{"replicationList":[{"appName":"A"},{"appName":"B"}],"replicationList":[{"id":"2"}],"replicationList":[{},{}]}`,
	`{"replicationList":[{"appName":"A"}],"replicationList":null,"replicationList":[{"id":"2"}]}`,
	`{"replicationList":[{"appName":"A"}],"replicationList":[]}`,
	`{"replicationList":[{"lastDirtyTimestamp":"12","statusVersion":"\"7\""}]}`,
	`{"replicationList":[{"lastDirtyTimestamp":"","statusVersion":"null"}]}`,
	`{"replicationList":[{"lastDirtyTimestamp":1.5}]}`, `{"replicationList":[{"lastDirtyTimestamp":1e3}]}`,
	`{"replicationList":[{"lastDirtyTimestamp":-0,"statusVersion":99999999999999999999}]}`,
	`{"replicationList":[{"lastDirtyTimestamp":{}}]}`, `{"replicationList":[{"lastDirtyTimestamp":"+5"}]}`,
	`{"replicationList":[{"lastDirtyTimestamp":01}]}`, `{"replicationList":[{"lastDirtyTimestamp":1.}]}`,
	`{"replicationList":[{"payload":"aGVsbG8="},{"payload":""},{"payload":[1,2,255]},{"payload":null}]}`,
	`{"replicationList":[{"payload":"!!"}]}`, `{"replicationList":[{"payload":[256]}]}`,
	`{"replicationList":[{"payload":"aGVs\nbG8="}]}`, `{"replicationList":[{"payload":"aGVs\\nbG8="}]}`,
	`{"replicationList":[{"instanceInfo":null},{"instanceInfo":5},{"instanceInfo":"x"},{"instanceInfo":[]},{"instanceInfo":{}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a"},"instanceInfo":null}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":{"$":1,"@enabled":"false"},"port":8080}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":{"$":1,"@ENABLED":"false"},"securePort":{"@enabled":true}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":{"$":null},"securePort":"443"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":" ","securePort":[1]}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":70000}},{"instanceInfo":{"app":"a","port":-1}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","port":8080.0,"countryId":"2","lastDirtyTimestamp":"1.5"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","countryId":"null","lastUpdatedTimestamp":" 5 "}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","isCoordinatingDiscoveryServer":"TRUE"}},{"instanceInfo":{"app":"a","isCoordinatingDiscoveryServer":1}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":null}},{"instanceInfo":{"app":"a","app":null}},{"instanceInfo":{"APP":"a"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","hostName":5}},{"instanceInfo":{"app":"a","hostName":null,"HOSTNAME":"x"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","metadata":{"a":{},"a":"x","b":1.50,"c":null,"d":true,"@class":[]}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","metadata":{"a":"x","a":[]}}},{"instanceInfo":{"app":"a","metadata":[]}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","metadata":{"\u0040class":"x","k\u00e9":"\ud800","instanceId":"i"},"metadata":null}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","metadata":{"x":"1"},"metadata":{}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","dataCenterInfo":{"name":"A"},"dataCenterInfo":{"@class":"c","metadata":{"m":"1"}}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","dataCenterInfo":{"name":null,"NAME":"x"}}},{"instanceInfo":{"app":"a","dataCenterInfo":5}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","dataCenterInfo":null}},{"instanceInfo":{"app":"a","dataCenterInfo":{"@class":1}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","leaseInfo":{"renewalTimestamp":5,"durationInSecs":-1}}},{"instanceInfo":{"app":"a","leaseInfo":[]}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","leaseInfo":{"lastRenewalTimestamp":null,"renewalTimestamp":5,"RENEWALINTERVALINSECS":5}}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","statusVersion":"5"}},{"instanceInfo":{"app":"a","statusVersion":99999999999999999999}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","overriddenstatus":"DOWN"}},{"instanceInfo":{"app":"a","overriddenStatus":"up","overriddenstatus":"DOWN"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","status":"bogus","actionType":"added","appGroupName":"g"}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","x":[{"y":[1,2,{"z":null}]},-1.5e-3,true,false]}}]}`,
	`{"replicationList":[{"instanceInfo":{"app":"a","hostName":"h\u0000"}}]}`, "{\"replicationList\":[{\"appName\":\"a\x01\"}]}",
	"{\"replicationList\":[{\"appName\":\"a\xff\xfe\"}]}", `{"replicationList":[{"appName":"a\q"}]}`, `{"replicationList":[{"appName":"\u12"}]}`,
	`{"replicationList":[{"x":tru}]}`, `{"replicationList":[{"x":nul}]}`, `{"replicationList":[{"x":-}]}`, `{"replicationList":[{"x":.5}]}`,
	`{"replicationList":[{"x":1}`, `{"replicationList":[{"x" 1}]}`, `{"replicationList":[{1:1}]}`, `{"replicationList":[{"x":1,}]}`,
}

func TestDecodeReplicationListMatchesTwoPasses(t *testing.T) {
	accepted := 0
	for _, doc := range append(batchCorpus, string(realisticBatch(1)), string(realisticBatch(50))) {
		if sameAsTwoPasses(t, []byte(doc)) {
			accepted++
		}
	}
	if accepted < 20 {
		t.Fatalf("only %d documents of the corpus accepted: the comparison says little", accepted)
	}
	// A realistic batch decodes its registrations' instances.
	b, err := DecodeReplicationList(realisticBatch(4))
	if err != nil {
		t.Fatal(err)
	}
	if b.Decoded[0].Instance == nil || b.Decoded[0].Instance.HostName != "host-a" || b.Decoded[2].Instance != nil {
		t.Fatalf("decoded %+v", b.Decoded)
	}
}

func TestDecodeReplicationListDepth(t *testing.T) {
	// encoding/json refuses a document nested deeper than 10000; the limit counts from the top.
	for depth, ok := range map[int]bool{9997: true, 9998: false} {
		doc := `{"replicationList":[{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}]}`
		if sameAsTwoPasses(t, []byte(doc)) != ok {
			t.Fatalf("depth %d: accepted %v", depth+3, !ok)
		}
	}
	inst := func(n int) []byte {
		return []byte(`{"replicationList":[{"instanceInfo":{"app":"a","x":` + strings.Repeat(`{"y":`, n) + `1` + strings.Repeat("}", n) + `}}]}`)
	}
	if !sameAsTwoPasses(t, inst(9996)) {
		t.Fatal("an instance nested 10000 deep in the batch is refused")
	}
	if sameAsTwoPasses(t, inst(9997)) {
		t.Fatal("an instance nested 10001 deep in the batch is accepted")
	}
}

func FuzzDecodeReplicationListOnePass(f *testing.F) {
	for _, doc := range batchCorpus {
		f.Add([]byte(doc))
	}
	f.Add(realisticBatch(3))
	fuzzAlike(f, func(t *testing.T, data []byte) { sameAsTwoPasses(t, data) })
}

// fuzzAlike runs same, a comparison of the one-pass decoder with encoding/json, on each input up
// to 64 KiB and on its prefix up to the last comma: a truncated body is refused alike too.
func fuzzAlike(f *testing.F, same func(t *testing.T, data []byte)) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		same(t, data)
		if i := bytes.LastIndexByte(data, ','); i > 0 {
			same(t, data[:i])
		}
	})
}

// Every instanceInfo of the corpus, alone, decodes with DecodeInstanceBare as with encoding/json.
func TestDecodeInstanceBareMatchesEncodingJSON(t *testing.T) {
	docs := []string{golden171[len(`{"instance":`) : len(golden171)-1], ``, `null`, `{}`, `{"app":"a"} x`, ` {"app":"a"} `, `[{"app":"a"}]`}
	docs = append(docs, corpusInstances()...)
	for _, doc := range docs {
		sameInstance(t, []byte(doc))
	}
}

// corpusInstances returns the instanceInfo of every item of the batch corpus that encoding/json
// reads.
func corpusInstances() []string {
	var out []string
	for _, doc := range batchCorpus {
		items, err := eurekawire.DecodeReplicationList([]byte(doc))
		if err != nil {
			continue
		}
		for _, it := range items {
			if len(it.Instance) > 0 {
				out = append(out, string(it.Instance))
			}
		}
	}
	return out
}

func FuzzDecodeInstanceBareOnePass(f *testing.F) {
	f.Add([]byte(golden171[len(`{"instance":`) : len(golden171)-1]))
	f.Add([]byte(`{"app":"a","port":{"$":1,"@ENABLED":"false"},"metadata":{"a":{},"a":"x"},"leaseInfo":{"renewalTimestamp":5}}`))
	f.Add([]byte(`{"app":"a","dataCenterInfo":{"name":"A"},"dataCenterInfo":{"@class":"c"},"statusVersion":"5","HOSTNAME":"x"}`))
	fuzzAlike(f, sameInstance)
}

// BenchmarkDecodeReplicationList decodes a batch of 25 items (half of them registrations with a
// full instance) and every registration's instance: twoPass as the batch endpoint did before
// (encoding/json for the list, then again for each instance), onePass with DecodeReplicationList.
func BenchmarkDecodeReplicationList(b *testing.B) {
	doc := realisticBatch(25)
	b.Run("twoPass", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			items, err := eurekawire.DecodeReplicationList(doc)
			if err != nil {
				b.Fatal(err)
			}
			for i := range items {
				if items[i].Action == sdk.ActionRegister {
					if _, err := decodeInstanceBareStd(items[i].Instance); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
	b.Run("onePass", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeReplicationList(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
