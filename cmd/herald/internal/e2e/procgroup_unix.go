//go:build unix

package e2e

import (
	"os/exec"
	"syscall"
)

// newProcessGroup makes the node the leader of a process group of its own, which its plugin
// processes join, so that killGroup reaches them all.
func newProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends sig to the node's whole process group.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
