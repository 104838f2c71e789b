package eureka

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/core/eureka/codec"
)

func TestTakeDecodedInstance(t *testing.T) {
	body := []byte(`{"replicationList":[{"appName":"A","id":"i","action":"Register","instanceInfo":{"app":"a","hostName":"h"}},{"appName":"A","id":"j","action":"Heartbeat"}]}`)
	b, err := codec.DecodeReplicationList(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx := withDecodedInstances(context.Background(), b)
	raw := b.Items[0].Instance
	if _, ok := TakeDecodedInstance(ctx, append([]byte(nil), raw...)); ok {
		t.Fatal("equal bytes that are not the decoded ones were taken as decoded")
	}
	if _, ok := TakeDecodedInstance(ctx, raw[:len(raw)-1]); ok {
		t.Fatal("a shorter slice of the decoded bytes was taken as decoded")
	}
	d, ok := TakeDecodedInstance(ctx, raw)
	if !ok || d.Err != nil || d.Instance == nil || d.Instance.HostName != "h" || d.Instance.App != "A" {
		t.Fatalf("decoded %+v %v", d, ok)
	}
	if _, ok := TakeDecodedInstance(ctx, raw); ok {
		t.Fatal("one decoded instance was handed out twice")
	}
	if _, ok := TakeDecodedInstance(context.Background(), raw); ok {
		t.Fatal("decoded instance found without the batch's context")
	}
}
