package main

// The replication transports side by side, in one run:
//
//	go test ./cmd/herald -run '^$' -bench Transports -benchtime 1x

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/cmd/herald/internal/e2e"
	"github.com/heraldhq/herald/core/eureka/codec"
	grpctransport "github.com/heraldhq/herald/plugins/transport/grpc"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire"
)

// BenchmarkTransports runs the saturation workload of BenchmarkReplicatedWrites (three nodes,
// 64 clients, every write replicated to two peers) over the http and the grpc transport, each
// with and without gzip. Besides the throughput it reports:
//
//   - wire-bytes/task: the request body per task of a batch of 8 (half registers, half
//     heartbeats; this workload cuts batches of 4 to 7 tasks) as the transport encodes it:
//     Eureka's JSON ReplicationList for http, the protobuf frame for grpc, gzipped when the row
//     compresses;
//   - socket-bytes/task (grpc): what the senders' connections actually carried per replicated
//     task, both directions, HTTP/2 framing, answers and keep-alives included;
//   - cpu-µs/write: the CPU time of the whole process (three nodes and the clients, start-up and
//     the untimed registrations included) per timed client write. Unlike writes/s it hardly
//     moves when other work shares the machine.
func BenchmarkTransports(b *testing.B) {
	for _, c := range []struct {
		name      string
		transport string
		compress  bool
	}{
		{"http", "http", false},
		{"http/compress", "http", true},
		{"grpc", "grpc", false},
		{"grpc/compress", "grpc", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			comp := strconv.FormatBool(c.compress)
			sets := []string{"replication.transport=" + c.transport}
			if c.transport == "grpc" {
				sets = append(sets, "plugin.transport.grpc.config.compress="+comp)
			} else {
				sets = append(sets, "replication.compress="+comp)
			}
			plugins := trackGRPC(b)
			cpu0 := cpuTime()
			replicatedWrites(b, sets...)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/30000, "cpu-µs/write")
			batch := sampleBatch(b, 8)
			if c.transport == "grpc" {
				b.ReportMetric(float64(grpctransport.FrameSize(batch, c.compress))/float64(len(batch.Items)), "wire-bytes/task")
				var st grpctransport.Stats
				for _, p := range plugins() {
					s := p.Stats()
					st.Items += s.Items
					st.BytesSent += s.BytesSent
					st.BytesReceived += s.BytesReceived
				}
				if st.Items > 0 {
					b.ReportMetric(float64(st.BytesSent+st.BytesReceived)/float64(st.Items), "socket-bytes/task")
				}
				return
			}
			body := eurekawire.AppendReplicationList(nil, batch.Items)
			if c.compress {
				body = gzipped(body)
			}
			b.ReportMetric(float64(len(body))/float64(len(batch.Items)), "wire-bytes/task")
		})
	}
}

// trackGRPC makes the grpc transports the benchmark's nodes create reachable for their counters,
// until the benchmark ends.
func trackGRPC(b *testing.B) func() []*grpctransport.Plugin {
	var mu sync.Mutex
	var made []*grpctransport.Plugin
	orig := builtins[sdk.KindTransport]["grpc"]
	builtins[sdk.KindTransport]["grpc"] = func() any {
		t := orig()
		if p, ok := t.(*grpctransport.Plugin); ok {
			mu.Lock()
			made = append(made, p)
			mu.Unlock()
		}
		return t
	}
	b.Cleanup(func() { builtins[sdk.KindTransport]["grpc"] = orig })
	return func() []*grpctransport.Plugin {
		mu.Lock()
		defer mu.Unlock()
		return append([]*grpctransport.Plugin(nil), made...)
	}
}

// sampleBatch is n tasks as replicatedWrites sends them: registers and heartbeats, alternating.
func sampleBatch(b *testing.B, n int) sdk.Batch {
	batch := sdk.Batch{ID: "sample"}
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			id := "w-" + strconv.Itoa(i)
			inst, err := codec.DecodeInstance(e2e.InstanceJSON("LOAD", id, 1000, "UP", nil), codec.JSON)
			if err != nil {
				b.Fatal(err)
			}
			batch.Items = append(batch.Items, sdk.Item{Action: sdk.ActionRegister, App: "LOAD", ID: id, LastDirtyTimestamp: 1000,
				Status: "UP", Instance: codec.AppendInstanceBare(nil, inst)})
		} else {
			batch.Items = append(batch.Items, sdk.Item{Action: sdk.ActionHeartbeat, App: "LOAD", ID: "h-" + strconv.Itoa(i),
				LastDirtyTimestamp: 1000, Status: "UP"})
		}
	}
	return batch
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gzipped(data []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return z.Bytes()
}
