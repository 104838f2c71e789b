package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the summary of a run, printed as a table or, with -json, as JSON.
type Result struct {
	Scenario    string   `json:"scenario"`
	Targets     []string `json:"targets"`
	Format      string   `json:"format"`
	Connections int      `json:"connections"`
	// Rate is the open-loop rate in requests per second; 0 means closed loop (as fast as possible).
	Rate              float64          `json:"rate"`
	Instances         int              `json:"instances"`
	Apps              int              `json:"apps"`
	PayloadBytes      int              `json:"payload_bytes"` // size of one registration body
	HeartbeatInterval float64          `json:"heartbeat_interval_seconds,omitempty"`
	DurationSeconds   float64          `json:"duration_seconds"`
	Requests          int64            `json:"requests"`
	Throughput        float64          `json:"throughput_rps"`
	Latency           Latency          `json:"latency_ms"`
	Service           *Latency         `json:"service_time_ms,omitempty"` // open loop: from the actual send
	Late              *Late            `json:"late,omitempty"`
	ByKind            map[string]int64 `json:"requests_by_kind"`
	Errors            map[string]int64 `json:"errors"`
	ErrorCount        int64            `json:"error_count"`
	ResponseBytes     float64          `json:"mean_response_bytes,omitempty"`
	Propagation       *Propagation     `json:"propagation,omitempty"`
	Memory            []*NodeMemory    `json:"memory,omitempty"`
	Notes             []string         `json:"notes,omitempty"`
	// Deregistered counts the instances removed at the end of the run; Kept those left in the
	// registry (-keep, or cancels that failed).
	Deregistered int `json:"deregistered"`
	Kept         int `json:"kept"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	Count uint64  `json:"count"`
}

// Late counts open-loop requests that started after their intended time by more than a threshold
// (every connection was busy, or the load generator itself was starved).
type Late struct {
	ThresholdMs float64 `json:"threshold_ms"`
	Count       int64   `json:"count"`
	Unsent      int64   `json:"unsent"` // due within -duration but still unsent -timeout after it: the rate is above capacity
	LagP99Ms    float64 `json:"lag_p99_ms"`
	LagMaxMs    float64 `json:"lag_max_ms"`
}

// Propagation is the time from the first node's 2xx to a 200 for the same instance at the others.
type Propagation struct {
	Latency
	Watched    int64               `json:"watched_writes"` // writes polled for (at most -watch-rate per second)
	Skipped    int64               `json:"skipped"`        // write×node pairs not sampled: every poller busy
	Timeouts   int64               `json:"timeouts"`
	Polls      int64               `json:"polls"`
	PollErrors int64               `json:"poll_errors"`
	PerTarget  []TargetPropagation `json:"per_target"`
}

// TargetPropagation is propagation to one node.
type TargetPropagation struct {
	Target string `json:"target"`
	Latency
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencyOf(h *Histogram) Latency {
	return Latency{P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean()), Count: h.Count()}
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the human summary.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("scenario", "%s (%s)", r.Scenario, r.Format)
	for i, t := range r.Targets {
		k := ""
		if i == 0 {
			k = "target(s)"
		}
		row(k, "%s", t)
	}
	row("connections", "%d", r.Connections)
	if r.Rate > 0 {
		row("rate", "%.0f req/s, open loop (latency from the intended start)", r.Rate)
	} else {
		row("rate", "closed loop (as fast as the connections go)")
	}
	row("instances", "%d over %d apps, %d-byte registration body", r.Instances, r.Apps, r.PayloadBytes)
	if r.HeartbeatInterval > 0 {
		row("heartbeat interval", "%.3gs per instance (Eureka: 30s)", r.HeartbeatInterval)
	}
	row("duration", "%.2fs", r.DurationSeconds)
	row("requests", "%d (%s)", r.Requests, kv(r.ByKind))
	row("throughput", "%.1f req/s", r.Throughput)
	if r.ResponseBytes > 0 {
		row("response size", "%.0f bytes on average (decompressed)", r.ResponseBytes)
	}
	row("errors", "%s", errorsText(r.ErrorCount, r.Errors))
	if r.Late != nil {
		row("late", "%d started more than %gms after their intended time (lag p99 %.3fms, max %.3fms)",
			r.Late.Count, r.Late.ThresholdMs, r.Late.LagP99Ms, r.Late.LagMaxMs)
		if r.Late.Unsent > 0 {
			row("unsent", "%d due requests never sent: the rate is above what %d connections get through", r.Late.Unsent, r.Connections)
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ms\tp50\tp90\tp99\tp99.9\tmax\tmean\tcount\t")
	line := func(name string, l Latency) {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t\n", name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
	}
	line("latency", r.Latency)
	if r.Service != nil {
		line("service time", *r.Service)
	}
	if p := r.Propagation; p != nil {
		line("propagation", p.Latency)
		for _, t := range p.PerTarget {
			line("  to "+t.Target, t.Latency)
		}
	}
	tw.Flush()
	if p := r.Propagation; p != nil {
		fmt.Fprintf(w, "propagation: time from the first node's 2xx to a 200 at the node, for %d watched writes; %d polls, %d not sampled (pollers busy), %d timeouts (> %v), %d poll errors\n",
			p.Watched, p.Polls, p.Skipped, p.Timeouts, propagationWait, p.PollErrors)
	}
	if len(r.Memory) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "memory\tinstances before\tafter\tRSS before MiB\tafter MiB\tRSS/instance B\theap in use/instance B\t")
		for _, m := range r.Memory {
			if !m.MetricsAvailable {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t\n", m.Target)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t\n", m.Target, m.InstancesBefore, m.InstancesAfter,
				mib(m.RSSBefore), mib(m.RSSAfter), m.RSSPerInstance, m.HeapPerInstance)
		}
		tw.Flush()
		for _, m := range r.Memory {
			if m.Note != "" {
				fmt.Fprintf(w, "  %s: %s\n", m.Target, m.Note)
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func kv(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func errorsText(total int64, m map[string]int64) string {
	if total == 0 {
		return "none"
	}
	return fmt.Sprintf("%d: %s", total, kv(m))
}
