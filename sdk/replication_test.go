package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"
)

// A failure that already names its class (it crossed the plugin boundary as text) names it once.
func TestSendErrorNamesItsClassOnce(t *testing.T) {
	inner := Fail(Permanent, errors.New("peer p: batch answered 500"))
	outer := Fail(Permanent, errors.New(inner.Error()))
	if got := outer.Error(); got != "permanent: peer p: batch answered 500" {
		t.Fatalf("got %q", got)
	}
	if got := Fail(Congestion, errors.New(inner.Error())).Error(); got != "congestion: permanent: peer p: batch answered 500" {
		t.Fatalf("a different class must still be named: %q", got)
	}
}

// classTransport fails every Send with err.
type classTransport struct{ err error }

func (c classTransport) Send(context.Context, Peer, Batch) ([]ItemResult, error) { return nil, c.err }

// Every failure names its class once, as the transport returns it and as the host sees it on
// the other side of the plugin's gRPC connection (where the class travels as a code and the
// message as text).
func TestFailureClassNamedOnceAcrossThePluginBoundary(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // go-plugin's unix socket
	cases := []struct {
		err   error
		class FailureClass
	}{
		{Fail(Permanent, errors.New("boom")), Permanent},
		{Fail(Permanent, fmt.Errorf("peer p: %w", Fail(Permanent, errors.New("boom")))), Permanent},
		{fmt.Errorf("send: %w", Fail(Congestion, errors.New("busy"))), Congestion},
		{Fail(Transient, fmt.Errorf("dial: %w", Fail(Transient, errors.New("refused")))), Transient},
		{errors.New("plain"), Permanent},
	}
	for _, c := range cases {
		client, server := plugin.TestPluginGRPCConn(t, false, ServedPluginSet(KindTransport, classTransport{c.err}))
		raw, err := client.Dispense(KindTransport)
		if err != nil {
			t.Fatal(err)
		}
		_, got := raw.(Transport).Send(context.Background(), Peer{Name: "p"}, Batch{ID: "b"})
		for _, e := range []error{Fail(ClassOf(c.err), c.err), got} {
			if ClassOf(e) != c.class {
				t.Errorf("%v: class %v, want %v", c.err, ClassOf(e), c.class)
			}
			msg := e.Error()
			for _, class := range []FailureClass{Transient, Congestion, Permanent} {
				want := 0
				if class == c.class {
					want = 1
				}
				if n := strings.Count(msg, class.String()+":"); n != want {
					t.Errorf("%q names %v %d times, want %d", msg, class, n, want)
				}
			}
		}
		// The server first: the client's Close asks the server to stop too (go-plugin's controller),
		// and go-plugin's GRPCServer.Stop is not safe to run twice at once.
		server.Stop()
		client.Close()
	}
}
