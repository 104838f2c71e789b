package faultcheck

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// FaultKind names one kind of fault.
type FaultKind string

// The faults a schedule draws from. Process faults (kill, restart, pause) hit one node at a time;
// network faults (partition, link, slow) run on a second track and overlap them.
const (
	// FaultKill sends SIGKILL to a node's process group and restarts the node after the fault's
	// duration. Its memory (registry, replication queues) is gone; it syncs from its peers again.
	FaultKill FaultKind = "kill"
	// FaultRestart is a kill -9 followed at once by a restart: a peer restarting in the middle of
	// the batches the others are sending it.
	FaultRestart FaultKind = "restart"
	// FaultPause stops a node with SIGSTOP and resumes it with SIGCONT: clients and peers time out.
	FaultPause FaultKind = "pause"
	// FaultPartition cuts every link to and from a node.
	FaultPartition FaultKind = "partition"
	// FaultLink cuts the link from one node to one peer only (an asymmetric partition).
	FaultLink FaultKind = "link"
	// FaultSlow delays every link to and from a node.
	FaultSlow FaultKind = "slow"
)

// AllFaults lists every fault kind.
var AllFaults = []FaultKind{FaultKill, FaultRestart, FaultPause, FaultPartition, FaultLink, FaultSlow}

func (k FaultKind) process() bool { return k == FaultKill || k == FaultRestart || k == FaultPause }

// ParseFaults reads a comma-separated list of fault kinds ("" or "all" for every kind, "none" for
// none).
func ParseFaults(s string) ([]FaultKind, error) {
	if s == "" || s == "all" {
		return AllFaults, nil
	}
	out := []FaultKind{}
	if s == "none" {
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(f))
		found := false
		for _, a := range AllFaults {
			found = found || a == k
		}
		if !found {
			return nil, fmt.Errorf("unknown fault %q (known: %v)", k, AllFaults)
		}
		out = append(out, k)
	}
	return out, nil
}

// Fault is one scheduled fault.
type Fault struct {
	At   time.Duration // since the start of the fault phase
	Kind FaultKind
	Node int
	Peer int           // FaultLink: the link from Node to Peer
	Dur  time.Duration // how long the fault lasts (0 for FaultRestart)
	// Delay is FaultSlow's added latency per chunk.
	Delay time.Duration
}

// String describes the fault as the run log shows it.
func (f Fault) String() string {
	switch f.Kind {
	case FaultLink:
		return fmt.Sprintf("%6.2fs %s node%d->node%d for %v", f.At.Seconds(), f.Kind, f.Node, f.Peer, f.Dur)
	case FaultSlow:
		return fmt.Sprintf("%6.2fs %s node%d +%v for %v", f.At.Seconds(), f.Kind, f.Node, f.Delay, f.Dur)
	case FaultRestart:
		return fmt.Sprintf("%6.2fs %s node%d", f.At.Seconds(), f.Kind, f.Node)
	}
	return fmt.Sprintf("%6.2fs %s node%d for %v", f.At.Seconds(), f.Kind, f.Node, f.Dur)
}

// Schedule draws the faults of one run from seed: the same seed, node count, duration and kinds
// give the same schedule. Every fault ends within d.
func Schedule(seed int64, nodes int, d time.Duration, kinds []FaultKind) []Fault {
	var proc, net []FaultKind
	for _, k := range kinds {
		if k.process() {
			proc = append(proc, k)
		} else {
			net = append(net, k)
		}
	}
	var out []Fault
	// Each track draws from its own stream, so a longer duration extends a schedule without
	// changing its beginning.
	track := func(ks []FaultKind, stream uint64) {
		if len(ks) == 0 {
			return
		}
		rng := rand.New(rand.NewPCG(uint64(seed), stream))
		ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond }
		at := ms(500, 2000)
		for {
			f := Fault{At: at, Kind: ks[rng.IntN(len(ks))], Node: rng.IntN(nodes), Peer: -1}
			switch f.Kind {
			case FaultKill:
				f.Dur = ms(300, 3000)
			case FaultRestart:
				f.Dur = 0
			case FaultPause:
				f.Dur = ms(500, 4000)
			case FaultPartition:
				f.Dur = ms(1000, 8000)
			case FaultLink:
				f.Dur = ms(1000, 6000)
				f.Peer = (f.Node + 1 + rng.IntN(nodes-1)) % nodes
			case FaultSlow:
				f.Dur = ms(1000, 6000)
				f.Delay = ms(20, 300)
			}
			if at+f.Dur > d {
				return
			}
			out = append(out, f)
			at += f.Dur + ms(300, 2000)
		}
	}
	track(proc, 1)
	track(net, 2)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}
