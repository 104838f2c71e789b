//go:build !unix

package faultcheck

import "syscall"

// Pausing a process needs SIGSTOP and SIGCONT, which exist only on Unix: elsewhere the pause
// fault does nothing (the checker's nodes are started by the e2e harness, Unix only anyway).
var sigStop, sigCont = syscall.Signal(0), syscall.Signal(0)
