package plugintest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// maxOutput is how much of a plugin's output a test keeps: the end of it.
const maxOutput = 256 << 10

// output is what go-plugin logs about one plugin connection (and, for a plugin process, what the
// process writes to stderr) during one test. It stays out of the test's output unless the test
// fails, when it is attached to the failure, or runs with -v, when it goes to stderr as it comes.
type output struct {
	mu    sync.Mutex
	buf   []byte
	cut   bool // the start was dropped
	tee   bool
	shown bool // a failure message quoted it already
}

// captureOutput returns an output for tb, attached to tb's failure as what.
func captureOutput(tb testing.TB, what string) *output {
	o := &output{tee: testing.Verbose()}
	tb.Cleanup(func() {
		o.mu.Lock()
		shown := o.shown
		o.mu.Unlock()
		if tb.Failed() && !o.tee && !shown {
			if s := o.tail(32 << 10); strings.TrimSpace(s) != "" {
				tb.Logf("%s (shown because the test failed):\n%s", what, s)
			}
		}
	})
	return o
}

// markShown says a failure message quoted o: it is not attached again.
func (o *output) markShown() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.shown = true
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > 2*maxOutput {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-maxOutput:]...)
		o.cut = true
	}
	if o.tee {
		_, _ = os.Stderr.Write(p)
	}
	return len(p), nil
}

// String returns all that was kept.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// tail returns at most the last n bytes, from the start of a line.
func (o *output) tail(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(o.buf)
	if len(s) <= n && !o.cut {
		return s
	}
	if len(s) > n {
		s = s[len(s)-n:]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("[… the start is left out]\n%s", s)
}

// logger is an hclog logger writing to o: what go-plugin warns about (a plugin that did not stop,
// a connection that failed), and with -v its debug log as well.
func (o *output) logger() hclog.Logger {
	level := hclog.Info
	if o.tee {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "plugintest", Level: level, Output: o})
}
