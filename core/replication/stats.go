package replication

import (
	"sync/atomic"
	"time"
)

// counters are a pipeline's counters, updated atomically and read by Stats.
type counters struct {
	accepted, superseded, expired, overflow, permanentDropped atomic.Int64
	batches, items, retries                                   atomic.Int64
	success, congestion, transient, permanent                 atomic.Int64
	itemFailures                                              atomic.Int64
	acceptorDepth, pendingDepth, batchQueueDepth, inFlight    atomic.Int64
	acceptorBytes, pendingBytes, inFlightBytes                atomic.Int64
	latencyNanos, latencyCount                                atomic.Int64
	batchSize                                                 histogram
	latency                                                   histogram
}

// BatchSizeBuckets and LatencyBuckets are the upper bounds of the histograms in Stats.
var (
	BatchSizeBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000}
	LatencyBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

// histogram is a fixed-bucket histogram with atomic counters (no lock on the send path).
type histogram struct {
	bounds []float64
	counts []atomic.Int64 // len(bounds)+1, the last is +Inf
	sumMu  atomic.Int64   // sum in micro-units
	total  atomic.Int64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]atomic.Int64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumMu.Add(int64(v * 1e6))
	h.total.Add(1)
}

// Histogram is a snapshot: cumulative counts per upper bound, as Prometheus wants them.
type Histogram struct {
	Bounds     []float64
	Cumulative []uint64
	Count      uint64
	Sum        float64
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += uint64(h.counts[i].Load())
		s.Cumulative[i] = c
	}
	s.Count = uint64(h.total.Load())
	s.Sum = float64(h.sumMu.Load()) / 1e6
	return s
}

// PeerStats is a snapshot of one peer's pipeline.
type PeerStats struct {
	Peer string
	// Depths of the three queues, and batches being sent.
	AcceptorDepth, PendingDepth, BatchQueueDepth, InFlight int64
	// RetryDepth counts tasks put back after a failed send, waiting to re-enter the pending
	// stage; Sending counts workers holding a batch (in flight or between attempts).
	RetryDepth, Sending int64
	// Encoded bytes of the tasks in the acceptor queue, in the pending stage (bounded by
	// Config.MaxBufferBytes) and in batches being sent.
	AcceptorBytes, PendingBytes, InFlightBytes int64
	// Accepted tasks; batches and items sent (each attempt counts).
	Accepted, Batches, Items, Retries int64
	// Send results per class.
	Success, Congestion, Transient, Permanent int64
	// Tasks dropped per reason. PermanentDropped counts single tasks a peer refused alone: a batch
	// refused as a whole is split until only those remain.
	Superseded, Expired, Overflow, PermanentDropped int64
	// ItemFailures counts items a peer answered with a non-2xx status.
	ItemFailures int64
	// Paused is how long sending to this peer is still paused by the traffic shaper.
	Paused time.Duration
	// AvgLatency is the mean send latency.
	AvgLatency time.Duration
	BatchSize  Histogram
	Latency    Histogram
}

// AvgBatchSize is the mean number of tasks per batch.
func (s PeerStats) AvgBatchSize() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Items) / float64(s.Batches)
}
