package node

import (
	"math"
	"testing"

	"github.com/heraldhq/herald/core/replication"
)

func TestQuantile(t *testing.T) {
	h := replication.Histogram{Bounds: []float64{0.001, 0.01, 0.1, 1}}
	if got := quantile(h, 0.99); got != 0 {
		t.Errorf("empty histogram: p99 = %v, want 0", got)
	}
	// 90 sends up to 1 ms, 9 up to 10 ms, 1 up to 100 ms.
	h.Cumulative, h.Count = []uint64{90, 99, 100, 100}, 100
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001 * 50 / 90},
		{0.9, 0.001},
		{0.99, 0.01},
		{0.995, 0.01 + 0.09*0.5},
		{1, 0.1},
	} {
		if got := quantile(h, c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	// Beyond the highest bound: that bound.
	h.Cumulative, h.Count = []uint64{0, 0, 0, 1}, 3
	if got := quantile(h, 0.99); got != 1 {
		t.Errorf("p99 beyond the buckets = %v, want 1", got)
	}
}
