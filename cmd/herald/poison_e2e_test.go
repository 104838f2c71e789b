package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
)

// A metadata key that is not an XML element name used to be accepted, replicated, and then make
// /eureka/apps, /apps/delta and /vips unreadable as XML on every node. Across three real nodes:
// such input is refused where it enters (a client's registration or metadata update, a peer's
// single write, one item of a peer's batch), and every node's XML reads still parse.
func TestPoisonInputRefusedAndReadsStayXML(t *testing.T) {
	nodes := startCluster(t, 3, "")
	const app = "INTEGRITY"
	ts := time.Now().UnixMilli()
	withKey := func(id, key string) []byte {
		body := e2e.InstanceJSON(app, id, ts, "UP", map[string]string{"placeholder": "v"})
		k, _ := json.Marshal(key)
		return bytes.Replace(body, []byte(`"placeholder"`), k, 1)
	}
	refused := func(what string, code int, body []byte, key string) {
		t.Helper()
		if code != 400 || !strings.Contains(string(body), "metadata key "+fmt.Sprintf("%q", key)) {
			t.Fatalf("%s: %d %q, want 400 naming the key %q", what, code, body, key)
		}
	}

	register(t, nodes[0], app, "good-1", ts, nil)
	visibleOn(t, app, "good-1", nodes...)

	for i, key := range []string{"a×b", "a:b:c", "a\u200bb"} {
		code, b := do(t, "POST", nodes[0].URL()+"apps/"+app, withKey(fmt.Sprintf("bad-%d", i), key), nil)
		refused("register at node0", code, b, key)
		code, b = do(t, "POST", nodes[1].URL()+"apps/"+app, withKey(fmt.Sprintf("bad-r%d", i), key), repl)
		refused("replicated register at node1", code, b, key)
		code, b = do(t, "PUT", nodes[2].URL()+"apps/"+app+"/good-1/metadata?"+url.QueryEscape(key)+"=v", nil, nil)
		refused("metadata update at node2", code, b, key)
	}
	raw := bytes.Replace(e2e.InstanceJSON(app, "bad-utf8", ts, "UP", map[string]string{"placeholder": "v"}), []byte("placeholder"), []byte("a\xffb"), 1)
	if code, b := do(t, "POST", nodes[0].URL()+"apps/"+app, raw, nil); code != 400 || !strings.Contains(string(b), "UTF-8") {
		t.Fatalf("register with a key that is not UTF-8: %d %q, want 400", code, b)
	}

	// One poison item in a peer's batch is refused alone; the good item next to it is applied.
	bare := func(body []byte) string {
		return strings.TrimSuffix(strings.TrimPrefix(string(body), `{"instance":`), "}")
	}
	batch := `{"replicationList":[` +
		`{"appName":"` + app + `","id":"bad-batch","action":"Register","instanceInfo":` + bare(withKey("bad-batch", "x:y")) + `},` +
		`{"appName":"` + app + `","id":"good-batch","action":"Register","instanceInfo":` + bare(withKey("good-batch", "zone")) + `}]}`
	code, b, err := e2e.PeerClient.Do(context.Background(), "POST", nodes[2].URL()+"peerreplication/batch", "application/json", []byte(batch), nil)
	if err != nil || code != 200 || string(b) != `{"responseList":[{"statusCode":400},{"statusCode":200}]}` {
		t.Fatalf("batch at node2: %d %s %v, want 200 with 400 for the poison item", code, b, err)
	}

	// A write after the refused ones goes through the same queues: once it is everywhere, so
	// would anything before it be.
	register(t, nodes[0], app, "good-2", ts, nil)
	visibleOn(t, app, "good-2", nodes...)
	drained(t, nodes...)

	for _, n := range nodes {
		for _, p := range []string{"apps", "apps/delta", "vips/" + strings.ToLower(app)} {
			code, body, err := client.Do(context.Background(), "GET", n.URL()+p, "", nil, map[string]string{"Accept": "application/xml"})
			if err != nil || code != 200 {
				t.Fatalf("GET %s at %s: %d %v", p, n.Name, code, err)
			}
			ids := xmlInstanceIDs(t, n.Name+" "+p, body)
			if p == "apps" && (!ids["good-1"] || !ids["good-2"]) {
				t.Fatalf("GET apps at %s lists %v, want good-1 and good-2", n.Name, ids)
			}
			for id := range ids {
				// good-batch is on node2, and on the others once anti-entropy copies it.
				if id != "good-1" && id != "good-2" && id != "good-batch" {
					t.Fatalf("GET %s at %s lists the refused %s", p, n.Name, id)
				}
			}
		}
	}
	if _, ok, err := instance(t, nodes[2], app, "good-batch"); err != nil || !ok {
		t.Fatalf("good-batch at node2: %v %v", ok, err)
	}
}

// xmlInstanceIDs reads an applications document to its end with encoding/xml's strict parser and
// returns the instance ids it lists.
func xmlInstanceIDs(t *testing.T, what string, doc []byte) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	d := xml.NewDecoder(bytes.NewReader(doc))
	var inID bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return ids
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v\n%s", what, err, doc)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			inID = tk.Name.Local == "instanceId"
		case xml.EndElement:
			inID = false
		case xml.CharData:
			if inID {
				ids[string(tk)] = true
			}
		}
	}
}
