package plugintest

import (
	"fmt"
	"os"
	"testing"
)

// Main runs a test binary's tests with a temporary directory of its own as TMPDIR, removed when
// they end, so the unix sockets go-plugin's connections and brokers leave behind do not pile up
// in the system's temporary directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { plugintest.Main(m) }
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugintest")
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugintest:", err)
		os.Exit(m.Run())
	}
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
