package sdk

import (
	"errors"
	"testing"
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
