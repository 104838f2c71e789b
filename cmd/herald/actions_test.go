package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/node"
	"github.com/heraldhq/herald/sdk"
)

// notes is an action handler that declares a custom action, "Note": on a client's registration it
// replicates a note about it to every peer, and on a peer it applies notes by keeping them. It
// refuses registrations of the app FORBIDDEN.
type notes struct {
	sdk.UnimplementedActionHandler
	host sdk.Host
	mu   sync.Mutex
	got  []string
}

func (n *notes) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true}, {Action: "Note", Receive: sdk.ReceiveApply}}
}

func (n *notes) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	n.host = req.Host
	return nil
}

func (n *notes) Accept(ctx context.Context, it sdk.Item) (sdk.Item, error) {
	if it.App == "FORBIDDEN" {
		return it, sdk.Refuse(422, "app %s may not register here", it.App)
	}
	err := n.host.Replicate(ctx, []sdk.Item{{Action: "Note", App: it.App, ID: it.ID, Payload: []byte("registered " + it.ID)}})
	return it, err
}

func (n *notes) Receive(_ context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]sdk.ItemResult, len(req.Items))
	for i, it := range req.Items {
		n.got = append(n.got, it.App+"/"+it.ID+": "+string(it.Payload))
		out[i].StatusCode = 200
	}
	return out, nil
}

// A handler's custom action travels through the replication pipeline and the http transport to
// the peer, where the handler that declares it applies it; an Accept refusal is the client's answer
// and nothing of it is replicated.
func TestCustomActionAndAdmission(t *testing.T) {
	var mu sync.Mutex
	var made []*notes
	builtins[sdk.KindActionHandler]["test-notes"] = func() any {
		mu.Lock()
		defer mu.Unlock()
		n := &notes{}
		made = append(made, n)
		return n
	}
	defer delete(builtins[sdk.KindActionHandler], "test-notes")
	nodes, _ := tracedPair(t, "replication.action_handlers=eureka,test-notes")
	a, b := &e2e.Node{Name: "a", Port: portOf(nodes[0])}, nodes[1]
	if len(made) != 2 {
		t.Fatalf("%d handlers made, want one per node", len(made))
	}
	onB := made[1]

	register(t, a, "NOTED", "n1", 1000, nil)
	e2e.Eventually(t, 10*time.Second, func() error {
		onB.mu.Lock()
		defer onB.mu.Unlock()
		if len(onB.got) != 1 || onB.got[0] != "NOTED/n1: registered n1" {
			return fmt.Errorf("notes on B: %q", onB.got)
		}
		return nil
	})
	// The register follows the note in a batch of its own: the pipeline sends an instance's next
	// task only once the batch carrying its previous one is answered.
	e2e.Eventually(t, 10*time.Second, func() error {
		if _, ok := b.Registry().Instance("NOTED", "n1"); !ok {
			return fmt.Errorf("the registration itself did not reach B")
		}
		return nil
	})

	acceptedBefore := acceptedIn(nodes[0])
	code, body := do(t, "POST", a.URL()+"apps/FORBIDDEN", e2e.InstanceJSON("FORBIDDEN", "f1", 1000, "UP", nil), nil)
	if code != 422 || !strings.Contains(string(body), "app FORBIDDEN may not register here") {
		t.Fatalf("refused registration answered %d %q", code, body)
	}
	// A hands writes to its pipeline before it answers: a refused one left nothing to send.
	if got := acceptedIn(nodes[0]) - acceptedBefore; got != 0 {
		t.Errorf("%d tasks accepted for replication for a refused registration", got)
	}
	if _, ok := b.Registry().Instance("FORBIDDEN", "f1"); ok {
		t.Error("a refused registration was replicated")
	}
	if _, ok := nodes[0].Registry().Instance("FORBIDDEN", "f1"); ok {
		t.Error("a refused registration was applied")
	}
}

// acceptedIn counts the tasks an in-process node has accepted for replication, over all peers.
func acceptedIn(n *node.Node) int64 {
	var sum int64
	for _, s := range n.Replicator().Stats() {
		sum += s.Accepted
	}
	return sum
}
