package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// treeCPU is the CPU time (user and system) of this process and of its live descendants (the
// plugin processes of the nodes it runs, or the node processes and theirs), read from /proc.
// Where /proc is missing it is cpuTime.
func treeCPU() time.Duration {
	total := cpuTime()
	for _, pid := range descendants(os.Getpid()) {
		total += procCPU(pid)
	}
	return total
}

// descendants lists the live descendants of a process, from /proc/PID/task/*/children.
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(s); err == nil {
				out = append(out, child)
				out = append(out, descendants(child)...)
			}
		}
	}
	return out
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times (100 on every Linux herald runs on).
const clockTick = 10 * time.Millisecond

// procCPU is a process's user and system time from /proc/PID/stat (0 when unreadable).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // state is f[0], utime f[11], stime f[12]
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// placementBaseline keeps the in-process figures of BenchmarkTransportPlacement, so the
// out-of-process runs report their ratio to them (the median of the in-process runs so far).
var placementBaseline baseline

type baseline struct {
	sync.Mutex
	writes, cpu []float64
}

func (p *baseline) add(writes, cpu float64) {
	p.Lock()
	defer p.Unlock()
	p.writes, p.cpu = append(p.writes, writes), append(p.cpu, cpu)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (p *baseline) medians() (writes, cpu float64) {
	p.Lock()
	defer p.Unlock()
	return median(p.writes), median(p.cpu)
}
