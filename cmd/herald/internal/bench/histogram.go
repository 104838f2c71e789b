package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, in the manner of HdrHistogram: values below
// 256 ns are kept exactly, and every power-of-two range above is split into 128 equal buckets, so
// a bucket is never wider than 1/128 of its lower bound. Reporting a bucket's midpoint bounds the
// relative error of a percentile to 1/256 (0.4%) over 1 ns to 68 s; longer values are clamped to
// the top bucket (Max stays exact).
//
// A Histogram is not safe for concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts [numBuckets]uint64
	total  uint64
	sum    float64 // nanoseconds, for the mean
	min    int64
	max    int64
}

const (
	subBits     = 7            // 128 buckets per power of two
	subCount    = 1 << subBits // 128
	exactBelow  = 2 * subCount // values below 256 ns get their own bucket
	topExponent = 36           // 2^36 ns ≈ 68.7 s
	numBuckets  = exactBelow + (topExponent-subBits-1)*subCount
	maxValue    = int64(1)<<topExponent - 1
	// MaxRelativeError is the largest relative error of a reported percentile.
	MaxRelativeError = 1.0 / (2 * subCount)
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{min: math.MaxInt64} }

func bucketOf(v int64) int {
	if v < exactBelow {
		return int(v)
	}
	if v > maxValue {
		v = maxValue
	}
	k := bits.Len64(uint64(v)) - 1 // 2^k <= v < 2^(k+1), k >= 8
	shift := k - subBits
	sub := int(v>>shift) - subCount // 0..127
	return exactBelow + (k-subBits-1)*subCount + sub
}

// bucketRange returns the lowest value of bucket b and its width.
func bucketRange(b int) (lo, width int64) {
	if b < exactBelow {
		return int64(b), 1
	}
	b -= exactBelow
	k := b/subCount + subBits + 1
	sub := int64(b % subCount)
	shift := k - subBits
	return (subCount + sub) << shift, int64(1) << shift
}

// Record adds one duration (negative durations count as zero).
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean is the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value at quantile q (0 < q <= 1): the smallest recorded value v such that
// at least q of all values are <= v, to within MaxRelativeError. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(1, min(rank, h.total))
	if rank == h.total {
		return time.Duration(h.max)
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, width := bucketRange(b)
		v := lo + (width-1)/2 // midpoint; exact for one-value buckets
		return time.Duration(max(h.min, min(v, h.max)))
	}
	return time.Duration(h.max)
}
