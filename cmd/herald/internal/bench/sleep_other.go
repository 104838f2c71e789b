//go:build !linux

package bench

import "time"

// sleepPrecise falls back to the Go timer off Linux.
func sleepPrecise(d time.Duration) { time.Sleep(d) }
