package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send SIGKILL to the plugin process when herald exits, however it
// exits (SIGKILL included), so no plugin outlives its host.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
