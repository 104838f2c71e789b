package bench

import (
	"syscall"
	"time"
)

// sleepPrecise sleeps d in the kernel (nanosleep): the calling thread blocks, but it wakes within
// tens of microseconds, where a Go timer under 1 ms may fire up to a millisecond late when the
// process is otherwise idle. Only used for the last stretch before a request's due time.
func sleepPrecise(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
