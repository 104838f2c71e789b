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
	propagation                                               histogram
}

// BatchSizeBuckets and LatencyBuckets are the upper bounds of the histograms in Stats.
var (
	BatchSizeBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000}
	LatencyBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
)

// histogram is a fixed-bucket histogram with atomic counters (no lock on the send path). Each
// bucket keeps the last traced observation as an exemplar, so a dashboard can jump from a slow
// bucket to the trace of a write that landed in it.
type histogram struct {
	bounds    []float64
	counts    []atomic.Int64 // len(bounds)+1, the last is +Inf
	exemplars []atomic.Pointer[Exemplar]
	sumMu     atomic.Int64 // sum in micro-units
	total     atomic.Int64
}

// Exemplar is one observation with the trace it belongs to.
type Exemplar struct {
	Value   float64
	TraceID string
	At      time.Time
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]atomic.Int64, len(bounds)+1),
		exemplars: make([]atomic.Pointer[Exemplar], len(bounds)+1)}
}

func (h *histogram) observe(v float64) { h.observeTraced(v, "") }

// observeTraced records v; a non-empty traceID becomes its bucket's exemplar.
func (h *histogram) observeTraced(v float64, traceID string) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumMu.Add(int64(v * 1e6))
	h.total.Add(1)
	if traceID != "" && h.exemplars != nil {
		h.exemplars[i].Store(&Exemplar{Value: v, TraceID: traceID, At: time.Now()})
	}
}

// Histogram is a snapshot: cumulative counts per upper bound, as Prometheus wants them, and the
// buckets' exemplars (the last traced observation of each, where there is one).
type Histogram struct {
	Bounds     []float64
	Cumulative []uint64
	Count      uint64
	Sum        float64
	Exemplars  []Exemplar
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += uint64(h.counts[i].Load())
		s.Cumulative[i] = c
	}
	for i := range h.exemplars {
		if e := h.exemplars[i].Load(); e != nil {
			s.Exemplars = append(s.Exemplars, *e)
		}
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
	// Propagation is the time from a task's acceptance to the peer's answer for it.
	Propagation Histogram
}

// AvgBatchSize is the mean number of tasks per batch.
func (s PeerStats) AvgBatchSize() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Items) / float64(s.Batches)
}
