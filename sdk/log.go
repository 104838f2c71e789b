package sdk

import (
	"log"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Logger is the logger herald hands a plugin in ConfigureRequest.Logger: an hclog.Logger, the
// logger herald itself uses. What a plugin writes to it appears in the node's log, at the node's
// log level, under the plugin's block (plugin.KIND.NAME, then the binary's name) and with the
// plugin's and the node's names:
//
//	2026-01-02T10:00:00.000Z [INFO]  herald.plugin.transport.jsonline.herald-transport-jsonline: listening: @module=jsonline node=node-a addr=127.0.0.1:9761
//
// Out of process, sdk.Serve writes it as JSON to the plugin's stderr, which go-plugin carries to
// herald, and herald logs each line at the level the plugin gave it (plugin output that is not
// JSON arrives at debug level only). Its level is the node's (log.level), so a plugin's debug lines
// cost nothing unless the node logs at debug. In-process (a built-in plugin the node runs itself),
// it is a sub-logger of the node's, named plugin.KIND.NAME, with the node's name.
//
// The standard library's log package is redirected to it in a plugin process, at info level (a
// line starting with [DEBUG], [WARN] or [ERROR] takes that level), so a plain log.Printf shows up
// in the node's log too. Output written to os.Stderr directly is logged by herald at debug level.
type Logger = hclog.Logger

// served is the logger of this plugin process, set by Serve; nil when no Serve call runs here (a
// test harness serving a plugin over gRPC inside the test process).
var served struct {
	sync.Mutex
	logger hclog.Logger
	own    bool // Serve made the logger (no WithLogger): its level follows the node's
}

// defaultServeLogger is the logger of a plugin process without WithLogger: hclog's JSON format on
// stderr, which go-plugin parses on the host's side.
func defaultServeLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
}

// setServedLogger records the process's logger and sends the log package's output to it.
func setServedLogger(l hclog.Logger, own bool) {
	served.Lock()
	served.logger, served.own = l, own
	served.Unlock()
	redirectStdLog(l)
}

func redirectStdLog(l hclog.Logger) {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
}

// configuredLogger is ConfigureRequest.Logger on the plugin's side of the gRPC connection: the
// process's logger named after the plugin, with the node's name, at the node's level.
func configuredLogger(impl any, kind, node, level string) hclog.Logger {
	name := kind
	if d, ok := impl.(Describer); ok && d.Info().Name != "" {
		name = d.Info().Name
	}
	served.Lock()
	base, own := served.logger, served.own
	served.Unlock()
	inProcess := base == nil
	if inProcess { // a test harness: plain text on the test's stderr
		base, own = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr}), true
	}
	if lv := hclog.LevelFromString(level); own && lv != hclog.NoLevel {
		base.SetLevel(lv)
	}
	l := base.Named(name).With("node", node)
	if !inProcess {
		redirectStdLog(l)
	}
	return l
}

// PluginLogger is the logger a host gives an in-process plugin in ConfigureRequest.Logger: the
// node's logger named KIND.NAME (as herald names a plugin process's output), with the node's
// name. A nil node logger yields a logger that discards everything.
func PluginLogger(nodeLogger hclog.Logger, kind, name, node string) hclog.Logger {
	if nodeLogger == nil {
		return hclog.NewNullLogger()
	}
	return nodeLogger.Named(kind+"."+name).With("node", node)
}
