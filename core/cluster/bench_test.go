package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/heraldhq/herald/core/registry"
)

// BenchmarkAntiEntropyRoundInSync measures one exchange between two nodes holding the same 10k
// instances (100 apps of 100): it should be one small request, whatever the registry's size.
func BenchmarkAntiEntropyRoundInSync(b *testing.B) {
	clock := newFakeClock()
	nodes := startNodes(b, 2, clock, nil)
	ctx := context.Background()
	for app := range 100 {
		for i := range 100 {
			inst := testInstance(fmt.Sprintf("APP%03d", app), fmt.Sprintf("i-%03d-%03d", app, i), 1000, registry.StatusUp)
			for _, n := range nodes {
				if err := n.reg.Register(ctx, inst.Clone(), registry.FromPeer); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// Node 1 asks node 0.
	asker, answerer := nodes[1], nodes[0]
	target := asker.c.peers.List()[0]
	answerer.hits.reset()
	b.ReportAllocs()
	b.ResetTimer()
	ops := 0
	for b.Loop() {
		ops++
		res, err := asker.c.ae.exchange(ctx, target)
		if err != nil {
			b.Fatal(err)
		}
		if !res.same {
			b.Fatal("registries differ")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(answerer.hits.total())/float64(ops), "requests/op")
}
