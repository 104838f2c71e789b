//go:build !unix

package e2e

import (
	"os/exec"
	"syscall"
)

// newProcessGroup does nothing where there are no process groups; the e2e tests run on Unix.
func newProcessGroup(*exec.Cmd) {}

// killGroup kills the node process alone.
func killGroup(cmd *exec.Cmd, _ syscall.Signal) {
	_ = cmd.Process.Kill()
}
