package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// randomLatencies spreads values log-uniformly from 1 µs to 60 s, plus a cluster of sub-µs ones.
func randomLatencies(rng *rand.Rand, n int) []time.Duration {
	out := make([]time.Duration, n)
	lo, hi := math.Log(1e3), math.Log(60e9)
	for i := range out {
		if i%50 == 0 {
			out[i] = time.Duration(rng.IntN(1000))
			continue
		}
		out[i] = time.Duration(math.Exp(lo + rng.Float64()*(hi-lo)))
	}
	return out
}

// reference is the q-quantile of sorted values by the same definition as Quantile: the smallest
// value with at least q of the values at or below it.
func reference(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(1, min(rank, len(sorted)))-1]
}

var quantiles = []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

func checkQuantiles(t *testing.T, h *Histogram, sorted []time.Duration) {
	t.Helper()
	for _, q := range quantiles {
		got, want := h.Quantile(q), reference(sorted, q)
		if rel := math.Abs(float64(got-want)) / float64(want); want > 0 && rel > MaxRelativeError {
			t.Errorf("q=%v: got %v, want %v (relative error %.4f > %.4f)", q, got, want, rel, MaxRelativeError)
		}
		if want == 0 && got != 0 {
			t.Errorf("q=%v: got %v, want 0", q, got)
		}
	}
}

func TestHistogramQuantilesMatchSortedReference(t *testing.T) {
	if MaxRelativeError > 0.01 {
		t.Fatalf("MaxRelativeError %v above the promised 1%%", MaxRelativeError)
	}
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 42))
		vals := randomLatencies(rng, 20000+int(seed)*7919)
		h := NewHistogram()
		var sum float64
		for _, v := range vals {
			h.Record(v)
			sum += float64(v)
		}
		slices.Sort(vals)
		checkQuantiles(t, h, vals)
		if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
			t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
		}
		if mean := sum / float64(len(vals)); math.Abs(float64(h.Mean())-mean) > 1 {
			t.Errorf("mean %v, want %v", h.Mean(), time.Duration(mean))
		}
		if h.Count() != uint64(len(vals)) {
			t.Errorf("count %d, want %d", h.Count(), len(vals))
		}
	}
}

// A narrow distribution (typical loopback latencies: 100 µs to 2 ms) exercises neighbouring
// buckets rather than the spread.
func TestHistogramNarrowDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	vals := make([]time.Duration, 50000)
	for i := range vals {
		vals[i] = 100*time.Microsecond + time.Duration(rng.ExpFloat64()*float64(300*time.Microsecond))
	}
	h := NewHistogram()
	for _, v := range vals {
		h.Record(v)
	}
	slices.Sort(vals)
	checkQuantiles(t, h, vals)
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := randomLatencies(rng, 40000)
	whole := NewHistogram()
	parts := []*Histogram{NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram()}
	// Record from concurrent goroutines, one histogram each, as the workers do.
	var wg sync.WaitGroup
	for p, h := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(vals); i += len(parts) {
				h.Record(vals[i])
			}
		}()
	}
	for _, v := range vals {
		whole.Record(v)
	}
	wg.Wait()
	merged := NewHistogram()
	merged.Merge(NewHistogram()) // merging an empty one changes nothing
	merged.Merge(nil)
	for _, h := range parts {
		merged.Merge(h)
	}
	if merged.counts != whole.counts || merged.Count() != whole.Count() || merged.Max() != whole.Max() || merged.Min() != whole.Min() {
		t.Fatal("merged histogram differs from the one that saw every value")
	}
	slices.Sort(vals)
	checkQuantiles(t, merged, vals)
}

func TestHistogramBucketsTile(t *testing.T) {
	// Every bucket starts where the previous one ended, and maps back to itself at both ends.
	next := int64(0)
	for b := range numBuckets {
		lo, width := bucketRange(b)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", b, lo, next)
		}
		if bucketOf(lo) != b || bucketOf(lo+width-1) != b {
			t.Fatalf("bucket %d [%d, %d) does not map back to itself", b, lo, lo+width)
		}
		if lo >= exactBelow && float64(width)/2/float64(lo) > MaxRelativeError {
			t.Fatalf("bucket %d too wide: %d at %d", b, width, lo)
		}
		next = lo + width
	}
	if next != maxValue+1 {
		t.Fatalf("buckets end at %d, want %d", next, maxValue+1)
	}
	if bucketOf(math.MaxInt64) != numBuckets-1 {
		t.Fatal("values above the range are not clamped to the top bucket")
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-time.Second) // clock step: counts as zero
	h.Record(2 * time.Minute)
	if h.Max() != 2*time.Minute || h.Quantile(1) != 2*time.Minute {
		t.Fatalf("max %v, p100 %v: a value above the range keeps its exact max", h.Max(), h.Quantile(1))
	}
	if h.Quantile(0.5) != 0 {
		t.Fatalf("p50 %v, want 0", h.Quantile(0.5))
	}
}
