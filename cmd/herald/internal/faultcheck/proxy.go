package faultcheck

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Link is a one-way TCP proxy on 127.0.0.1 standing for the network path from one node to one
// peer: the node's peer list names the link's address instead of the peer's. A link can be cut (new
// connections are refused and open ones broken, as a partition would) and slowed (every chunk of
// bytes, in both directions, waits the configured delay before it is passed on).
type Link struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewLink listens on a free port of 127.0.0.1 and forwards to target.
func NewLink(target string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is the link's listen address.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// URL is the Eureka base URL through the link.
func (l *Link) URL() string { return fmt.Sprintf("http://%s/eureka/", l.Addr()) }

// Cut breaks the open connections and refuses new ones until Heal.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Heal lets connections through again and removes any delay.
func (l *Link) Heal() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
	l.delay.Store(0)
}

// Slow delays every chunk of bytes by d (0 for none).
func (l *Link) Slow(d time.Duration) { l.delay.Store(int64(d)) }

// Close stops the link and waits for its goroutines.
func (l *Link) Close() {
	l.ln.Close()
	l.Cut()
	l.wg.Wait()
}

func (l *Link) serve() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		cut := l.cut
		l.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", l.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		l.mu.Lock()
		if l.cut { // cut while dialing
			l.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		l.conns[c] = struct{}{}
		l.conns[up] = struct{}{}
		l.wg.Add(2)
		l.mu.Unlock()
		go l.pipe(c, up)
		go l.pipe(up, c)
	}
}

func (l *Link) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(l.delay.Load()); d > 0 {
				time.Sleep(d) // the injected latency itself, not a wait for a condition
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil { // io.EOF or a broken connection
			break
		}
	}
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}
