package peerauth

import (
	"errors"
	"sync"
	"time"
)

// DefaultReplayBytes bounds a ReplayCache made by NewVerifier: at about 80 bytes an entry it
// holds some 200,000 signatures, over 6,000 signed requests a second for a 30 s window.
const DefaultReplayBytes = 16 << 20

// replayEntryBytes is what one remembered signature costs: the key in the map and in the queue,
// the expiry, and the map's own overhead, rounded up.
const replayEntryBytes = 80

// ErrBusy is returned by Verify when the replay cache is full of signatures that are all still
// within the window: the request may be genuine, so the caller should answer "try again later"
// (HTTP 503), which a sending node retries.
var ErrBusy = errors.New("replay cache full: too many signed requests within the replay window")

// ReplayCache remembers signatures until their window ends, bounded in bytes.
type ReplayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[[32]byte]struct{}
	queue []replayEntry // in arrival order; expiries are nearly sorted, swept from the front
	head  int
}

type replayEntry struct {
	key     [32]byte
	expires int64
}

// NewReplayCache returns a cache that holds at most maxBytes worth of signatures.
func NewReplayCache(maxBytes int) *ReplayCache {
	n := maxBytes / replayEntryBytes
	if n < 1 {
		n = 1
	}
	return &ReplayCache{max: n, seen: make(map[[32]byte]struct{})}
}

// Len returns the number of signatures remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// add remembers sig until expires and reports whether it was new. It returns ErrBusy when the
// cache is full.
func (c *ReplayCache) add(sig []byte, expires, now time.Time) (bool, error) {
	var k [32]byte
	copy(k[:], sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now.UnixMilli())
	if _, dup := c.seen[k]; dup {
		return false, nil
	}
	if len(c.seen) >= c.max {
		return false, ErrBusy
	}
	c.seen[k] = struct{}{}
	c.queue = append(c.queue, replayEntry{key: k, expires: expires.UnixMilli()})
	return true, nil
}

// sweep forgets the signatures at the front of the queue whose window has ended. A signature
// behind a later-expiring one waits for it: expiries differ by at most the senders' clock skew,
// so this costs little memory and keeps sweeping O(1) per request.
func (c *ReplayCache) sweep(now int64) {
	for c.head < len(c.queue) && c.queue[c.head].expires < now {
		delete(c.seen, c.queue[c.head].key)
		c.queue[c.head] = replayEntry{}
		c.head++
	}
	// Give the queue's array back once most of it is swept.
	if c.head > 1024 && c.head*2 > len(c.queue) {
		c.queue = append([]replayEntry(nil), c.queue[c.head:]...)
		c.head = 0
	}
}
